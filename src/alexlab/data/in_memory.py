"""Small datasets held in memory as uint8 tensors, augmented a whole batch at a time."""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import TensorDataset

from alexlab.data.augment import Augment, augment_batch, channel_eigenpairs, normalize
from alexlab.data.splits import SplitsDataModule
from alexlab.errors import ConfigError, DataNotFoundError, check_choice, check_range, first_line
from alexlab.switches import MEANS


class TensorBatches(TensorDataset):
    """Fetched a batch at a time: the DataLoader's sampler hands `__getitems__` a batch of indices
    and gets back (images, labels) from one gather each; no per-image Python, nothing to collate."""

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices)
        return [tensor[index] for tensor in self.tensors]


def batch_as_is(batch: list[torch.Tensor]) -> list[torch.Tensor]:
    return batch


def download(dataset: Callable[..., Any], root: Path) -> None:
    """torchvision's download of `dataset` into `root` (data.download=true): a machine without
    internet, or a download cut short, is one line naming the switch, not a URLError traceback,
    and leaves no folder it made."""
    made = not root.exists()
    try:
        dataset(root, download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; torchvision's mirrors end
        # in a RuntimeError
        if made:
            shutil.rmtree(root, ignore_errors=True)
        raise DataNotFoundError(
            f"data.download=true: {dataset.__name__} could not be downloaded into {root} "
            f"({first_line(error)}); put its files there, or download on a machine with internet"
        ) from None


class InMemoryDataModule(SplitsDataModule):
    """A dataset small enough to hold as one uint8 tensor (Fashion-MNIST, CIFAR-10).

    Batches leave the loader as uint8 and are converted, normalized and augmented on the training
    device in `on_after_batch_transfer`, so no per-image Python runs in the training loop.
    `mean="image"` subtracts the training set's mean image from the raw pixel values 0-255, as the
    paper and cuda-convnet do (the paper's init N(0, 0.01) is scaled for such inputs);
    `"normalize"` standardizes each channel. `val_size` training images are held out for
    validation. `train_eval_images`: the first N images of the training split are also scored in
    the test, un-augmented and in eval mode (train_eval/*), as the test set is.
    """

    num_classes: int
    in_channels: int
    image_size: int
    collate_fn = staticmethod(batch_as_is)

    def __init__(
        self,
        *,
        batch_size: int,
        val_size: int,
        subset: int | None,
        train_eval_images: int | None,
        augment: Augment,
        mean: str,
        num_workers: int,
        seed: int,
        num_classes: int,
        in_channels: int,
        image_size: int,
    ) -> None:
        super().__init__()
        # The data's shape as its config states it for the model's (conf/model reads data.*): a
        # dataset of one shape takes only its own.
        shape = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}
        for key, value in shape.items():
            check_choice(key, value, [getattr(self, key)])
        check_range("batch_size", batch_size, 1, float("inf"))
        check_choice("mean", mean, MEANS)
        for name, value in (("subset", subset), ("train_eval_images", train_eval_images)):
            if value is not None:
                check_range(name, value, 1, float("inf"))
        self.batch_size, self.val_size, self.subset = batch_size, val_size, subset
        self.train_eval_images = train_eval_images
        self.augment = augment
        self.mean_mode, self.num_workers, self.seed = mean, num_workers, seed

    def read(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """(train images, labels), (test images, labels); images uint8 (N, C, H, W)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        (images, labels), (test_images, test_labels) = self.read()
        if self.val_size >= len(images):
            raise ConfigError(
                "val_size",
                self.val_size,
                f"the training set has {len(images)} images: hold out fewer, to train on the rest",
            )
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        val, train = order[: self.val_size], order[self.val_size :]
        if self.subset is not None:
            if self.subset > len(train):
                raise ConfigError(
                    "subset",
                    self.subset,
                    f"the training split has {len(train)} images "
                    f"({len(images)} less val_size={self.val_size})",
                )
            train = train[: self.subset]
        self.splits = {
            "train": TensorBatches(images[train], labels[train]),
            "val": TensorBatches(images[val], labels[val]),
            "test": TensorBatches(test_images, test_labels),
        }
        if self.train_eval_images is not None:
            if self.train_eval_images > len(train):
                raise ConfigError(
                    "train_eval_images",
                    self.train_eval_images,
                    f"the training split has {len(train)} images: score at most that many",
                )
            scored = train[: self.train_eval_images]
            self.splits["train_eval"] = TensorBatches(images[scored], labels[scored])
        self._fit_statistics(images[train])

    def _fit_statistics(self, train_images: torch.Tensor) -> None:
        sample = train_images[:10_000].float()
        if self.mean_mode == "image":
            self.mean = train_images.double().mean(0).float()
            self.std = torch.ones(1)
        else:
            self.mean = sample.mean((0, 2, 3))[:, None, None]
            self.std = sample.std((0, 2, 3))[:, None, None]
        # Of the raw pixels, whatever `mean` is: the lighting converts its shift to the batch's units.
        self.eigval, self.eigvec = channel_eigenpairs(sample)

    def on_after_batch_transfer(self, batch: list[torch.Tensor], dataloader_idx: int) -> list:
        images, labels = batch
        images = normalize(images, self.mean, self.std)
        if self.trainer is not None and self.trainer.training:
            aug = self.augment
            images = augment_batch(
                images, aug, images.shape[-1], self.eigval, self.eigvec, self.std, aug.crop_padding
            )
        return [images, labels]
