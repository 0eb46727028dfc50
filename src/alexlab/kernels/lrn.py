"""`torch.ops.alexlab.lrn`: fused local response normalization, one operator for every device.

The CPU kernel is the C++ extension `_lrn_cpu` (built from lrn_cpu.cpp by `make install`; how,
and which of its paths runs on this CPU: build_info()); CUDA's is Triton's (lrn_triton.py). Both
compute the same formulas as `_ResponseNorm` in models/layers.py, the pure-torch reference they
are tested against and the fallback where a fused kernel is missing or fails to load. As torch.library operators they have autograd and fake (shape-only)
implementations, so torch.compile traces through them.
"""

import importlib.util
import json
import shlex
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

# Whatever keeps the extension from loading, the reference serves: a missing build (an install
# without `make install`), or one that the dynamic loader refuses (built against another torch).
try:
    from alexlab.kernels import _lrn_cpu

    _LOAD_ERROR = None
except (ImportError, OSError) as error:
    _lrn_cpu = None
    _LOAD_ERROR = " ".join(f"{type(error).__name__}: {error}".split())
    warnings.warn(
        f"alexlab: the fused CPU LRN kernel did not load, the pure-torch LRN serves ({_LOAD_ERROR})",
        stacklevel=2,
    )


# Looked up once: available() runs on every LRN forward.
_TRITON = importlib.util.find_spec("triton") is not None


def available(device: torch.device) -> bool:
    """Whether the fused operator has a kernel for this device."""
    if device.type == "cpu":
        return _lrn_cpu is not None
    return device.type == "cuda" and _TRITON


def build_info() -> dict[str, Any]:
    """The CPU kernel as this process has it: {"loaded", "flags" (setup.py's compiler flags),
    "isa" (the path it runs: baseline, avx2 or avx512), "error" (why it did not load)}."""
    if _lrn_cpu is None:
        return {"loaded": False, "flags": None, "isa": None, "error": _LOAD_ERROR}
    return {"loaded": True, "flags": _lrn_cpu.build_flags(), "isa": _lrn_cpu.isa(), "error": None}


def compile_cpu_kernel(name: str, flags: list[str], directory: Path) -> ModuleType:
    """lrn_cpu.cpp built with other compiler flags, as extension module `name` in `directory`,
    for the tests and benchmarks that compare builds (about a minute)."""
    from torch.utils import cpp_extension

    # load() writes the flags into ninja's shell commands unquoted; the string literal of
    # build_flags() needs its quotes kept.
    recorded = shlex.quote(json.dumps(" ".join(flags)))
    return cpp_extension.load(
        name,
        [str(Path(__file__).with_name("lrn_cpu.cpp"))],
        extra_cflags=[*flags, f"-DALEXLAB_BUILD_FLAGS={recorded}"],
        extra_ldflags=["-fopenmp"],
        build_directory=str(directory),
    )


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
