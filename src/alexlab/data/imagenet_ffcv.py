"""ImageNet from FFCV .beton files (written by `python -m alexlab.data.write_beton`).

The paper's fixed-resolution 256x256 images are stored at write time; loading decodes them,
takes random `crop_size` crops and mirror images (training), the centre crop (validation) or the
10 patches (test), then subtracts the mean and adds PCA lighting. Validation images are held out
of the training beton (`val_per_class` per class); the test beton is ILSVRC's val/.
"""

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alexlab.data import stats as stats_module
from alexlab.data.augment import augment_batch, normalize, ten_crop
from alexlab.data.ffcv_ops import (
    Crop,
    IntDecoder,
    Normalization,
    OrderOption,
    RandomResizedCropRGBImageDecoder,
    Reader,
    SafeLoader,
    SimpleRGBImageDecoder,
    Squeeze,
    ToDevice,
    ToTensor,
    ToTorchImage,
)
from alexlab.data.holdout import hold_out
from alexlab.data.imagenet_options import ImageNetOptions
from alexlab.data.splits import SplitsDataModule
from alexlab.data.stats import RESIZE
from alexlab.errors import ConfigError, DataNotFoundError, check_choice, check_range

CROPS = ("paper", "random_resized")
FOLDERS = {"train": "train", "test": "val"}  # ILSVRC's folder for each beton
BATCH_DTYPES = ("auto", "float32", "uint8")


class ImageNetFFCVDataModule(SplitsDataModule):
    """FFCV's compiled pipeline decodes, crops and mirrors each image in one pass; on a CPU the same
    pass subtracts the mean, yielding float32 batches. For a GPU it yields uint8 and ends with
    `ToDevice`, and `on_after_batch_transfer` subtracts the mean on the GPU (`batch_dtype`
    overrides the choice). PCA lighting is added in `on_after_batch_transfer` either way, by the
    function every loader augments with (`augment.augment_batch`); crops and flips follow
    `augment.crop_chunk` as the other loaders' do.

    `val_per_class` training images per class (drawn with `seed`) are the validation set, which
    the learning-rate schedule and the best checkpoint follow; `test_beton` (ILSVRC's val/, as
    its test labels are not public) is the test set.

    `crop="paper"` takes plain random crops of the stored image; `"random_resized"` uses FFCV's
    RandomResizedCrop decoder (the modern recipe) instead. Under DDP each process reads its own
    shard (`distributed=True`).
    """

    in_channels = 3

    def __init__(
        self,
        *,
        train_beton: str | Path,
        test_beton: str | Path,
        crop: str,
        batch_dtype: str,
        **options: Any,
    ) -> None:
        super().__init__()
        self.options = opts = ImageNetOptions(**options)
        check_choice("crop", crop, CROPS)
        check_choice("batch_dtype", batch_dtype, BATCH_DTYPES)
        check_range("num_workers", opts.num_workers, 1, float("inf"))
        self.betons = {"train": Path(train_beton), "test": Path(test_beton)}
        for split, path in self.betons.items():
            if not path.is_file():
                raise DataNotFoundError(
                    f"data.{split}_beton={path}: no such file; write it with "
                    f"python -m alexlab.data.write_beton --src IMAGENET/{FOLDERS[split]} "
                    f"--out {path} (make data-beton IMAGENET=... writes both)"
                )
        self.batch_size, self.crop_size, self.crop = opts.batch_size, opts.crop_size, crop
        # FFCV fails with more threads than cores.
        self.num_workers = min(opts.num_workers, len(os.sched_getaffinity(0)))
        self.augment, self.seed, self.batch_dtype = opts.augment, opts.seed, batch_dtype
        self.stats_file = Path(opts.stats_file or f"{self.betons['train']}.stats.pt")
        self.loaders: list[SafeLoader] = []
        reader = Reader(str(self.betons["train"]))
        labels = reader.metadata[f"f{list(reader.handlers).index('label')}"]  # the IntField
        self.num_classes, self.image_size = opts.num_classes, opts.image_size
        if labels.max() >= self.num_classes:
            raise ConfigError(
                "num_classes",
                self.num_classes,
                f"the labels of {self.betons['train']} go up to {labels.max()}: at least "
                f"{labels.max() + 1}",
            )
        train, val = hold_out(labels, opts.val_per_class, opts.seed)
        self.indices = {"train": train, "val": val}

    def _stats(self) -> dict:
        return stats_module.load_or_compute_stats(self.stats_file, self._compute_stats)

    def _compute_stats(self) -> dict:
        count = Reader(str(self.betons["train"])).num_samples
        chosen = np.random.default_rng(0).permutation(count)[: self.options.stats_images]
        loader = SafeLoader(
            str(self.betons["train"]),
            batch_size=64,
            num_workers=self.num_workers,
            indices=np.sort(chosen).astype(np.uint64),  # FFCV mixes them with uint64
            pipelines={
                "image": [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage()],
                "label": None,
            },
            drop_last=False,
        )
        return stats_module.pixel_stats((images for (images,) in loader), len(chosen))

    def prepare_data(self) -> None:
        self._stats()

    def setup(self, stage: str | None = None) -> None:
        stats = self._stats()
        self.mean = stats["mean"][:, None, None]
        self.std = stats["std"][:, None, None] if self.options.mean == "normalize" else None
        self.eigval, self.eigvec = stats["eigval"], stats["eigvec"]

    def _loader(self, split: str, shuffle: bool = False) -> SafeLoader:
        """`split` is train, val (held out of the train beton) or test (the test beton); the
        loader is built when Lightning asks, after DDP has started."""
        aug, device = self.augment, self._device()
        train = split == "train"
        # Test batches keep the whole stored image; the 10 patches are cut on the device.
        size = RESIZE if split == "test" and self.options.test_patches == 10 else self.crop_size
        normalization = None
        if self._float_batches(device):
            std = self.std if self.std is not None else torch.ones(3)
            normalization = Normalization(self.mean.flatten().numpy(), std.flatten().numpy())
        random_resized = train and self.crop == "random_resized"
        crop = Crop(
            size,
            random=train and aug.crops and not random_resized,
            flip=train and aug.flips,
            chunk=aug.crop_chunk,
            normalization=normalization,
            seed=self.seed,
        )
        decoder = (
            RandomResizedCropRGBImageDecoder((size, size))
            if random_resized
            else SimpleRGBImageDecoder()
        )
        to_device = [ToDevice(device, non_blocking=True)] if device.type == "cuda" else []
        loader = SafeLoader(
            str(self.betons["test" if split == "test" else "train"]),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            order=OrderOption.RANDOM if shuffle else OrderOption.SEQUENTIAL,
            indices=self.indices.get(split),
            distributed=self.trainer is not None and self.trainer.world_size > 1,
            seed=self.seed,
            pipelines={
                "image": [decoder, crop, ToTensor(), *to_device, ToTorchImage()],
                "label": [
                    IntDecoder(),
                    ToTensor(),
                    Squeeze(1),
                    *to_device,
                ],  # (B, 1) -> (B,), B=1 too
            },
            drop_last=False,
        )
        self.loaders.append(loader)
        return loader

    def teardown(self, stage: str) -> None:
        for loader in self.loaders:
            loader.close()

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer else torch.device("cpu")

    def _float_batches(self, device: torch.device) -> bool:
        """Float32 from FFCV's own compiled pass on a CPU (the fastest there); uint8 to a GPU, a
        quarter of the bytes, normalized there."""
        return self.batch_dtype == "float32" or (
            self.batch_dtype == "auto" and device.type == "cpu"
        )

    def on_after_batch_transfer(self, batch: list[torch.Tensor], dataloader_idx: int) -> list:
        images, labels = batch
        if images.dtype == torch.uint8:
            images = normalize(images, self.mean, self.std)
        if self.trainer is not None and self.trainer.training:
            # Cropped and mirrored in FFCV's pass; float batches from it are its buffer, lit in
            # place.
            aug, size = self.augment, self.crop_size
            images = augment_batch(
                images, aug, size, self.eigval, self.eigvec, self.std, cropped=True
            )
        trainer = self.trainer
        tests = trainer is not None and (
            trainer.testing or (trainer.predicting and self.predict_split == "test")
        )
        if tests and self.options.test_patches == 10:
            images = ten_crop(images, self.crop_size)
        return [images, labels]
