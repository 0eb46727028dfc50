"""Fashion-MNIST (Xiao et al., 2017): 70k real 28x28 grey images, installable offline."""

import gzip
import math
from pathlib import Path

import numpy as np
import torch

from alexlab.data.in_memory import InMemoryDataModule, download
from alexlab.errors import DataNotFoundError, UserError

REINSTALL = "reinstall the Debian package dataset-fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path: Path, ndim: int) -> torch.Tensor:
    """An IDX file of `ndim` dimensions (LeCun's MNIST format of uint8, gzipped) as a tensor; a
    file that is not one (cut short, not gzip, images where labels belong) is one error line."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        raise UserError(f"{path}: not a whole gzip file ({error}); {REINSTALL}") from None
    if data[:3] != b"\x00\x00\x08" or len(data) < 4 or data[3] != ndim:
        raise UserError(f"{path}: not an IDX file of {ndim}-dimensional uint8 data; {REINSTALL}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != 4 + 4 * ndim + math.prod(shape):
        raise UserError(f"{path}: cut short or padded (its header says {shape}); {REINSTALL}")
    return torch.from_numpy(
        np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()
    )


class FashionMNISTDataModule(InMemoryDataModule):
    """Reads the gzipped IDX files in `root` (Debian's dataset-fashion-mnist puts them in
    /usr/share/datasets/fashion-mnist); with `download=True`, torchvision fetches them there."""

    num_classes, in_channels, image_size = 10, 1, 28

    def __init__(self, *, root: str, download: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root, self.download = Path(root), download

    def _folder(self) -> Path:
        # torchvision's download lands in root/FashionMNIST/raw
        for folder in (self.root, self.root / "FashionMNIST" / "raw"):
            if all((folder / name).exists() for pair in FILES.values() for name in pair):
                return folder
        if self.download:
            from torchvision.datasets import FashionMNIST

            download(FashionMNIST, self.root)
            return self.root / "FashionMNIST" / "raw"
        raise DataNotFoundError(
            f"data.root={self.root}: no Fashion-MNIST files ({', '.join(FILES['train'])}, ...); "
            "install the Debian package dataset-fashion-mnist, or set data.download=true "
            "on a machine with internet"
        )

    def prepare_data(self) -> None:
        self._folder()

    def read(self) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        folder = self._folder()

        def split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
            image_file, label_file = (folder / file for file in FILES[name])
            images, labels = read_idx(image_file, 3), read_idx(label_file, 1)
            if len(images) != len(labels) or labels.max() >= self.num_classes:
                raise UserError(
                    f"{label_file}: {len(labels)} labels up to {labels.max()} for the "
                    f"{len(images)} images of {image_file} (classes 0-9); {REINSTALL}"
                )
            return images[:, None], labels.long()

        return split("train"), split("test")
