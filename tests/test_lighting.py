"""PCA lighting (Section 4.1) in every loader: the same shift, in grey levels, for the same alpha.

The convention (src/alexlab/data/augment.py): eigenpairs of the covariance of RGB values scaled
to [0, 1], shift = 255 * eigvec @ (alpha * eigval) grey levels, alpha ~ N(0, 0.1) per image. The
expected values below come from numpy's covariance of the raw pixels and from fb.resnet.torch's
published ImageNet eigenpairs, never from the code under test.
"""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_imagenet_folder import JPEGS, add_copies, make_tree, resized

from alexlab.data.augment import Augment, lighting_shift
from alexlab.data.fashion_mnist import FashionMNISTDataModule
from alexlab.data.imagenet_ffcv import ImageNetFFCVDataModule
from alexlab.data.imagenet_folder import ImageNetFolderDataModule
from alexlab.data.write_beton import write_beton

pytestmark = pytest.mark.timeout(180)
LIGHTING_ONLY = Augment(crops=False, flips=False, pca_lighting=True, lighting_std=0.1)


def rms(shifts: torch.Tensor) -> float:
    """Root mean square length of (images, C) shifts: their standard deviation for one channel."""
    return shifts.square().sum(1).mean().sqrt().item()


def independent_eigval(images: torch.Tensor) -> np.ndarray:
    """Ascending eigenvalues of numpy's channel covariance of (N, C, H, W) 0-255 images / 255."""
    pixels = images.transpose(0, 1).reshape(images.shape[1], -1).double().numpy() / 255
    return np.linalg.eigvalsh(np.atleast_2d(np.cov(pixels)))


def assert_shift(shift: torch.Tensor, alpha: torch.Tensor, eigval, eigvec: torch.Tensor) -> None:
    """(N, C, H, W) shifts in grey levels: one colour per image, 255 * eigvec @ (alpha * eigval)."""
    per_image = shift.flatten(2)
    assert per_image.std(2).max() < 2e-3, "the shift is not constant over an image's pixels"
    eigval = torch.as_tensor(eigval, dtype=torch.float32)
    expected = 255 * (alpha * eigval) @ eigvec.T
    torch.testing.assert_close(per_image.mean(2), expected, atol=2e-3, rtol=2e-3)


def test_imagenet_statistics_give_a_shift_of_five_grey_levels():
    # fb.resnet.torch's ImageNet eigenpairs of [0, 1] RGB values (mmpretrain: the same x 255).
    eigval = torch.tensor([0.0045, 0.0188, 0.2175])
    eigvec = torch.tensor(
        [[0.4009, 0.7192, -0.5675], [-0.8140, -0.0045, -0.5808], [0.4203, -0.6948, -0.5836]]
    )
    torch.manual_seed(0)
    shifts = lighting_shift(100_000, eigval, eigvec, std=0.1)
    # By hand: 255 * 0.1 * sqrt(0.2175^2 + 0.0188^2 + 0.0045^2) = 5.57 grey levels.
    assert rms(shifts) == pytest.approx(5.57, rel=0.01)
    # mmpretrain's first eigenvalue for 0-255 pixels, 55.46, is 255 x fb.resnet.torch's.
    assert 255 * eigval[-1].item() == pytest.approx(55.46, abs=0.01)


def as_batches(data, training: bool) -> None:
    data.trainer = SimpleNamespace(training=training, testing=False, predicting=False)


@pytest.mark.parametrize("mean", ["image", "normalize"])
def test_fashion_mnist_shift_is_three_grey_levels_whatever_the_mean(fashion_mnist, mean):
    data = FashionMNISTDataModule(
        root=str(fashion_mnist), batch_size=2048, augment=LIGHTING_ONLY, mean=mean
    )
    data.setup()
    batch = next(iter(data.train_dataloader()))
    as_batches(data, training=False)
    plain, _ = data.on_after_batch_transfer(batch, 0)
    as_batches(data, training=True)
    torch.manual_seed(0)
    lit, _ = data.on_after_batch_transfer(batch, 0)
    shift = (lit - plain) * data.std  # in grey levels (std is 1 for mean=image)
    torch.manual_seed(0)
    alpha = torch.randn(len(lit), 1) * 0.1  # the lighting's one draw for the batch
    # The variance of Fashion-MNIST's pixels / 255 is about 0.125: 255 * 0.1 * 0.125 = 3.2.
    eigval = independent_eigval(data.splits["train"].tensors[0][:10_000])
    assert eigval.item() == pytest.approx(0.125, rel=0.05)
    assert_shift(shift, alpha, eigval, torch.ones(1, 1))
    assert rms(shift.flatten(2).mean(2)) == pytest.approx(3.2, rel=0.1)
    assert 1.5 < rms(shift.flatten(2).mean(2)) < 15


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("imagenet")
    make_tree(root)
    add_copies(root)  # one image of each class is held out for validation
    paths = {"root": root, "train": root / "train.beton", "val": root / "val.beton"}
    for split in ("train", "val"):
        write_beton(root / split, paths[split], raw=True, workers=2)
    return paths


@pytest.fixture(scope="module")
def imagenet_eigval() -> np.ndarray:
    """Of the 20 samples at the paper's 256x256, as both ImageNet loaders store them (the
    training set holds each twice, which leaves the covariance as it is)."""
    return independent_eigval(torch.stack([resized(jpeg) for jpeg in JPEGS]))


@pytest.mark.parametrize("mean", ["image", "normalize"])
def test_imagenet_folder_shift_for_each_alpha(imagenet, imagenet_eigval, tmp_path, mean):
    data = ImageNetFolderDataModule(
        imagenet["root"],
        num_workers=0,
        val_per_class=1,
        augment=LIGHTING_ONLY,
        mean=mean,
        stats_file=tmp_path / "stats.pt",
    )
    data.setup("fit")
    train = data.splits["train"]
    images = torch.stack([data.splits["val"].dataset[i][0] for i in train.indices])
    std = data.stats["std"] if mean == "normalize" else torch.ones(3)
    # The RMS shift these samples give, by hand from their eigenvalues: 1.5 to 15 grey levels.
    assert 1.5 < 255 * 0.1 * np.sqrt(np.square(imagenet_eigval).sum()) < 15
    shifts, alphas = [], []
    for index in range(len(train)):
        torch.manual_seed(index)
        shifts.append((train[index][0] - images[index]) * std[:, None, None])
        torch.manual_seed(index)
        alphas.append(torch.randn(1, 3) * 0.1)  # the one draw lighting makes per image
    assert_shift(torch.stack(shifts), torch.cat(alphas), imagenet_eigval, data.stats["eigvec"])


@pytest.mark.parametrize(
    "batch_dtype, mean", [("uint8", "image"), ("float32", "image"), ("float32", "normalize")]
)
def test_imagenet_ffcv_shift_for_each_alpha(imagenet, imagenet_eigval, tmp_path, batch_dtype, mean):
    data = ImageNetFFCVDataModule(
        imagenet["train"],
        imagenet["val"],
        batch_size=32,
        num_workers=2,
        augment=LIGHTING_ONLY,
        mean=mean,
        batch_dtype=batch_dtype,
        val_per_class=1,
        stats_file=tmp_path / "stats.pt",
    )
    data.setup()
    images, labels = next(iter(data.train_dataloader()))
    images = images.clone()  # FFCV reuses its buffers; float batches are lit in place
    as_batches(data, training=False)
    plain, _ = data.on_after_batch_transfer([images.clone(), labels], 0)
    as_batches(data, training=True)
    torch.manual_seed(0)
    lit, _ = data.on_after_batch_transfer([images.clone(), labels], 0)
    std = data.std if data.std is not None else torch.ones(3, 1, 1)
    torch.manual_seed(0)
    alpha = torch.randn(len(images), 3) * 0.1
    assert_shift((lit - plain) * std, alpha, imagenet_eigval, data.eigvec)
