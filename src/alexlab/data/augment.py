"""Augmentations of Section 4.1, on whole batches of float images (N, C, H, W) on any device."""

from dataclasses import dataclass

import torch


@dataclass
class Augment:
    """Training-time augmentation (Section 4.1)."""

    crops: bool = True  # random crops (for small images: of the image zero-padded by crop_padding)
    flips: bool = True  # horizontal reflections
    pca_lighting: bool = True  # colour jitter along the principal components of pixel values
    lighting_std: float = 0.1  # the spread of alpha
    crop_padding: int = 4


def random_crop(images: torch.Tensor, size: int, padding: int = 0) -> torch.Tensor:
    """A random `size` x `size` window of each image, after zero-padding it by `padding` pixels."""
    if padding:
        images = torch.nn.functional.pad(images, (padding,) * 4)
    n, _, height, width = images.shape
    device = images.device
    top = torch.randint(0, height - size + 1, (n, 1), device=device)
    left = torch.randint(0, width - size + 1, (n, 1), device=device)
    offsets = torch.arange(size, device=device)
    rows = (top + offsets)[:, None, :, None]
    cols = (left + offsets)[:, None, None, :]
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=device)[None, :, None, None]
    return images[batch, channel, rows, cols]


def random_flip(images: torch.Tensor) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


# PCA lighting (Section 4.1) adds eigvec @ (alpha * eigval) to every pixel, alpha ~ N(0, 0.1) per
# image. The paper does not say in which units eigval is, and the shift scales with it: eigenpairs
# of 0-255 pixel values added in 0-255 units shift ImageNet's colours by ~1,400 grey levels. Here,
# as in fb.resnet.torch (eigval 0.2175, 0.0188, 0.0045 for ImageNet) and mmpretrain (the same
# times 255: 55.46, 4.79, 1.15), the eigenpairs are those of pixel values scaled to [0, 1], the
# shift is in those units, and it is converted to grey levels (x 255) by `lighting_shift` alone.
# That gives ImageNet ~5.5 grey levels (RMS over images) and Fashion-MNIST ~3, whatever units a
# loader computes in.
PIXEL_RANGE = 255.0


def channel_eigenpairs(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors (columns) of the covariance, across channels, of the pixel
    values of `images` (0-255) scaled to [0, 1]: the covariance around the mean colour, as the
    paper's "PCA on the set of RGB pixel values" reads."""
    pixels = images.transpose(0, 1).reshape(images.shape[1], -1).double() / PIXEL_RANGE
    eigval, eigvec = torch.linalg.eigh(torch.atleast_2d(torch.cov(pixels)))
    return eigval.float(), eigvec.float()


def lighting_shift(
    images: int, eigval: torch.Tensor, eigvec: torch.Tensor, std: float = 0.1
) -> torch.Tensor:
    """(images, C) colour shifts in grey levels (0-255): 255 * eigvec @ (alpha * eigval), alpha ~
    N(0, std) per image, for eigenpairs of [0, 1] pixel values (`channel_eigenpairs`). Every loader
    draws its shifts here."""
    alpha = torch.randn(images, eigval.numel(), device=eigval.device) * std
    return PIXEL_RANGE * (alpha * eigval) @ eigvec.T


def pca_lighting_(
    images: torch.Tensor,
    eigval: torch.Tensor,
    eigvec: torch.Tensor,
    std: float = 0.1,
    pixel_std: torch.Tensor | None = None,
) -> torch.Tensor:
    """Every pixel of each image shifted by its own lighting_shift, in place. `images` are in grey
    levels (any offset), or in grey levels divided by `pixel_std` (C, 1, 1) when standardized."""
    device = images.device
    shift = lighting_shift(images.shape[0], eigval.to(device), eigvec.to(device), std)
    if pixel_std is not None:
        shift = shift / pixel_std.to(device).flatten()
    if images.is_contiguous(memory_format=torch.channels_last):  # FFCV's batches
        # As (N, H, W * C) with the shift tiled along W: a broadcast add over runs of C = 3 values
        # took 3.5x as long (8.3 vs 2.4 ms a 227x227 batch of 128 on 2 cores).
        n, c, h, w = images.shape
        images.permute(0, 2, 3, 1).view(n, h, w * c).add_(shift.repeat(1, w)[:, None, :])
        return images
    return images.add_(shift[:, :, None, None])


def normalize(
    images: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
) -> torch.Tensor:
    """Float (images - mean + shift) / std of a uint8 batch, with a per-image (N, C) `shift`."""
    offset = mean.to(images.device)
    if shift is not None:
        offset = offset - shift[:, :, None, None]
    images = images.float().sub_(offset)
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
