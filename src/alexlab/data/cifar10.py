"""CIFAR-10 (Krizhevsky, 2009), read from its own python-pickle batches."""

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alexlab.data.in_memory import InMemoryDataModule, download
from alexlab.errors import DataNotFoundError, UserError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


# What a CIFAR-10 batch's pickle may load: numpy's array reconstruction (the batches were written
# by Python 2's numpy, "numpy.core"; numpy 2 writes "numpy._core") and the codec Python 3 writes
# bytes with at protocol 2. Anything else (os.system, builtins.eval, ...) is refused unrun.
BATCH_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only the types of a CIFAR-10 batch: dicts, lists, str, bytes,
    ints and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"it asks to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """One batch's images (N, 3, 32, 32) uint8 and labels, checked: a file that is not a CIFAR-10
    batch is one line naming it."""
    try:
        with open(path, "rb") as f:
            batch = BatchUnpickler(f, encoding="latin1").load()
        data, labels = batch.get("data"), batch.get("labels")
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"its data is not rows of {3 * 32 * 32} bytes")
        if not isinstance(labels, list) or len(labels) != len(data):
            raise ValueError(f"it has {len(data)} images but not as many labels")
        if not all(isinstance(label, int) and 0 <= label < 10 for label in labels):
            raise ValueError("its labels are not classes 0-9")
    except (OSError, EOFError, AttributeError, pickle.UnpicklingError, ValueError) as error:
        raise UserError(
            f"{path}: not a CIFAR-10 python batch ({error}); unpack cifar-10-python.tar.gz there"
        ) from None
    images = np.asarray(data, np.uint8).reshape(-1, 3, 32, 32)
    return images, labels


def read_batches(paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) uint8 and labels of CIFAR-10 pickle batches."""
    batches = [read_batch(path) for path in paths]
    images = np.concatenate([images for images, _ in batches])
    labels = [label for _, batch_labels in batches for label in batch_labels]
    return torch.from_numpy(images), torch.tensor(labels, dtype=torch.long)


class CIFAR10DataModule(InMemoryDataModule):
    """CIFAR-10 from `root`/cifar-10-batches-py; with `download=True`, torchvision fetches it there."""

    num_classes, in_channels, image_size = 10, 3, 32

    def __init__(self, *, root: str, download: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.download = Path(root), download

    def _folder(self) -> Path:
        folder = self.root / FOLDER
        missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if not (folder / n).exists()]
        if missing and self.download:
            from torchvision.datasets import CIFAR10

            download(CIFAR10, self.root)
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
