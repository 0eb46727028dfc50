"""Write one ImageNet split (ImageFolder layout) as an FFCV .beton file, preprocessed as in Section 2.

    python -m alexlab.data.write_beton --src ROOT/train --out train.beton [--quality 90 | --raw]

Every image is rescaled so its shorter side is 256 and cut to its central 256x256 patch once, here,
so the loader only decodes and crops. Labels are ImageFolder's: the index of the image's class
folder among the sorted class folders. Run it once per split (ROOT/train, then ROOT/val).
"""

import argparse
import contextlib
import functools
import multiprocessing
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.pool import ThreadPool
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from unittest import mock

import ffcv.writer
import numpy as np
from PIL import Image
from rich.progress import Progress, track
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from alexlab.data.ffcv_ops import DatasetWriter, IntField, RGBImageField
from alexlab.data.stats import resize_centre
from alexlab.errors import DataNotFoundError, UserError

# What a writer worker returns once any image has failed: the file is deleted anyway, and a tiny
# image lets the remaining samples go through fast instead of decoding every one of them.
PLACEHOLDER = np.zeros((1, 1, 3), np.uint8)
MAX_ERROR_BYTES = 4096


def default_workers() -> int:
    return os.cpu_count() or 1


def paper_image(path: str) -> np.ndarray:
    """The paper's 256x256 RGB image (H, W, 3) uint8; other colour modes converted as torchvision's
    loader does."""
    with Image.open(path) as image:
        return np.asarray(resize_centre()(image.convert("RGB")))


class PaperImages:
    """(image, label) pairs for FFCV's writer. Runs in its worker processes, where an exception
    would make the writer wait forever for the missing sample; so a failure is recorded in
    `error` (shared memory) instead, and the writer is left to finish quickly."""

    def __init__(self, samples: list[tuple[str, int]]) -> None:
        self.samples = samples
        self.error = multiprocessing.Array("c", MAX_ERROR_BYTES)
        self.done = multiprocessing.Value("q", 0)  # images read, for the progress bar

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if self.error.value:
            return PLACEHOLDER, 0
        path, label = self.samples[index]
        try:
            image = paper_image(path)
            with self.done.get_lock():
                self.done.value += 1
            return image, label
        except Exception as e:
            if not isinstance(e, OSError):  # not a bad file but a bug: keep its traceback
                traceback.print_exc()
            message = (
                f"{path}: cannot read this image ({type(e).__name__}: {e}); delete or replace it"
            )
            with self.error.get_lock():
                if not self.error.value:
                    self.error.value = message.encode()[: MAX_ERROR_BYTES - 1]
            return PLACEHOLDER, 0


def list_images(src: Path) -> list[tuple[str, int]]:
    """(path, label) of every image, in ImageFolder's order and with its labels."""
    if not src.is_dir():
        raise DataNotFoundError(f"--src {src}: no such folder")
    try:
        classes, class_to_idx = find_classes(src)
        samples = make_dataset(src, class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:  # no class folders, or a class folder without images
        raise DataNotFoundError(
            f"--src {src}: {e} Expected ImageFolder layout: {src}/<class>/*.JPEG"
        ) from e
    # ImageFolder finds images at any depth, so ROOT instead of ROOT/train would pass as a
    # dataset with the two classes train and val.
    splits = sorted({"train", "val"} & set(classes))
    if splits:
        raise DataNotFoundError(
            f"--src {src}: holds {'/, '.join(splits)}/; pass one split, e.g. --src {src}/{splits[0]}"
        )
    return samples


def unreadable(path: str) -> str | None:
    """Why PIL cannot read the file's header, or None. Cheap: verify() decodes no pixels."""
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as e:  # PIL raises many types for bad files (OSError, SyntaxError, ...)
        return f"{type(e).__name__}: {e}"
    return None


def find_corrupt(samples: list[tuple[str, int]], workers: int) -> dict[str, str]:
    """{path: problem} of the files that are not readable images."""
    paths = [path for path, _ in samples]
    # Threads: the work is mostly file reads, which release the GIL.
    with ThreadPool(workers) as pool:
        checked = pool.imap(unreadable, paths, chunksize=64)
        problems = list(
            track(checked, total=len(paths), description=f"Checking {len(paths)} images")
        )
    return {path: problem for path, problem in zip(paths, problems, strict=True) if problem}


@contextlib.contextmanager
def progress_polled(description: str, total: int, done: Synchronized) -> Iterator[None]:
    """A progress bar for the block, as rich's `track` draws one, of work done in other processes
    that count it in `done`."""
    finished = threading.Event()
    with Progress(*Progress.get_default_columns()) as progress:
        task = progress.add_task(description, total=total)

        def poll() -> None:
            while not finished.wait(0.2):
                progress.update(task, completed=done.value)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            finished.set()
            thread.join()
            progress.update(task, completed=done.value)


def cleanup(writer: object, children_before: set, partial: Path) -> None:
    """After a failed write: stop the writer's workers, free its shared memory, delete the file."""
    for child in set(multiprocessing.active_children()) - children_before:
        child.terminate()
        child.join()
    shared = getattr(writer, "metadata_sm", None)
    if hasattr(shared, "unlink"):  # FFCV only frees it after a successful write
        with contextlib.suppress(OSError):
            shared.close()
            shared.unlink()
    partial.unlink(missing_ok=True)


def write_beton(
    src: str | Path,
    out: str | Path,
    quality: int = 90,
    raw: bool = False,
    workers: int | None = None,
    skip_corrupt: bool = False,
) -> int:
    """Write the ImageFolder `src` to the .beton file `out` with fields "image" (256x256x3 uint8,
    JPEG of `quality` or raw pixels) and "label" (int); returns the number of images written.
    `workers` (default: all CPUs) read images in parallel, both in the check and the write."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not raw and not 1 <= quality <= 100:
        raise UserError(f"--quality {quality}: expected a JPEG quality from 1 to 100")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1")
    # More writer processes than CPUs only add overhead (FFCV's loader even refuses them).
    workers = min(workers, default_workers())
    if out.exists():
        raise UserError(f"--out {out} already exists; delete it or choose another path")
    samples = list_images(src)

    corrupt = find_corrupt(samples, workers)
    if corrupt and not skip_corrupt:
        path, problem = next(iter(corrupt.items()))
        more = f" (and {len(corrupt) - 1} more)" if len(corrupt) > 1 else ""
        raise UserError(
            f"{path}{more}: not a readable image ({problem}); "
            "delete it, or pass --skip-corrupt to leave such files out"
        )
    if corrupt:
        files = "file" if len(corrupt) == 1 else "files"
        print(f"skipping {len(corrupt)} unreadable {files}:", file=sys.stderr)
        for path, problem in corrupt.items():
            print(f"  {path}: {problem}", file=sys.stderr)
        samples = [sample for sample in samples if sample[0] not in corrupt]
        if not samples:
            raise DataNotFoundError(f"--src {src}: no readable images")

    image_field = (
        RGBImageField(write_mode="raw")
        if raw
        else RGBImageField(write_mode="jpg", jpeg_quality=quality)
    )
    fields = {"image": image_field, "label": IntField()}  # the names the loader reads
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written under another name and renamed when complete, so `out` is never half a file.
    partial = out.with_name(out.name + ".partial")
    dataset = PaperImages(samples)
    writer = None
    children_before = set(multiprocessing.active_children())
    try:
        writer = DatasetWriter(str(partial), fields, num_workers=workers)
        # FFCV's own bar (tqdm, on stderr) is off: the check's and the write's are rich's.
        quiet = functools.partial(ffcv.writer.tqdm, disable=True)
        with (
            mock.patch.object(ffcv.writer, "tqdm", quiet),
            progress_polled(f"Writing {len(samples)} images", len(samples), dataset.done),
        ):
            writer.from_indexed_dataset(dataset)
        if dataset.error.value:
            raise UserError(dataset.error.value.decode(errors="replace"))
        os.replace(partial, out)
    except BaseException:
        cleanup(writer, children_before, partial)
        raise
    return len(samples)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m alexlab.data.write_beton", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--src", required=True, help="one split in ImageFolder layout")
    parser.add_argument("--out", required=True, help="the .beton file to write (must not exist)")
    encoding = parser.add_mutually_exclusive_group()
    encoding.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    encoding.add_argument(
        "--raw", action="store_true", help="store raw pixels: ~196 KB per image, no JPEG loss"
    )
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument(
        "--skip-corrupt", action="store_true", help="leave out files that are not readable images"
    )
    args = parser.parse_args(argv)
    try:
        count = write_beton(
            args.src, args.out, args.quality, args.raw, args.workers, args.skip_corrupt
        )
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {count} images to {args.out}")


if __name__ == "__main__":
    main()
