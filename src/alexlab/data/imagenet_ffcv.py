"""ImageNet from FFCV .beton files (written by `python -m alexlab.data.write_beton`).

The paper's fixed-resolution 256x256 images are stored at write time; loading decodes them,
takes random `crop_size` crops and mirror images (training), the centre crop (validation) or the
10 patches (test), then subtracts the mean and adds PCA lighting on the training device.
"""

import os
from pathlib import Path

import numpy as np
import torch

from alexlab.data import stats as stats_module
from alexlab.data.augment import Augment, lighting_shift, normalize, ten_crop
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
from alexlab.data.imagenet_folder import CROP_SIZES, TEST_PATCHES
from alexlab.data.in_memory import MEANS
from alexlab.data.splits import SplitsDataModule
from alexlab.data.stats import RESIZE
from alexlab.errors import DataNotFoundError, check_choice, check_range

CROPS = ("paper", "random_resized")
BATCH_DTYPES = ("auto", "float32", "uint8")


class ImageNetFFCVDataModule(SplitsDataModule):
    """FFCV's compiled pipeline decodes, crops and mirrors each image in one pass; on a CPU the same
    pass subtracts the mean and adds the PCA lighting, yielding float32 batches. For a GPU it
    yields uint8 and ends with `ToDevice`, and `on_after_batch_transfer` does that arithmetic on
    the GPU (`batch_dtype` overrides the choice).

    `crop="paper"` takes plain random crops of the stored image; `"random_resized"` uses FFCV's
    RandomResizedCrop decoder (the modern recipe) instead. Under DDP each process reads its own
    shard (`distributed=True`).
    """

    in_channels = 3

    def __init__(
        self,
        train_beton: str,
        val_beton: str,
        batch_size: int = 128,
        num_workers: int = 2,
        crop_size: int = 227,
        crop: str = "paper",
        augment: Augment | None = None,
        mean: str = "image",
        test_patches: int = 10,
        stats_file: str | None = None,
        stats_images: int = 10_000,
        batch_dtype: str = "auto",
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_choice("crop_size", crop_size, CROP_SIZES)
        check_choice("test_patches", test_patches, TEST_PATCHES)
        check_choice("crop", crop, CROPS)
        check_choice("batch_dtype", batch_dtype, BATCH_DTYPES)
        check_choice("mean", mean, MEANS)
        check_range("batch_size", batch_size, 1, float("inf"))
        check_range("num_workers", num_workers, 1, float("inf"))
        self.betons = {"train": Path(train_beton), "val": Path(val_beton)}
        for split, path in self.betons.items():
            if not path.is_file():
                raise DataNotFoundError(
                    f"data.{split}_beton={path}: no such file; write it with "
                    f"python -m alexlab.data.write_beton --src IMAGENET/{split} --out {path}"
                )
        self.batch_size, self.crop_size, self.crop = batch_size, crop_size, crop
        # FFCV fails with more threads than cores.
        self.num_workers = min(num_workers, len(os.sched_getaffinity(0)))
        self.augment = augment or Augment()
        self.mean_mode, self.test_patches, self.seed = mean, test_patches, seed
        self.batch_dtype = batch_dtype
        self.stats_file = Path(stats_file or f"{self.betons['train']}.stats.pt")
        self.stats_images = stats_images
        self.loaders: list[SafeLoader] = []
        reader = Reader(str(self.betons["train"]))
        labels = reader.metadata[f"f{list(reader.handlers).index('label')}"]  # the IntField
        self.num_classes = int(labels.max()) + 1
        self.image_size = crop_size

    def _stats(self) -> dict:
        return stats_module.load_or_compute_stats(self.stats_file, self._compute_stats)

    def _compute_stats(self) -> dict:
        count = Reader(str(self.betons["train"])).num_samples
        chosen = np.random.default_rng(0).permutation(count)[: self.stats_images]
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
        self.std = stats["std"][:, None, None] if self.mean_mode == "normalize" else None
        self.eigval, self.eigvec = stats["eigval"], stats["eigvec"]

    def _loader(self, split: str, shuffle: bool = False) -> SafeLoader:
        """`split` is train, val or test (test reads the val beton, as ImageNet's test labels
        are not public); the loader is built when Lightning asks, after DDP has started."""
        aug, device = self.augment, self._device()
        train = split == "train"
        # Test batches keep the whole stored image; the 10 patches are cut on the device.
        size = RESIZE if split == "test" and self.test_patches == 10 else self.crop_size
        normalization = None
        if self._float_batches(device):
            normalization = Normalization(
                mean=self.mean.flatten().numpy(),
                std=(self.std if self.std is not None else torch.ones(3)).flatten().numpy(),
                eigval=self.eigval.numpy(),
                eigvec=self.eigvec.numpy(),
                lighting_std=aug.lighting_std if train and aug.pca_lighting else 0.0,
            )
        random_resized = train and self.crop == "random_resized"
        crop = Crop(
            size,
            random=train and aug.crops and not random_resized,
            flip=train and aug.flips,
            normalization=normalization,
        )
        decoder = (
            RandomResizedCropRGBImageDecoder((size, size))
            if random_resized
            else SimpleRGBImageDecoder()
        )
        to_device = [ToDevice(device, non_blocking=True)] if device.type == "cuda" else []
        loader = SafeLoader(
            str(self.betons["train" if train else "val"]),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            order=OrderOption.RANDOM if shuffle else OrderOption.SEQUENTIAL,
            distributed=self.trainer is not None and self.trainer.world_size > 1,
            seed=self.seed,
            pipelines={
                "image": [decoder, crop, ToTensor(), *to_device, ToTorchImage()],
                "label": [IntDecoder(), ToTensor(), Squeeze(), *to_device],
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
            shift = None
            if self.trainer is not None and self.trainer.training and self.augment.pca_lighting:
                eigval, eigvec = self.eigval.to(images.device), self.eigvec.to(images.device)
                shift = lighting_shift(len(images), eigval, eigvec, self.augment.lighting_std)
            images = normalize(images, self.mean, self.std, shift)
        if self.trainer is not None and self.trainer.testing and self.test_patches == 10:
            images = ten_crop(images, self.crop_size)
        return [images, labels]
