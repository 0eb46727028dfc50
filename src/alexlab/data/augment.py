"""Augmentations of Section 4.1, on whole batches of float images (N, C, H, W) on any device.

Every loader augments its training batches with `augment_batch`, the one place each switch of
`Augment` takes effect. FFCV's loader cuts its crops and flips per image in its compiled pass
(ffcv_ops.Crop, from the same switches) and hands the batch here for the rest (`cropped=True`).
"""

from dataclasses import dataclass

import torch

from alexlab.errors import check_choice, check_range
from alexlab.switches import LIGHTINGS

# Colour noise as the paper's numbers were made ("code") and as Section 4.1 prints it. The 2012
# source (convdata.py, ColorNoiseMakerThread and CroppedImageNetDP.get_next_batch) adds to each
# mean-subtracted image eigvec @ (N(0, 1) * stdevs) * color_noise, where stdevs are the standard
# deviations of the 0-255 RGB values along their principal components (batch_meta['color_pca'][0])
# and color_noise is 0.1, then divides the whole image by 1 + color_noise "so that the overall
# scale of the training data doesn't become too different from the test data". The printed
# formula adds eigvec @ (alpha * eigval), alpha ~ N(0, 0.1), without saying in which units eigval
# is; "printed" reads it as fb.resnet.torch does, eigenvalues of the covariance of RGB values
# scaled to [0, 1], and converts the shift to grey levels (x 255), without the division.
PIXEL_RANGE = 255.0


@dataclass(kw_only=True)
class Augment:
    """Training-time augmentation (Section 4.1)."""

    crops: bool  # random crops (for small images: of the image zero-padded by crop_padding)
    flips: bool  # horizontal reflections
    # Consecutive images of a batch that share one crop and one flip: 1 = each its own; the 2012
    # source's ImageNet loader crops and flips 32 at a time (convdata.py: crop_chunk = 32, "This
    # many images will be cropped in the same way"), its CIFAR-10 loader each image on its own.
    crop_chunk: int
    pca_lighting: bool  # colour noise along the principal components of pixel values
    lighting: str  # code | printed (LIGHTINGS)
    lighting_std: float  # the spread of alpha (the source's color_noise)
    crop_padding: int

    def __post_init__(self) -> None:
        check_choice("augment.lighting", self.lighting, LIGHTINGS)
        check_range("augment.lighting_std", self.lighting_std, 0, float("inf"))
        check_range("augment.crop_chunk", self.crop_chunk, 1, float("inf"), integer=True)
        check_range("augment.crop_padding", self.crop_padding, 0, float("inf"), integer=True)


def per_chunk(draws: torch.Tensor, images: int, chunk: int) -> torch.Tensor:
    """One draw per run of `chunk` consecutive images -> one per image."""
    return draws.repeat_interleave(chunk, dim=0)[:images]


def random_crop(images: torch.Tensor, size: int, padding: int = 0, chunk: int = 1) -> torch.Tensor:
    """A random `size` x `size` window of each image, after zero-padding it by `padding` pixels;
    `chunk` consecutive images share a window."""
    if padding:
        images = torch.nn.functional.pad(images, (padding,) * 4)
    n, _, height, width = images.shape
    device = images.device
    chunks = -(-n // chunk)
    top = per_chunk(torch.randint(0, height - size + 1, (chunks, 1), device=device), n, chunk)
    left = per_chunk(torch.randint(0, width - size + 1, (chunks, 1), device=device), n, chunk)
    offsets = torch.arange(size, device=device)
    rows = (top + offsets)[:, None, :, None]
    cols = (left + offsets)[:, None, None, :]
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=device)[None, :, None, None]
    return images[batch, channel, rows, cols]


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central `size` x `size` window, rounded as torchvision's CenterCrop."""
    height, width = images.shape[-2:]
    top, left = round((height - size) / 2), round((width - size) / 2)
    return images[..., top : top + size, left : left + size]


def random_flip(images: torch.Tensor, chunk: int = 1) -> torch.Tensor:
    """Each image (each run of `chunk` consecutive images) mirrored left-right with probability
    1/2."""
    chunks = -(-images.shape[0] // chunk)
    flip = per_chunk(torch.rand(chunks, device=images.device) < 0.5, images.shape[0], chunk)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def channel_eigenpairs(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors (columns) of the covariance, across channels, of the pixel
    values of `images` (0-255) scaled to [0, 1]: the covariance around the mean colour, as the
    paper's "PCA on the set of RGB pixel values" reads."""
    pixels = images.transpose(0, 1).reshape(images.shape[1], -1).double() / PIXEL_RANGE
    eigval, eigvec = torch.linalg.eigh(torch.atleast_2d(torch.cov(pixels)))
    return eigval.float(), eigvec.float()


def lighting_shift(
    images: int, eigval: torch.Tensor, eigvec: torch.Tensor, aug: Augment
) -> torch.Tensor:
    """(images, C) colour shifts in grey levels (0-255), one per image, for eigenpairs of [0, 1]
    pixel values (`channel_eigenpairs`): eigvec @ (N(0, lighting_std) * sqrt(eigval) * 255) for
    the "code" lighting, eigvec @ (N(0, lighting_std) * eigval) * 255 for "printed"."""
    draws = torch.randn(images, eigval.numel(), device=eigval.device) * aug.lighting_std
    # "code": the standard deviations along the components; "printed": the eigenvalues.
    scale = eigval.clamp(min=0).sqrt() if aug.lighting == "code" else eigval
    return PIXEL_RANGE * (draws * scale) @ eigvec.T


def pca_lighting_(
    images: torch.Tensor,
    eigval: torch.Tensor,
    eigvec: torch.Tensor,
    aug: Augment,
    pixel_std: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every pixel of each mean-subtracted image shifted by its own lighting_shift, and with the
    "code" lighting the image divided by 1 + lighting_std, in place. `images` are in grey levels
    (mean subtracted), or in grey levels divided by `pixel_std` (C, 1, 1) when standardized."""
    device = images.device
    shift = lighting_shift(images.shape[0], eigval.to(device), eigvec.to(device), aug)
    if pixel_std is not None:
        shift = shift / pixel_std.to(device).flatten()
    if images.is_contiguous(memory_format=torch.channels_last):  # FFCV's batches
        # As (N, H, W * C) with the shift tiled along W: a broadcast add over runs of C = 3 values
        # took 3.5x as long (8.3 vs 2.4 ms a 227x227 batch of 128 on 2 cores).
        n, c, h, w = images.shape
        images.permute(0, 2, 3, 1).view(n, h, w * c).add_(shift.repeat(1, w)[:, None, :])
    else:
        images.add_(shift[:, :, None, None])
    if aug.lighting == "code":
        images.div_(1 + aug.lighting_std)
    return images


def augment_batch(
    images: torch.Tensor,
    aug: Augment,
    size: int,
    eigval: torch.Tensor,
    eigvec: torch.Tensor,
    pixel_std: torch.Tensor | None = None,
    padding: int = 0,
    cropped: bool = False,
) -> torch.Tensor:
    """A training batch of mean-subtracted float images cropped to `size` (of the images
    zero-padded by `padding`), mirrored and lit, as `aug` says; in the 2012 source's order
    (convdata.py: crops and flips, then colour noise). `cropped`: the loader has cut the crops and
    flips itself; the lighting is added in place."""
    if not cropped:
        if aug.crops:
            images = random_crop(images, size, padding, aug.crop_chunk)
        elif images.shape[-1] != size:
            images = centre_crop(images, size)
        if aug.flips:
            images = random_flip(images, aug.crop_chunk)
    if aug.pca_lighting:
        images = pca_lighting_(images, eigval, eigvec, aug, pixel_std)
    return images


def normalize(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | None = None
) -> torch.Tensor:
    """Float (images - mean) / std of a uint8 batch."""
    images = images.float().sub_(mean.to(images.device))
    return images if std is None else images.div_(std.to(images.device))


def ten_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, 10, C, size, size): the paper's test patches in torchvision's TenCrop
    order (top-left, top-right, bottom-left, bottom-right, centre, then the same of the mirror)."""
    height, width = images.shape[-2:]
    top, left = round((height - size) / 2), round((width - size) / 2)
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size)]
    patches = [
        view[..., y : y + size, x : x + size]
        for view in (images, images.flip(-1))
        for y, x in (*corners, (top, left))
    ]
    return torch.stack(patches, dim=1)
