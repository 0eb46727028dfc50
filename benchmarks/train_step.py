"""Images/s of a full training step (forward, backward, SGD update), in one process:

  (a) our AlexNet at the paper's defaults (two columns, LRN, dropout; 224x224)
  (b) torchvision's alexnet (one column, no LRN; 224x224)
  (c) our convnet4, Figure 1's net, at 32x32

each in fp32 and bf16 (autocast), channels-last off and on; then at bf16 channels-last, (a)
with the pure-torch LRN instead of the fused kernel, without LRN and with one column, to show
where its time goes, and each net torch.compile'd. Then the operators that take (a)'s step, with
and without LRN (torch.profiler), and the fused LRN against the pure-torch one alone, forward and
backward, at AlexNet's two LRN layers. On a GPU (--device cuda, the default where there is one)
the same, with CUDA's bf16.
The nets take turns, a few steps at a time, so that the machine's noise falls on all of them;
medians of the per-step rates after a warm-up are printed with the ratios a/b (each at its best
settings) and bf16/fp32.

Then a convnet4 epoch on Fashion-MNIST three ways: the training steps alone on one fixed batch,
the data path alone (in-memory uint8 batches fetched and normalized), and the whole epoch through
Lightning; and Figure 1's measure on the real thing: convnet4 with ReLU trained through
`src/train.py` until the training error reaches the target, wall seconds and epochs.

    python benchmarks/train_step.py [--rounds 5] [--steps 2] [--alexnet-batch 64] [--epochs 3]
                                    [--device cpu|cuda]
    python benchmarks/train_step.py --smoke  # every part in seconds: tiny batches and data, one
                                             # step a turn, compile's graph capture run eagerly
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from alexlab.api import build
from alexlab.models.layers import LocalResponseNorm

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "bf16")
DEVICE = torch.device("cpu")  # main() sets it from --device
COMPILE_BACKEND = "inductor"  # main() sets it from --compile-backend


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def pure_torch_lrn(net: nn.Module) -> nn.Module:
    for layer in net.modules():
        if isinstance(layer, LocalResponseNorm):
            layer.fused = False
    return net


@dataclass
class Subject:
    """One net at one setting, with its optimizer and a batch of its input size."""

    name: str
    net: nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    precision: str
    channels_last: bool
    rates: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.net = self.net.to(DEVICE)
        self.images, self.labels = self.images.to(DEVICE), self.labels.to(DEVICE)
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(
            self.net.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4
        )

    def step(self) -> float:
        start = time.perf_counter()
        self.train_step()
        synchronize()
        return len(self.images) / (time.perf_counter() - start)

    def train_step(self) -> None:
        autocast = torch.autocast(DEVICE.type, torch.bfloat16, enabled=self.precision == "bf16")
        with autocast:
            loss = F.cross_entropy(self.net(self.images), self.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    @property
    def label(self) -> str:
        return f"{self.name}, {self.precision}" + (", channels-last" if self.channels_last else "")


def alexlab_net(model: str, data: str = "imagenet_ffcv", **values: Any) -> nn.Module:
    """conf/model/MODEL.yaml's net on DATA's shape (ImageNet's: 1000 classes of 3x224x224)."""
    return build("model", [f"model={model}", f"data={data}"], **values)


def subjects(alexnet_batch: int, convnet_batch: int, width: float = 1.0) -> list[Subject]:
    def batch(size: int, side: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(size, 3, side, side), torch.randint(classes, (size,))

    nets: list[tuple[str, Callable[[], nn.Module], int, int, int]] = [
        (
            "(a) alexlab AlexNet 224",
            lambda: alexlab_net("alexnet", width=width),
            alexnet_batch,
            224,
            1000,
        ),
        ("(b) torchvision alexnet 224", torchvision.models.alexnet, alexnet_batch, 224, 1000),
        (
            "(c) alexlab convnet4 32",
            lambda: alexlab_net("convnet4", "cifar10"),
            convnet_batch,
            32,
            10,
        ),
    ]
    # Where (a)'s time goes: the same net with the reference LRN, without LRN, with one column.
    alexnet = (alexnet_batch, 224, 1000)
    parts: list[tuple[str, Callable[[], nn.Module], int, int, int]] = [
        (
            "(a) pure-torch LRN",
            lambda: pure_torch_lrn(alexlab_net("alexnet", width=width)),
            *alexnet,
        ),
        ("(a) without LRN", lambda: alexlab_net("alexnet", lrn="off", width=width), *alexnet),
        ("(a) one column", lambda: alexlab_net("alexnet", columns=1, width=width), *alexnet),
    ]
    # Whether torch.compile pays (model.compile): each net compiled in place, as Classifier does.
    compiled = [(f"{name}, compiled", compiling(make), *rest) for name, make, *rest in nets]
    return [
        Subject(name, make(), *batch(size, side, classes), precision, channels_last)
        for name, make, size, side, classes in nets
        for precision in PRECISIONS
        for channels_last in (False, True)
    ] + [  # at the best settings of the nets above
        Subject(name, make(), *batch(size, side, classes), "bf16", True)
        for name, make, size, side, classes in parts + compiled
    ]


def compiling(make: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def make_compiled() -> nn.Module:
        net = make()
        net.compile(backend=COMPILE_BACKEND)
        return net

    return make_compiled


def measure_steps(
    all_subjects: list[Subject], rounds: int, steps: int, warm_up: bool = True
) -> None:
    for subject in all_subjects if warm_up else []:  # allocator, oneDNN primitives
        subject.step()
    for _ in range(rounds):
        for subject in all_subjects:
            subject.rates += [subject.step() for _ in range(steps)]


def best(all_subjects: list[Subject], name: str) -> Subject:
    return max(
        (s for s in all_subjects if s.name == name), key=lambda s: statistics.median(s.rates)
    )


def median_rate(all_subjects: list[Subject], name: str, precision: str, cl: bool) -> float:
    (subject,) = [
        s
        for s in all_subjects
        if s.name == name and s.precision == precision and s.channels_last == cl
    ]
    return statistics.median(subject.rates)


@dataclass
class EpochCost:
    """Seconds of one convnet4 epoch on Fashion-MNIST, fp32 channels-last, three ways."""

    lightning: float  # Trainer.fit: data path, training steps, metrics, logging, hooks
    compute: float  # the same number of training steps on one fixed, normalized batch
    data: float  # the data path alone: fetch uint8 batches, normalize on the device


def epoch_cost(subset: int | None = None, val_size: int = 5000) -> EpochCost:
    import lightning as L

    data = build(
        "data", ["data=fashion_mnist", "data/augment=none"], subset=subset, val_size=val_size
    )
    data.setup()  # reading the files happens once a run, not once an epoch
    net = alexlab_net("convnet4", "fashion_mnist")
    sgd = lambda params: torch.optim.SGD(params, lr=0.004, momentum=0.9)  # noqa: E731
    # Plain SGD on one parameter group, channels-last (the main job's layout), no schedule.
    plain = {"bias_decay": False, "bias_lr_scale": 1.0, "layer_weight_decay": None}
    module = build(
        "module",
        net=net,
        optimizer=sgd,
        scheduler=None,
        lr_reductions=0,
        num_classes=10,
        net_config=None,
        channels_last=True,
        **plain,
    )
    trainer = L.Trainer(
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    lightning = time.perf_counter() - start

    start = time.perf_counter()
    for batch in data.train_dataloader():
        data.on_after_batch_transfer(batch, 0)
    data_path = time.perf_counter() - start

    images, labels = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.004, momentum=0.9)
    start = time.perf_counter()
    for _ in range(trainer.num_training_batches):
        loss = F.cross_entropy(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return EpochCost(lightning, time.perf_counter() - start, data_path)


def allocator() -> str:
    """The malloc this process runs on (the Makefile preloads tcmalloc where it is installed)."""
    maps = Path("/proc/self/maps").read_text()
    return next((name for name in ("tcmalloc", "jemalloc") if name in maps), "glibc malloc")


def time_to_target(target: float = 0.18, overrides: tuple[str, ...] = ()) -> dict[str, float]:
    """Figure 1's run (convnet4, ReLU, original conditions, its fastest lr) on Fashion-MNIST."""
    with tempfile.TemporaryDirectory() as run_dir:
        command = [
            sys.executable,
            str(REPO / "src" / "train.py"),
            "experiment=relu_vs_tanh",
            "data=fashion_mnist",
            "optim.lr=0.004",
            f"train.target_error={target}",
            "callbacks.progress_bar=null",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ]
        env = {**os.environ, "WANDB_MODE": "disabled"}
        subprocess.run(command, check=True, capture_output=True, env=env, cwd=REPO)
        return json.loads((Path(run_dir) / "results.json").read_text())


def profile_rows(subject: Subject, steps: int = 3, rows: int = 8) -> list[tuple[str, float]]:
    """The operators that take most of a subject's training step: (name, ms a step), self time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            subject.train_step()
        synchronize()
    device_time = "self_device_time_total" if DEVICE.type == "cuda" else "self_cpu_time_total"
    events = sorted(prof.key_averages(), key=lambda e: getattr(e, device_time), reverse=True)
    return [(e.key, getattr(e, device_time) / 1000 / steps) for e in events[:rows]]


def lrn_alone(batch: int, rounds: int) -> list[tuple[str, float, float]]:
    """Forward and backward of the fused LRN and the pure-torch one, taking turns, at AlexNet's
    two LRN layers (conv1's and conv2's maps): (setting, fused ms, pure-torch ms), medians."""
    results = []
    for channels, side in ((96, 55), (256, 27)):
        for precision in PRECISIONS:
            for layout in (torch.channels_last, torch.contiguous_format):
                dtype = torch.bfloat16 if precision == "bf16" else torch.float32
                a = torch.randn(batch, channels, side, side, device=DEVICE, dtype=dtype)
                a = a.contiguous(memory_format=layout).requires_grad_()
                grad = torch.randn_like(a)
                lrn = LocalResponseNorm(groups=2)
                times: dict[bool, list[float]] = {True: [], False: []}
                for turn in range(2 * rounds + 2):  # the first turn of each: warm-up
                    lrn.fused = turn % 2 == 0
                    start = time.perf_counter()
                    lrn(a).backward(grad)
                    synchronize()
                    if turn >= 2:
                        times[lrn.fused].append(1000 * (time.perf_counter() - start))
                cl = "channels-last" if layout == torch.channels_last else "NCHW"
                setting = f"{batch}x{channels}x{side}x{side}, {precision}, {cl}"
                results.append(
                    (setting, statistics.median(times[True]), statistics.median(times[False]))
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="turns each net takes [5]")
    parser.add_argument("--steps", type=int, default=2, help="steps per turn [2]")
    parser.add_argument("--alexnet-batch", type=int, default=64)
    parser.add_argument("--convnet-batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="Fashion-MNIST epochs timed [3]")
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument(
        "--subset", type=int, help="Fashion-MNIST training images of the epoch and target [all]"
    )
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile's [inductor]")
    parser.add_argument(
        "--width", type=float, default=1.0, help="our AlexNet's width (torchvision's keeps its) [1]"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a check that every part runs, in seconds (the numbers mean nothing): --rounds 1 "
        "--steps 1 --alexnet-batch 2 --convnet-batch 4 --epochs 1 --subset 256 "
        "--width 0.25 --compile-backend eager, no warm-up step, the target run one epoch long",
    )
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.steps, args.alexnet_batch, args.convnet_batch = 1, 1, 2, 4
        args.epochs, args.subset, args.compile_backend, args.width = 1, 256, "eager", 0.25
    global DEVICE, COMPILE_BACKEND
    DEVICE, COMPILE_BACKEND = torch.device(args.device), args.compile_backend
    where = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {where}, {allocator()}")
    if args.smoke:
        print("--smoke: every part once, at toy sizes; the numbers mean nothing")
    if args.width != 1:
        print(f"our AlexNet at width {args.width} (the paper's is 1)")

    all_subjects = subjects(args.alexnet_batch, args.convnet_batch, args.width)
    measure_steps(all_subjects, args.rounds, args.steps, warm_up=not args.smoke)
    print("\n| net | precision | channels-last | images/s (median) | min | max |")
    print("|---|---|---|---:|---:|---:|")
    for s in all_subjects:
        cl = "on" if s.channels_last else "off"
        print(
            f"| {s.name} | {s.precision} | {cl} | {statistics.median(s.rates):.0f} "
            f"| {min(s.rates):.0f} | {max(s.rates):.0f} |"
        )
    names = list(dict.fromkeys(s.name for s in all_subjects))[:3]  # (a), (b), (c): every setting
    a, b = best(all_subjects, names[0]), best(all_subjects, names[1])
    ratio = statistics.median(a.rates) / statistics.median(b.rates)
    print(f"\na/b = {ratio:.2f}, each at its best: {a.label} vs {b.label}")
    for name in names:
        for cl in (False, True):
            bf16 = median_rate(all_subjects, name, "bf16", cl)
            fp32 = median_rate(all_subjects, name, "fp32", cl)
            print(f"bf16/fp32 = {bf16 / fp32:.2f}: {name}, channels-last {'on' if cl else 'off'}")

    by_name = {s.name: s for s in all_subjects if s.precision == "bf16" and s.channels_last}
    for name in ("(a) pure-torch LRN", "(a) without LRN"):
        rate = statistics.median(by_name[name].rates)
        print(f"{name}: {rate / statistics.median(a.rates):.2f}x the images/s of (a)")
    for name in (names[0], "(a) without LRN"):
        print(f"\nwhere {name}'s step goes (bf16, channels-last), ms a step, self time:")
        for op, ms in profile_rows(by_name[name]):
            print(f"  {ms:8.1f}  {op}")

    print("\n| LRN forward + backward | fused ms | pure-torch ms | pure-torch / fused |")
    print("|---|---:|---:|---:|")
    speedups = []
    for setting, fused, reference in lrn_alone(args.alexnet_batch, args.rounds):
        speedups.append(reference / fused)
        print(f"| {setting} | {fused:.1f} | {reference:.1f} | {reference / fused:.2f} |")
    print(f"fused LRN: {statistics.median(speedups):.2f}x the pure-torch LRN (median of the rows)")
    if DEVICE.type == "cuda":
        return  # the rest times the CPU training path of small datasets

    val_size = 256 if args.subset else 5000  # a subset's epoch: its validation set shrinks too
    costs = [epoch_cost(args.subset, val_size) for _ in range(args.epochs)]
    compute = statistics.median(c.compute for c in costs)
    data = statistics.median(c.data / c.compute for c in costs)
    lightning = statistics.median(c.lightning / c.compute - 1 for c in costs)
    print(
        f"\nconvnet4 epoch on Fashion-MNIST (fp32, channels-last), medians of {len(costs)}: "
        f"{compute:.1f} s of training steps on one batch; the data path alone (uint8 batches "
        f"fetched, normalized) +{100 * data:.0f}% of that; the whole epoch through Lightning "
        f"(data, steps, metrics, logging, hooks) +{100 * lightning:.0f}%"
    )
    scaled = [f"data.subset={args.subset}", f"data.val_size={val_size}"] if args.subset else []
    if args.smoke:
        scaled.append("trainer.max_epochs=1")
    results = time_to_target(0.18, tuple(scaled))
    run = "convnet4 ReLU lr 0.004 (pinned fp32, channels-last)" + (
        f", {args.subset} images" if args.subset else ""
    )
    if "train/seconds_to_target" in results:
        print(
            f"time to 18% training error, {run}: {results['train/seconds_to_target']:.1f} s, "
            f"{results['train/epochs_to_target']:.1f} epochs"
        )
    else:
        error = results["train/err_top1"]
        print(f"time to 18% training error, {run}: not reached (training error {error:.3f})")


if __name__ == "__main__":
    main()
