"""ImageNet from JPEG folders (ImageFolder layout), preprocessed as in Sections 2 and 4.1.

Every image is rescaled so its shorter side is 256 and cut to its central 256x256 patch. Training
batches of those are cropped to `crop_size`, mirrored and lit on the training device
(`augment.augment_batch`, as the in-memory datasets' are); validation, on images
held out of train/, takes the centre crop; the test takes the paper's 10 patches (4 corners +
centre, and their mirror images) of each val/ image, since ImageNet's test labels are not public.
"""

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Subset
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS

from alexlab.data import stats as stats_module
from alexlab.data.augment import augment_batch
from alexlab.data.holdout import hold_out
from alexlab.data.imagenet_options import ImageNetOptions
from alexlab.data.splits import SplitsDataModule
from alexlab.data.stats import image_folder, pixel_values, resize_centre
from alexlab.errors import ConfigError, DataNotFoundError


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the subfolders: ImageFolder's labels are their indices in this list."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())


def check_layout(root: Path) -> list[str]:
    """The class names, after checking (cheaply, without listing every image) that root holds
    ImageNet in ImageFolder layout."""

    def fail(problem: str) -> DataNotFoundError:
        return DataNotFoundError(
            f"data.root={root}: {problem}; expected ImageNet in ImageFolder layout: "
            f"{root}/train/<class>/*.JPEG and {root}/val/<class>/*.JPEG"
        )

    if not root.is_dir():
        raise fail("no such folder")
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise fail(f"no {split}/ folder")
    classes = class_folders(root / "train")
    if not classes:
        raise fail("no class folders in train/")
    # Labels are positions in the sorted class list, so val/ must list the same classes.
    val_classes = class_folders(root / "val")
    if val_classes != classes:
        odd = sorted(set(classes) ^ set(val_classes))
        raise fail(f"train/ and val/ have different class folders (e.g. {odd[0]})")
    for split in ("train", "val"):
        first = root / split / classes[0]
        if not any(name.lower().endswith(IMG_EXTENSIONS) for name in os.listdir(first)):
            raise fail(f"no images in {split}/{classes[0]}/")
    return classes


def stack_to_tensor(patches: tuple) -> torch.Tensor:
    """TenCrop's 10 PIL patches -> one (10, C, H, W) tensor."""
    return torch.stack([pixel_values(patch) for patch in patches])


def default_stats_file(root: Path) -> Path:
    """Where a folder's pixel statistics are cached when data.stats_file is null."""
    return root / "alexlab_stats.pt"


class ImageNetFolderDataModule(SplitsDataModule):
    """ImageNet from `root`/train/<class>/* and `root`/val/<class>/*.

    Pixel values are 0-255, as the paper's. `mean="image"` subtracts the training set's mean RGB
    value (the per-channel form of the paper's mean image, which random crops would misalign);
    `"normalize"` also divides each channel by its std. Those statistics and the RGB eigenpairs for PCA lighting come from
    `stats_images` training images and are cached in `stats_file` (default
    `root`/alexlab_stats.pt). `val_per_class` images of each class of train/ (drawn with `seed`)
    are held out for validation; val/ is the test set. Test batches are (N, 10, C, H, W) with
    `test_patches=10`, for the model to average its softmax over dim 1, and (N, C, H, W) with
    `test_patches=1`.
    """

    in_channels = 3

    def __init__(self, root: str | Path, **options: Any) -> None:
        super().__init__()
        self.options = opts = ImageNetOptions(**options)
        self.root = Path(root).expanduser()
        self.classes = check_layout(self.root)
        self.num_classes, self.image_size = opts.num_classes, opts.image_size
        if len(self.classes) > self.num_classes:
            raise ConfigError(
                "num_classes",
                self.num_classes,
                f"{self.root / 'train'} holds {len(self.classes)} class folders: at least that",
            )
        self.batch_size, self.num_workers, self.seed = opts.batch_size, opts.num_workers, opts.seed
        self.augment = opts.augment
        self.stats_file = Path(opts.stats_file or default_stats_file(self.root))

    def _stats(self) -> dict:
        # Looked up at call time, so that tests can stand in for the computation.
        return stats_module.load_or_compute_stats(
            self.stats_file,
            lambda: stats_module.compute_stats(
                self.root / "train", self.options.stats_images, self.num_workers
            ),
        )

    def prepare_data(self) -> None:
        # Lightning calls this on one process per node, so only one computes the cache.
        self._stats()

    def setup(self, stage: str | None = None) -> None:
        self.stats = self._stats()
        std = self.stats["std"] if self.options.mean == "normalize" else torch.ones(3)
        normalize = transforms.Normalize(self.stats["mean"].tolist(), std.tolist())
        if stage in (None, "fit", "validate") and "train" not in self.splits:  # listed once
            train = image_folder(self.root / "train", self.train_transform(normalize))
            val = copy.copy(train)  # the same listing of train/, another transform
            val.transform = self.val_transform(normalize)
            train_indices, val_indices = hold_out(
                np.array(train.targets), self.options.val_per_class, self.seed
            )
            self.splits["train"] = Subset(train, train_indices.tolist())
            self.splits["val"] = Subset(val, val_indices.tolist())
        if stage in (None, "test") and "test" not in self.splits:
            self.splits["test"] = image_folder(self.root / "val", self.test_transform(normalize))

    def train_transform(self, normalize: transforms.Normalize) -> transforms.Compose:
        """The stored 256x256 image, mean subtracted; `on_after_batch_transfer` augments it."""
        return transforms.Compose([resize_centre(), transforms.Lambda(pixel_values), normalize])

    def on_after_batch_transfer(self, batch: list[torch.Tensor], dataloader_idx: int) -> list:
        images, labels = batch
        if self.trainer is not None and self.trainer.training:
            std = self.stats["std"][:, None, None] if self.options.mean == "normalize" else None
            eigval, eigvec = self.stats["eigval"], self.stats["eigvec"]
            images = augment_batch(images, self.augment, self.image_size, eigval, eigvec, std)
        return [images, labels]

    def val_transform(self, normalize: transforms.Normalize) -> transforms.Compose:
        crop = transforms.CenterCrop(self.image_size)
        return transforms.Compose(
            [resize_centre(), crop, transforms.Lambda(pixel_values), normalize]
        )

    def test_transform(self, normalize: transforms.Normalize) -> transforms.Compose:
        if self.options.test_patches == 1:
            return self.val_transform(normalize)
        patches = [transforms.TenCrop(self.image_size), transforms.Lambda(stack_to_tensor)]
        return transforms.Compose([resize_centre(), *patches, normalize])
