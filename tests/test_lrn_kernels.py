"""The fused LRN kernels (alexlab.kernels) against the pure-torch reference (_ResponseNorm), by
value, gradient and layout: the C++ one for the CPU directly, Triton's through its interpreter."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from alexlab.kernels import lrn as kernels
from alexlab.models import AlexNet
from alexlab.models.layers import LocalResponseNorm

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
# size, beta: the paper's (the kernels' fast path) and others (their general path)
SHAPES = [(5, 0.75), (3, 0.75), (5, 0.5), (7, 1.1)]


def maps(shape, layout: str, dtype=torch.float32, scale: float = 3.0) -> torch.Tensor:
    a = torch.randn(shape, dtype=torch.float64) * scale
    return a.to(dtype).contiguous(memory_format=LAYOUTS[layout]).requires_grad_()


def output_and_gradient(lrn: LocalResponseNorm, a: torch.Tensor, grad: torch.Tensor, fused: bool):
    lrn.fused = fused
    b = lrn(a)
    (grad_a,) = torch.autograd.grad(b, a, grad)
    return b, grad_a


def test_the_fused_kernel_is_built_and_used_on_the_cpu(monkeypatch):
    assert kernels.available(torch.device("cpu")), "make install builds alexlab.kernels._lrn_cpu"
    calls = []
    monkeypatch.setattr(kernels, "lrn", lambda *args: calls.append(args) or args[0])
    AlexNet(input_size=32, width=0.25, num_classes=10)(torch.randn(2, 3, 32, 32))
    assert len(calls) == 2  # norm1, norm2


def test_the_fused_kernel_by_hand():
    # All-ones maps, 5 channels, the paper's constants: channel 2's window holds 5 ones,
    # s = 2 + 1e-4 * 5 = 2.0005; channel 0's holds 3, s = 2.0003. b = s ** -0.75.
    a = torch.ones(1, 5, 2, 2)
    b = LocalResponseNorm(5, 1e-4, 0.75, 2.0, "printed")(a)
    expected = torch.tensor([0.5945366734, 0.5945143819, 0.5944920937, 0.5945143819, 0.5945366734])
    torch.testing.assert_close(b[0, :, 0, 0], expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("variant", ["printed", "code"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("size, beta", SHAPES)
def test_fused_matches_the_reference_in_fp32(layout, variant, groups, size, beta):
    # 23 positions: two tiles of channels-last rows and a partial one; 20 channels a group.
    a = maps((3, 20 * groups, 5, 23 // 5 + 1), layout)
    grad = torch.randn(a.shape)
    lrn = LocalResponseNorm(size, 0.3, beta, 2.0, variant, groups)
    fused_b, fused_grad = output_and_gradient(lrn, a, grad, fused=True)
    b, grad_a = output_and_gradient(lrn, a, grad, fused=False)
    torch.testing.assert_close(fused_b, b, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(fused_grad, grad_a, rtol=2e-5, atol=2e-5)
    assert fused_b.is_contiguous(memory_format=LAYOUTS[layout])
    assert fused_grad.is_contiguous(memory_format=LAYOUTS[layout])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_gradient_passes_gradcheck_in_float64(layout):
    a = maps((2, 12, 3, 4), layout, torch.float64)
    lrn = LocalResponseNorm(5, 0.3, 0.75, 2.0, groups=2)
    assert torch.autograd.gradcheck(lrn, (a,))
    assert torch.autograd.gradcheck(LocalResponseNorm(3, 0.2, 0.6, 1.0), (a,))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_in_bf16_is_within_bf16_rounding_of_the_exact_result(layout):
    # AlexNet's magnitudes (ReLU outputs up to ~30) and the paper's constants.
    a = maps((4, 32, 6, 6), layout, scale=10.0).detach().relu().requires_grad_()
    grad = torch.randn(a.shape)
    lrn = LocalResponseNorm(5, 1e-4, 0.75, 2.0, groups=2)
    exact_b, exact_grad = output_and_gradient(
        lrn, a.detach().double().requires_grad_(), grad.double(), fused=False
    )
    rounded = a.detach().bfloat16().requires_grad_()
    b, grad_a = output_and_gradient(lrn, rounded, grad.bfloat16(), fused=True)
    assert b.dtype == grad_a.dtype == torch.bfloat16
    # bf16 keeps 8 significant bits: the input's rounding and the output's, 2^-8 each.
    torch.testing.assert_close(b.double(), exact_b, rtol=2**-7, atol=1e-6)
    torch.testing.assert_close(grad_a.double(), exact_grad, rtol=2**-7, atol=2**-7)


def test_the_operator_registration_is_sound():
    # torch.library's own check: schema, fake (shape-only) kernel, autograd, as torch.compile needs.
    a = maps((2, 8, 3, 3), "channels_last")
    torch.library.opcheck(torch.ops.alexlab.lrn.default, (a, 5, 1e-4, 0.75, 2.0, 2))


def test_without_a_fused_kernel_the_reference_serves(monkeypatch):
    monkeypatch.setattr(kernels, "_lrn_cpu", None)
    assert not kernels.available(torch.device("cpu"))
    a = maps((2, 8, 3, 3), "nchw")
    lrn = LocalResponseNorm(5, 0.3, groups=2)
    b = lrn(a)
    lrn.fused = False
    torch.testing.assert_close(b, lrn(a), rtol=0, atol=0)


TRITON_CHECK = textwrap.dedent(
    """
    import torch
    from alexlab.kernels import lrn_triton
    from alexlab.models.layers import LocalResponseNorm

    torch.manual_seed(0)
    for layout in (torch.contiguous_format, torch.channels_last):
        for size, beta, groups in ((5, 0.75, 2), (3, 0.5, 1)):
            a = (torch.randn(2, 8, 3, 5) * 3).contiguous(memory_format=layout)
            a.requires_grad_()
            grad = torch.randn(a.shape)
            lrn = LocalResponseNorm(size, 0.3, beta, 2.0, "code", groups)
            lrn.fused = False
            b = lrn(a)
            (expected,) = torch.autograd.grad(b, a, grad)
            alpha = 0.3 / size
            ours = lrn_triton.forward(a.detach(), size, alpha, beta, 2.0, groups)
            grad_a = lrn_triton.backward(a.detach(), grad, size, alpha, beta, 2.0, groups)
            torch.testing.assert_close(ours, b, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(grad_a, expected, rtol=1e-5, atol=1e-5)
            assert ours.is_contiguous(memory_format=layout)
    print("triton kernels match")
    """
)


def test_triton_kernels_match_the_reference_under_the_interpreter():
    # No GPU here: Triton's interpreter runs the same kernels on CPU tensors.
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", TRITON_CHECK], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "triton kernels match" in done.stdout
