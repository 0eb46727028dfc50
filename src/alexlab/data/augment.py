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


def channel_eigenpairs(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors (columns) of the covariance of pixel values across channels."""
    pixels = images.transpose(0, 1).reshape(images.shape[1], -1).double()
    eigval, eigvec = torch.linalg.eigh(torch.atleast_2d(torch.cov(pixels)))
    return eigval.float(), eigvec.float()


def lighting_shift(
    images: int, eigval: torch.Tensor, eigvec: torch.Tensor, std: float = 0.1
) -> torch.Tensor:
    """(images, C) colour shifts eigvec @ (alpha * eigval), alpha ~ N(0, std) per image (Section 4.1)."""
    alpha = torch.randn(images, eigval.numel(), device=eigval.device) * std
    return (alpha * eigval) @ eigvec.T


def pca_lighting(
    images: torch.Tensor, eigval: torch.Tensor, eigvec: torch.Tensor, std: float = 0.1
) -> torch.Tensor:
    """Every pixel of each image shifted by its own lighting_shift."""
    device = images.device
    shift = lighting_shift(images.shape[0], eigval.to(device), eigvec.to(device), std)
    return images + shift[:, :, None, None]


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
