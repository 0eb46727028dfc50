"""Fused LRN for CUDA in Triton: one kernel forward, one backward, the formulas of lrn_cpu.cpp.

Each program takes one image, one group and BLOCK positions, and walks the group's channels;
positions are the vector lanes, so NCHW and channels-last both work through the strides. The
backward pass recomputes each s it needs from the maps (a window of windows: 25 loads for the
paper's size 5, all from cache) rather than reading a saved tensor. Under TRITON_INTERPRET=1 the
same kernels run on CPU tensors, which is how the tests check them on a machine with no GPU.
"""

import torch
import triton
import triton.language as tl

BLOCK = 128  # positions a program


@triton.jit
def _power(s, exponent):
    return tl.exp2(exponent * tl.log2(s))


@triton.jit
def _window_sum(a, base, c, channels, channel_stride, offsets, mask, HALF: tl.constexpr):
    """k-less s: the sum of squares over channel c's window, clipped to the group."""
    total = tl.zeros(offsets.shape, dtype=tl.float32)
    for d in tl.static_range(-HALF, HALF + 1):
        j = c + d
        inside = mask & (j >= 0) & (j < channels)
        x = tl.load(a + base + j * channel_stride + offsets, mask=inside, other=0.0).to(tl.float32)
        total += x * x
    return total


@triton.jit
def _tile(
    channels, positions, groups, image_stride, channel_stride, position_stride, BLOCK: tl.constexpr
):
    """This program's tile: its group's first element, its positions' offsets, which are real."""
    image_group, block = tl.program_id(0), tl.program_id(1)
    image, group = image_group // groups, image_group % groups
    lanes = block * BLOCK + tl.arange(0, BLOCK)
    base = image * image_stride + group * channels * channel_stride
    return base, lanes * position_stride, lanes < positions


@triton.jit
def _forward(
    a, b, channels, positions, groups, image_stride, channel_stride, position_stride,
    alpha, beta, k, HALF: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    base, offsets, mask = _tile(
        channels, positions, groups, image_stride, channel_stride, position_stride, BLOCK
    )
    for c in range(0, channels):
        s = k + alpha * _window_sum(a, base, c, channels, channel_stride, offsets, mask, HALF)
        where = a + base + c * channel_stride + offsets
        x = tl.load(where, mask=mask, other=0.0).to(tl.float32)
        out = x * _power(s, -beta)
        tl.store(b + base + c * channel_stride + offsets, out.to(b.dtype.element_ty), mask=mask)


@triton.jit
def _backward(
    a, grad_b, grad_a, channels, positions, groups, image_stride, channel_stride,
    position_stride, alpha, beta, k, HALF: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    base, offsets, mask = _tile(
        channels, positions, groups, image_stride, channel_stride, position_stride, BLOCK
    )
    for c in range(0, channels):
        # sum over i in window(c) of g_i a_i s_i^(-beta-1)
        through = tl.zeros((BLOCK,), dtype=tl.float32)
        for d in tl.static_range(-HALF, HALF + 1):
            i = c + d
            inside = mask & (i >= 0) & (i < channels)
            s = k + alpha * _window_sum(a, base, i, channels, channel_stride, offsets, mask, HALF)
            at = base + i * channel_stride + offsets
            x = tl.load(a + at, mask=inside, other=0.0).to(tl.float32)
            g = tl.load(grad_b + at, mask=inside, other=0.0).to(tl.float32)
            through += g * x * _power(s, -beta - 1.0)
        s = k + alpha * _window_sum(a, base, c, channels, channel_stride, offsets, mask, HALF)
        at = base + c * channel_stride + offsets
        x = tl.load(a + at, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(grad_b + at, mask=mask, other=0.0).to(tl.float32)
        out = g * _power(s, -beta) - 2.0 * beta * alpha * x * through
        tl.store(grad_a + at, out.to(grad_a.dtype.element_ty), mask=mask)


def _geometry(a: torch.Tensor, groups: int) -> tuple[tuple[int, int], tuple[int, ...]]:
    """The launch grid, and (channels a group, positions, groups, strides) for the kernels."""
    batch, channels, height, width = a.shape
    positions = height * width
    channels_last = a.stride(1) == 1  # or 1x1 maps, which are the same memory
    strides = (1, channels) if channels_last else (positions, 1)
    grid = (batch * groups, triton.cdiv(positions, BLOCK))
    return grid, (channels // groups, positions, groups, channels * positions, *strides)


def dense(t: torch.Tensor) -> torch.Tensor:
    if t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last):
        return t
    return t.contiguous()


def forward(
    a: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int
) -> torch.Tensor:
    a = dense(a)
    b = torch.empty_like(a)
    grid, geometry = _geometry(a, groups)
    _forward[grid](a, b, *geometry, alpha, beta, k, HALF=size // 2, BLOCK=BLOCK)
    return b


def backward(
    a: torch.Tensor, grad_b: torch.Tensor, size: int, alpha: float, beta: float, k: float,
    groups: int,
) -> torch.Tensor:  # fmt: skip
    a = dense(a)
    layout = torch.channels_last if a.stride(1) == 1 else torch.contiguous_format
    grad_b = grad_b.to(a.dtype).contiguous(memory_format=layout)  # read in the maps' layout
    grad_a = torch.empty_like(a)
    grid, geometry = _geometry(a, groups)
    _backward[grid](a, grad_b, grad_a, *geometry, alpha, beta, k, HALF=size // 2, BLOCK=BLOCK)
    return grad_a
