"""The fused LRN kernels (alexlab.kernels) against the pure-torch reference (_ResponseNorm), by
value, gradient and layout: the C++ one for the CPU directly (each of its ISA paths, and a build
for the baseline ISA alone), Triton's through its interpreter."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import conf_net

from alexlab.kernels import lrn as kernels
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
    conf_net("alexnet", input_size=32, width=0.25, num_classes=10)(torch.randn(2, 3, 32, 32))
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


def test_build_info_names_repeatable_flags_and_the_path_chosen():
    info = kernels.build_info()
    assert info["loaded"], info
    flags = info["flags"].split()
    assert "-ffp-contract=off" in flags
    assert not {"-ffast-math", "-ffinite-math-only"} & set(flags)
    assert info["isa"] in kernels._lrn_cpu.isas()


@pytest.fixture
def every_isa():
    """The ISA paths the installed kernel has on this CPU, the one it chose put back after."""
    chosen = kernels._lrn_cpu.isa()
    yield kernels._lrn_cpu.isas()
    kernels._lrn_cpu.set_isa(chosen)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_every_isa_path_gives_the_same_bits(every_isa, dtype):
    # A run repeats on any CPU: the AVX2 and AVX-512 paths round as the baseline one does.
    torch.manual_seed(0)
    for layout in LAYOUTS:
        for size, beta in SHAPES:
            a = maps((3, 40, 7, 9), layout, dtype).detach()
            grad = torch.randn(a.shape, dtype=torch.float64).to(dtype)
            results = {}
            for isa in every_isa:
                kernels._lrn_cpu.set_isa(isa)
                b = kernels._lrn_cpu.forward(a, size, 0.3 / size, beta, 2.0, 2)
                grad_a = kernels._lrn_cpu.backward(a, grad, size, 0.3 / size, beta, 2.0, 2)
                results[isa] = (b, grad_a)
            for isa, (b, grad_a) in results.items():
                assert torch.equal(b, results["baseline"][0]), (isa, layout, size, beta)
                assert torch.equal(grad_a, results["baseline"][1]), (isa, layout, size, beta)


# The loader refusing the extension (e.g. one built against another torch) as OSError: an
# ImportError's message would do as well.
FALLBACK_CHECK = textwrap.dedent(
    """
    import importlib.abc, sys, warnings

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "alexlab.kernels._lrn_cpu":
                raise OSError("undefined symbol: _ZN3c10")

    sys.meta_path.insert(0, Refuse())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import torch
        from alexlab.kernels import lrn
        from alexlab.models.layers import LocalResponseNorm
    print(lrn.build_info())
    assert not lrn.available(torch.device("cpu"))
    mine = [str(w.message) for w in caught if "LRN" in str(w.message)]
    assert len(mine) == 1 and "\\n" not in mine[0], mine
    print(mine[0])
    LocalResponseNorm()(torch.randn(2, 8, 3, 3))
    """
)


def test_an_extension_that_fails_to_load_leaves_the_reference_with_one_warning():
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK_CHECK], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'loaded': False" in done.stdout
    assert "OSError: undefined symbol" in done.stdout


@pytest.fixture(scope="module")
def baseline_build(tmp_path_factory):
    """lrn_cpu.cpp built for the baseline ISA alone (x86-64-v2 on x86-64; elsewhere the
    compiler's default), without the wider paths, with setup.py's other flags."""
    march = ["-march=x86-64-v2"] if platform.machine() == "x86_64" else []
    flags = [
        "-O3",
        *march,
        "-fno-math-errno",
        "-ffp-contract=off",
        "-fopenmp",
        "-DALEXLAB_ONE_PATH",
    ]
    directory = tmp_path_factory.mktemp("lrn_baseline")
    return kernels.compile_cpu_kernel("lrn_cpu_baseline", flags, directory)


@pytest.mark.slow
@pytest.mark.timeout(600)  # the compile: a minute alone, more beside other tests
@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_baseline_isa_build_matches_the_reference_and_the_installed_build(
    baseline_build, monkeypatch, layout
):
    assert baseline_build.isas() == ["baseline"]
    assert "-DALEXLAB_ONE_PATH" in baseline_build.build_flags()
    installed = kernels._lrn_cpu
    for size, beta in SHAPES:
        for variant, groups in (("printed", 1), ("code", 2)):
            a = maps((3, 20 * groups, 5, 5), layout)
            grad = torch.randn(a.shape)
            lrn = LocalResponseNorm(size, 0.3, beta, 2.0, variant, groups)
            b, grad_a = output_and_gradient(lrn, a, grad, fused=False)
            fused_b, fused_grad = output_and_gradient(lrn, a, grad, fused=True)
            monkeypatch.setattr(kernels, "_lrn_cpu", baseline_build)
            baseline_b, baseline_grad = output_and_gradient(lrn, a, grad, fused=True)
            monkeypatch.setattr(kernels, "_lrn_cpu", installed)
            torch.testing.assert_close(baseline_b, b, rtol=2e-6, atol=2e-6)
            torch.testing.assert_close(baseline_grad, grad_a, rtol=2e-5, atol=2e-5)
            assert baseline_b.is_contiguous(memory_format=LAYOUTS[layout])
            # The installed build, on its widest path here, gives the same bits.
            assert torch.equal(baseline_b, fused_b) and torch.equal(baseline_grad, fused_grad)


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
