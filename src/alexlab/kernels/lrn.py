"""`torch.ops.alexlab.lrn`: fused local response normalization, one operator for every device.

The CPU kernel is the C++ extension `_lrn_cpu` (built from lrn_cpu.cpp by `make install`); CUDA's
is Triton's (lrn_triton.py). Both compute the same formulas as `_ResponseNorm` in
models/layers.py, the pure-torch reference they are tested against and the fallback on devices
without a fused kernel. As torch.library operators they have autograd and fake (shape-only)
implementations, so torch.compile traces through them.
"""

import importlib.util

import torch

try:
    from alexlab.kernels import _lrn_cpu
except ImportError:  # not built (an install without `make install`): the reference serves
    _lrn_cpu = None


# Looked up once: available() runs on every LRN forward.
_TRITON = importlib.util.find_spec("triton") is not None


def available(device: torch.device) -> bool:
    """Whether the fused operator has a kernel for this device."""
    if device.type == "cpu":
        return _lrn_cpu is not None
    return device.type == "cuda" and _TRITON


@torch.library.custom_op("alexlab::lrn", mutates_args=(), device_types="cpu")
def lrn(
    a: torch.Tensor, size: int, alpha: float, beta: float, k: float, groups: int
) -> torch.Tensor:
    """b = a * (k + alpha * sum over each channel's window of a^2) ** -beta; `alpha` is the factor
    of each term (the paper's alpha, or alpha / size for cuda-convnet's formula)."""
    return _lrn_cpu.forward(a, size, alpha, beta, k, groups)


@torch.library.custom_op("alexlab::lrn_backward", mutates_args=(), device_types="cpu")
def lrn_backward(
    a: torch.Tensor, grad_b: torch.Tensor, size: int, alpha: float, beta: float, k: float,
    groups: int,
) -> torch.Tensor:  # fmt: skip
    return _lrn_cpu.backward(a, grad_b, size, alpha, beta, k, groups)


@lrn.register_kernel("cuda")
def _lrn_cuda(a, size, alpha, beta, k, groups):
    from alexlab.kernels import lrn_triton

    return lrn_triton.forward(a, size, alpha, beta, k, groups)


@lrn_backward.register_kernel("cuda")
def _lrn_backward_cuda(a, grad_b, size, alpha, beta, k, groups):
    from alexlab.kernels import lrn_triton

    return lrn_triton.backward(a, grad_b, size, alpha, beta, k, groups)


@lrn.register_fake
def _(a, size, alpha, beta, k, groups):
    return torch.empty_like(a)


@lrn_backward.register_fake
def _(a, grad_b, size, alpha, beta, k, groups):
    return torch.empty_like(a)


def _save_maps(ctx, inputs, output):
    a, *ctx.arguments = inputs
    ctx.save_for_backward(a)


def _gradient(ctx, grad_b):
    (a,) = ctx.saved_tensors
    return lrn_backward(a, grad_b, *ctx.arguments), None, None, None, None, None


lrn.register_autograd(_gradient, setup_context=_save_maps)
