"""CIFAR-10 (Krizhevsky, 2009), read from its own python-pickle batches."""

import pickle
from pathlib import Path

import numpy as np
import torch

from alexlab.data.in_memory import InMemoryDataModule
from alexlab.errors import DataNotFoundError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


def read_batches(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels of CIFAR-10 pickle batches."""
    images, labels = [], []
    for path in paths:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch["labels"])
    return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)


class CIFAR10DataModule(InMemoryDataModule):
    """CIFAR-10 from `root`/cifar-10-batches-py; with `download=True`, torchvision fetches it there."""

    num_classes, in_channels, image_size = 10, 3, 32

    def __init__(self, root: str = "data", download: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.download = Path(root), download

    def _folder(self) -> Path:
        folder = self.root / FOLDER
        missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if not (folder / n).exists()]
        if missing and self.download:
            from torchvision.datasets import CIFAR10

            CIFAR10(self.root, download=True)
        elif missing:
            raise DataNotFoundError(
                f"data.root={self.root}: no CIFAR-10 batches in {folder} (missing {missing[0]}); "
                "unpack cifar-10-python.tar.gz there, or set data.download=true on a machine "
                "with internet"
            )
        return folder

    def prepare_data(self) -> None:
        self._folder()

    def read(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        folder = self._folder()
        return read_batches([folder / n for n in TRAIN_BATCHES]), read_batches(
            [folder / TEST_BATCH]
        )
