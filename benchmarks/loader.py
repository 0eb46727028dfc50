"""Images/s of the ImageNet training pipelines on the same real JPEGs, in one process:

  (a) FFCV: the paper's pipeline from a .beton (random crop, flip, mean, PCA lighting)
  (b) torchvision: the same pipeline from the JPEG folder (ImageFolder + PIL, DataLoader workers)
  (c) the raw decode limit: libjpeg-turbo (simplejpeg) decoding the stored 256x256 JPEGs, one
      process per core, nothing else

Each is timed over repeated epochs after a warm-up epoch; medians are printed, with a/b and a/c.
The batches are finished (normalized, lit) by the datamodule's `on_after_batch_transfer` under a
real Lightning Trainer in its training stage, as in a run.

    python benchmarks/loader.py [--images 2000] [--epochs 5] [--batch-size 128] [--workers 2]
    python benchmarks/loader.py --smoke  # the same code paths in seconds: 40 images, 1 epoch
"""

import argparse
import importlib.util
import io
import logging
import statistics
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import lightning as L
import simplejpeg
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image

from alexlab.api import build
from alexlab.data.stats import resize_centre
from alexlab.data.write_beton import write_beton


def sample_jpegs() -> list[Path]:
    """The 20 real ImageNet JPEGs that the PyPI package foolbox ships (it is not imported)."""
    folder = Path(importlib.util.find_spec("foolbox").submodule_search_locations[0]) / "data"
    return sorted(folder.glob("imagenet_*.jpg"))


def make_imagenet(root: Path, images: int) -> None:
    """An ImageFolder train/ and val/ of `images` files, the real samples repeated."""
    jpegs = sample_jpegs()
    for split in ("train", "val"):
        for i in range(images):
            jpeg = jpegs[i % len(jpegs)]
            folder = root / split / jpeg.stem.split("_")[-1]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i:05d}.JPEG").write_bytes(jpeg.read_bytes())


def images_per_second(batches, epochs: int) -> list[float]:
    """Per-epoch rates after one warm-up epoch; `batches()` starts an epoch."""
    rates = []
    for epoch in range(epochs + 1):
        start, count = time.perf_counter(), 0
        for images, _ in batches():
            count += len(images)
        if epoch:  # the first epoch compiles (FFCV) and starts workers (both)
            rates.append(count / (time.perf_counter() - start))
    return rates


def training_trainer() -> L.Trainer:
    """A Lightning Trainer on this CPU in the state `fit` puts it in for the training batches:
    what a datamodule reads of its trainer (stage, world size, device) is the real thing."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)  # tips
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.state.fn = TrainerFn.FITTING
    trainer.training = True
    return trainer


def as_training(data) -> callable:
    """The datamodule's training batches, finished as Lightning would on this CPU."""
    data.trainer = training_trainer()
    loader = data.train_dataloader()

    def batches():
        for batch in loader:
            yield data.on_after_batch_transfer(batch, 0)

    return batches


def stored_jpegs(root: Path, quality: int) -> list[bytes]:
    """The 256x256 JPEGs as the .beton stores them."""
    encoded = []
    for path in sorted((root / "train").rglob("*.JPEG")):
        buffer = io.BytesIO()
        resize_centre()(Image.open(path).convert("RGB")).save(buffer, "JPEG", quality=quality)
        encoded.append(buffer.getvalue())
    return encoded


def decode_all(jpegs: list[bytes]) -> int:
    for data in jpegs:
        simplejpeg.decode_jpeg(data, fastdct=True)
    return len(jpegs)


def decode_limit(jpegs: list[bytes], workers: int, epochs: int) -> list[float]:
    shards = [jpegs[i::workers] for i in range(workers)]
    with Pool(workers) as pool:

        def batches():
            return [(range(n), None) for n in pool.map(decode_all, shards)]

        return images_per_second(batches, epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=len(__import__("os").sched_getaffinity(0)))
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument(
        "--val-per-class", type=int, default=10, help="training images held out a class [10]"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a check that it runs, in seconds: --images 40 --epochs 1 --batch-size 16 "
        "--workers 1 --val-per-class 1 (the rates mean nothing)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.images, args.epochs, args.batch_size, args.workers = 40, 1, 16, 1
        args.val_per_class = 1
    paper = build("data.augment", ["data=imagenet_ffcv"], crop_chunk=1)  # crops, flips, lighting
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_imagenet(root, args.images)
        for split in ("train", "val"):
            for raw in (False, True):
                out = root / f"{split}{'_raw' if raw else ''}.beton"
                write_beton(root / split, out, args.quality, raw=raw, workers=args.workers)
        common = {
            "batch_size": args.batch_size,
            "num_workers": args.workers,
            "augment": paper,
            "val_per_class": args.val_per_class,
        }
        ffcv, ffcv_raw, folder = (
            build("data", [f"data={kind}"], **where, **common)
            for kind, where in (
                (
                    "imagenet_ffcv",
                    {"train_beton": root / "train.beton", "test_beton": root / "val.beton"},
                ),
                (
                    "imagenet_ffcv",
                    {"train_beton": root / "train_raw.beton", "test_beton": root / "val.beton"},
                ),
                ("imagenet_folder", {"root": root}),
            )
        )
        for data in (ffcv, ffcv_raw, folder):
            data.prepare_data()
            data.setup("fit")
        rates = {
            "(a) FFCV paper pipeline": images_per_second(as_training(ffcv), args.epochs),
            "(a') the same from raw pixels": images_per_second(as_training(ffcv_raw), args.epochs),
            "(b) torchvision ImageFolder + PIL": images_per_second(
                as_training(folder), args.epochs
            ),
            "(c) raw JPEG decode, simplejpeg": decode_limit(
                stored_jpegs(root, args.quality), args.workers, args.epochs
            ),
        }
        ffcv.teardown("fit")
        ffcv_raw.teardown("fit")
    print(
        f"\n{args.images} real ImageNet JPEGs (20 samples repeated), output {ffcv.crop_size}x"
        f"{ffcv.crop_size}, batch "
        f"{args.batch_size}, {args.workers} workers, median of {args.epochs} epochs after a warm-up\n"
    )
    print("| pipeline | images/s (median) | min | max |\n|---|---:|---:|---:|")
    medians = {}
    for name, values in rates.items():
        medians[name.split()[0]] = statistics.median(values)
        print(
            f"| {name} | {medians[name.split()[0]]:.0f} | {min(values):.0f} | {max(values):.0f} |"
        )
    print(
        f"\na/b = {medians['(a)'] / medians['(b)']:.2f}   a/c = {medians['(a)'] / medians['(c)']:.2f}"
    )


if __name__ == "__main__":
    main()
