"""PCA colour noise (Section 4.1) in every loader, as the 2012 source adds it.

convdata.py (ColorNoiseMakerThread, CroppedImageNetDP.get_next_batch): each mean-subtracted image
gets eigvec @ (N(0, 1) * stdevs) * 0.1 added to every pixel, stdevs being the standard deviations
of the 0-255 RGB values along their principal components, and is then divided by 1.1. The
expected values below come from numpy's covariance of the raw pixels, never from the code under
test; the "printed" reading (eigenvalues of [0, 1] values, no division) is checked the same way.
"""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import conf_augment, made
from test_imagenet_folder import JPEGS, add_copies, make_tree, resized

from alexlab.data.augment import Augment, lighting_shift
from alexlab.data.write_beton import write_beton

pytestmark = pytest.mark.timeout(180)
LIGHTING_ONLY = conf_augment("paper", crops=False, flips=False, pca_lighting=True, lighting_std=0.1)


def rms(shifts: torch.Tensor) -> float:
    """Root mean square length of (images, C) shifts: their standard deviation for one channel."""
    return shifts.square().sum(1).mean().sqrt().item()


def numpy_eigval(images: torch.Tensor) -> np.ndarray:
    """Ascending eigenvalues of numpy's channel covariance of (N, C, H, W) 0-255 pixel values."""
    pixels = images.transpose(0, 1).reshape(images.shape[1], -1).double().numpy()
    return np.linalg.eigvalsh(np.atleast_2d(np.cov(pixels)))


def noise_of(lit: torch.Tensor, plain: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """What was added to each pixel, in grey levels, if the lit image was then divided by 1.1."""
    return (lit * 1.1 - plain) * std


def assert_noise(noise: torch.Tensor, draws: torch.Tensor, stdevs, eigvec: torch.Tensor) -> None:
    """(N, C, H, W) noise in grey levels: one colour per image, eigvec @ (draws * stdevs)."""
    per_image = noise.flatten(2)
    assert per_image.std(2).max() < 5e-3, "the noise is not one colour over an image's pixels"
    stdevs = torch.as_tensor(stdevs, dtype=torch.float32)
    torch.testing.assert_close(per_image.mean(2), (draws * stdevs) @ eigvec.T, atol=5e-3, rtol=2e-3)


def test_code_noise_is_a_tenth_of_the_pixels_spread_and_printed_is_another_scale():
    # Eigenvalues of a 0-255 covariance (3000, 100, 25 grey levels squared) as channel_eigenpairs
    # gives them, of [0, 1] values.
    eigval_255 = torch.tensor([25.0, 100.0, 3000.0])
    eigvec = torch.eye(3)
    torch.manual_seed(0)
    code = lighting_shift(100_000, eigval_255 / 255**2, eigvec, conf_augment("paper"))
    # By hand: 0.1 x sqrt(3000 + 100 + 25) = 5.59 grey levels; along each component 0.1 x its
    # standard deviation: 5.48, 1.0, 0.5.
    assert rms(code) == pytest.approx(5.59, rel=0.01)
    assert code.std(0).tolist() == pytest.approx([0.5, 1.0, 5.477], rel=0.02)
    torch.manual_seed(0)
    printed = lighting_shift(
        100_000, eigval_255 / 255**2, eigvec, conf_augment("paper", lighting="printed")
    )
    # 255 x 0.1 x 3000 / 255^2 = 1.18 grey levels along the first component, 0.039, 0.0098.
    assert printed.std(0).tolist() == pytest.approx([0.0098, 0.0392, 1.176], rel=0.02)


def as_batches(data, training: bool) -> None:
    data.trainer = SimpleNamespace(training=training, testing=False, predicting=False)


def fashion_mnist_lit(root, augment: Augment, mean: str = "image") -> tuple:
    """A batch of 2,048 training images without and with the lighting, the lighting's draws
    (one per image) and the data."""
    data = made(
        "data", "data=fashion_mnist", root=str(root), batch_size=2048, augment=augment, mean=mean
    )
    data.setup()
    batch = next(iter(data.train_dataloader()))
    as_batches(data, training=False)
    plain, _ = data.on_after_batch_transfer(batch, 0)
    as_batches(data, training=True)
    torch.manual_seed(0)
    lit, _ = data.on_after_batch_transfer(batch, 0)
    torch.manual_seed(0)
    return plain, lit, torch.randn(len(lit), 1) * 0.1, data


@pytest.mark.parametrize("mean", ["image", "normalize"])
def test_fashion_mnist_noise_is_nine_grey_levels_and_the_image_shrinks(fashion_mnist, mean):
    plain, lit, draws, data = fashion_mnist_lit(fashion_mnist, LIGHTING_ONLY, mean)
    # Fashion-MNIST's pixels spread by about 90 grey levels: the noise is a tenth of that.
    stdev = np.sqrt(numpy_eigval(data.splits["train"].tensors[0][:10_000]))
    assert stdev.item() == pytest.approx(90, rel=0.05)
    noise = noise_of(lit, plain, data.std)
    assert_noise(noise, draws, stdev, torch.ones(1, 1))
    assert rms(noise.flatten(2).mean(2)) == pytest.approx(9.0, rel=0.1)


def test_printed_lighting_adds_eigenvalue_multiples_without_dividing(fashion_mnist):
    augment = conf_augment("paper", crops=False, flips=False, lighting="printed")
    plain, lit, draws, data = fashion_mnist_lit(fashion_mnist, augment)
    # The variance of Fashion-MNIST's pixels / 255 is about 0.125: 255 x 0.1 x 0.125 = 3.2.
    eigval = numpy_eigval(data.splits["train"].tensors[0][:10_000]) / 255**2
    assert eigval.item() == pytest.approx(0.125, rel=0.05)
    assert_noise(lit - plain, draws, 255 * eigval, torch.ones(1, 1))
    assert rms((lit - plain).flatten(2).mean(2)) == pytest.approx(3.2, rel=0.1)


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
def imagenet_stdevs() -> np.ndarray:
    """Of the 20 samples at the paper's 256x256, as both ImageNet loaders store them (the
    training set holds each twice, which leaves the covariance as it is), in grey levels."""
    stdevs = np.sqrt(numpy_eigval(torch.stack([resized(jpeg) for jpeg in JPEGS])))
    # The noise these samples get, by hand from their spreads: 0.1 x sqrt(sum of variances).
    assert 4 < 0.1 * np.sqrt(np.square(stdevs).sum()) < 15
    return stdevs


@pytest.mark.parametrize("mean", ["image", "normalize"])
def test_imagenet_folder_noise_for_each_draw(imagenet, imagenet_stdevs, tmp_path, mean):
    data = made(
        "data",
        "data=imagenet_folder",
        root=imagenet["root"],
        batch_size=40,
        num_workers=0,
        val_per_class=1,
        crop_size=227,
        augment=LIGHTING_ONLY,
        mean=mean,
        stats_file=tmp_path / "stats.pt",
    )
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    as_batches(data, training=False)
    plain, _ = data.on_after_batch_transfer([b.clone() for b in batch], 0)
    as_batches(data, training=True)
    torch.manual_seed(0)
    lit, _ = data.on_after_batch_transfer([b.clone() for b in batch], 0)
    torch.manual_seed(0)
    draws = torch.randn(len(lit), 3) * 0.1
    std = data.stats["std"][:, None, None] if mean == "normalize" else torch.ones(3, 1, 1)
    plain = plain[..., 14:241, 14:241]  # the centre crop that training takes without crops
    noise = noise_of(lit, plain, std)
    assert_noise(noise, draws, imagenet_stdevs, data.stats["eigvec"])
    expected_rms = 0.1 * np.sqrt(np.square(imagenet_stdevs).sum())
    assert rms(noise.flatten(2).mean(2)) == pytest.approx(expected_rms, rel=0.35)


@pytest.mark.parametrize(
    "batch_dtype, mean", [("uint8", "image"), ("float32", "image"), ("float32", "normalize")]
)
def test_imagenet_ffcv_noise_for_each_draw(imagenet, imagenet_stdevs, tmp_path, batch_dtype, mean):
    data = made(
        "data",
        "data=imagenet_ffcv",
        train_beton=imagenet["train"],
        test_beton=imagenet["val"],
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
    draws = torch.randn(len(images), 3) * 0.1
    assert_noise(noise_of(lit, plain, std), draws, imagenet_stdevs, data.eigvec)
