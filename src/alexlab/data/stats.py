"""Pixel statistics of an ImageNet training folder, cached next to it: the mean and std of each RGB
channel (0-255), and the eigenpairs of the 3x3 covariance of RGB values scaled to [0, 1], for PCA
lighting (`augment.channel_eigenpairs`). `python -m alexlab.data.write_stats` computes them ahead
of the first run (`ImageNetFolderDataModule.setup()` would on first use)."""

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from PIL import Image
from rich.progress import track
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import ImageFolder

from alexlab.data.augment import channel_eigenpairs
from alexlab.errors import DataNotFoundError, UserError

RESIZE = 256  # Section 2: shorter side rescaled to 256, then the central 256x256 patch
# Pixels kept for the covariance: enough for 3x3 eigenpairs, small enough to hold in memory.
COVARIANCE_PIXELS = 10_000_000
# Bumped when the cached statistics change meaning; a cache of another format is computed again.
# 2: eigenpairs of [0, 1] pixel values (format 1's were of 0-255 values: 65,025 times larger).
STATS_FORMAT = 2


def resize_centre() -> transforms.Compose:
    """PIL image -> the paper's fixed-resolution 256x256 PIL image."""
    return transforms.Compose([transforms.Resize(RESIZE), transforms.CenterCrop(RESIZE)])


def pixel_values(image: Image.Image) -> torch.Tensor:
    """A PIL image as float pixel values 0-255 (C, H, W): the paper's inputs, for which its
    N(0, 0.01) init is scaled."""
    return transforms.functional.pil_to_tensor(image).float()


def image_folder(folder: Path, transform: Callable) -> ImageFolder:
    """ImageFolder, failing with a one-line DataNotFoundError when a class folder has no images."""
    try:
        return ImageFolder(folder, transform=transform)
    except FileNotFoundError as e:
        raise DataNotFoundError(f"data.root={folder.parent}: {folder.name}/: {e}") from e


def compute_stats(train_dir: Path, images: int = 10_000, num_workers: int = 2) -> dict:
    """Mean, std and RGB eigenpairs of up to `images` training images (0-255), seeded draw."""
    to_pixels = transforms.Compose([resize_centre(), transforms.Lambda(pixel_values)])
    dataset = image_folder(train_dir, to_pixels)
    # A random subset, not the first N: ImageFolder lists images class by class.
    chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:images]
    # A generator of its own: a DataLoader without one draws its workers' seed from torch's
    # global generator, and a run that computes the stats would then train from another state
    # than the same run that finds them cached.
    loader = DataLoader(
        Subset(dataset, chosen.tolist()),
        batch_size=64,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(0),
    )
    return pixel_stats((batch for batch, _ in loader), len(chosen))


def pixel_stats(batches: Iterable[torch.Tensor], images: int) -> dict:
    """Mean, std and RGB eigenpairs of `images` images arriving as (N, 3, H, W) batches."""
    generator = torch.Generator().manual_seed(0)
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count, samples = 0, []
    for batch in track(batches, description=f"RGB stats of {images} images", total=None):
        pixels = batch.flatten(2).double()  # (N, 3, H*W)
        total += pixels.sum((0, 2))
        squares += pixels.square().sum((0, 2))
        count += pixels.shape[0] * pixels.shape[2]
        per_image = min(pixels.shape[2], COVARIANCE_PIXELS // images)
        keep = torch.randperm(pixels.shape[2], generator=generator)[:per_image]
        samples.append(pixels[:, :, keep, None].float())
    mean = total / count
    std = (squares / count - mean.square()).sqrt()
    eigval, eigvec = channel_eigenpairs(torch.cat(samples))
    return {
        "mean": mean.float(),
        "std": std.float(),
        "eigval": eigval,
        "eigvec": eigvec,
        "images": images,
        "format": STATS_FORMAT,
    }


def save_stats(stats: dict, path: Path) -> None:
    """Write to a temporary file and rename it, so a killed run never leaves half a cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise UserError(
            f"data.stats_file={path}: cannot write it ({e.strerror}); "
            "set data.stats_file to a writable path"
        ) from e
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide a shared dataset's cache from other users
        with os.fdopen(fd, "wb") as f:
            torch.save(stats, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_or_compute_stats(path: Path, compute: Callable[[], dict]) -> dict:
    """The cached stats at `path`, computed and cached first if there are none or they are of
    another format."""
    if path.exists():
        stats = torch.load(path, map_location="cpu", weights_only=True)
        if stats.get("format") == STATS_FORMAT:
            return stats
        print(f"{path}: statistics of an older format; computing them again")
    stats = compute()
    save_stats(stats, path)
    return stats
