"""What resumability costs the main job (experiment=fashion_mnist): runs of the same config in one
process, alternating, with

  (a) last.ckpt at every epoch's end (the default)
  (b) no last.ckpt (callbacks.checkpoint=null): the baseline
  (c) last.ckpt also every N training steps (callbacks.checkpoint.every_n_steps=N)

and, inside (a) and (c), the time spent taking and writing each checkpoint. Medians are printed,
with a/b and c/b.

    python benchmarks/checkpoint.py [--subset 10000] [--epochs 1] [--every-n-steps 10] [--repeats 3]
    python benchmarks/checkpoint.py --smoke  # the same code paths in seconds: 256 images, 1 repeat
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir

from alexlab import resume, rundir
from alexlab.config import register_resolvers
from alexlab.training import train

CONF = Path(__file__).resolve().parents[1] / "conf"
spent: list[float] = []  # seconds in LastCheckpoint._take and _write, this run
taken: list[int] = []  # one entry per checkpoint taken, this run
register_resolvers()  # the configs use them, as src/train.py does


def timed(method: Callable, count: bool = False) -> Callable:
    def run(*args, **kwargs):
        start = time.perf_counter()
        method(*args, **kwargs)
        spent.append(time.perf_counter() - start)
        if count:
            taken.append(1)

    return run


def one_run(overrides: list[str], out: Path) -> tuple[float, float, int]:
    """Wall seconds of the run, seconds spent on last.ckpt, checkpoints written."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train", overrides=[*overrides, f"paths.output_dir={out}", "paths.root_dir=."]
        )
    spent.clear()
    taken.clear()
    start = time.perf_counter()
    train(cfg)
    return time.perf_counter() - start, sum(spent), len(taken)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=10000, help="training images [10000]")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--every-n-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--val-size", type=int, help="validation images [the config's, 5000]")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a check that it runs, in seconds: --subset 256 --val-size 256 --every-n-steps 1 "
        "--repeats 1 (the times mean nothing)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.subset, args.epochs, args.every_n_steps, args.repeats = 256, 1, 1, 1
        args.val_size = 256
    resume.LastCheckpoint._take = timed(resume.LastCheckpoint._take, count=True)
    resume.LastCheckpoint._write = timed(resume.LastCheckpoint._write)
    base = [
        "experiment=fashion_mnist",
        f"data.subset={args.subset}",
        f"trainer.max_epochs={args.epochs}",
        "callbacks.progress_bar=null",
        "test=false",
        *([f"data.val_size={args.val_size}"] if args.val_size else []),
    ]
    variants = {
        "a": ["callbacks.checkpoint.every_n_steps=null"],
        "b": ["callbacks.checkpoint=null"],
        "c": [f"callbacks.checkpoint.every_n_steps={args.every_n_steps}"],
    }
    walls: dict[str, list[float]] = {name: [] for name in variants}
    inside: dict[str, list[float]] = {name: [] for name in variants}
    writes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, overrides in variants.items():
                out = Path(tmp) / f"{name}{repeat}"
                wall, on_checkpoints, count = one_run(base + overrides, out)
                walls[name].append(wall)
                inside[name].append(on_checkpoints)
                writes[name] = count
                if name == "a":
                    size = rundir.last_checkpoint(out).stat().st_size
    median = {name: statistics.median(values) for name, values in walls.items()}
    print(f"\nmain job, {args.epochs} epoch(s) of {args.subset} images, medians of {args.repeats}:")
    print(f"last.ckpt: {size / 1e6:.1f} MB")
    for name, label in [
        ("b", "no last.ckpt (baseline)"),
        ("a", "last.ckpt at each epoch's end"),
        ("c", f"last.ckpt also every {args.every_n_steps} steps"),
    ]:
        per = statistics.median(inside[name]) / writes[name] * 1000 if writes[name] else 0.0
        print(
            f"  ({name}) {label:38s} {median[name]:7.2f} s, ratio to b {median[name] / median['b']:.3f}; "
            f"{writes[name]} checkpoints, {per:.0f} ms each"
        )


if __name__ == "__main__":
    main()
