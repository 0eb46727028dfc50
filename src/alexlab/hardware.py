"""Defaults that depend on the machine a run lands on, chosen by `make bench-train`'s measurements.

The resolver below is registered wherever a config is composed, tab completion included, and
OmegaConf resolves it whenever a config merges a value over it (an experiment's pinned
precision): on a CPU it reads /proc/cpuinfo rather than import torch, which takes seconds."""

from pathlib import Path

# The x86 flags of bf16 matrix units: AMX tiles, AVX512-BF16 (Linux's names in /proc/cpuinfo).
BF16_FLAGS = {"amx_tile", "avx512_bf16"}
CPUINFO = Path("/proc/cpuinfo")


def fast_precision(accelerator: str) -> str:
    """Lightning precision for `trainer.precision: ${fast_precision:${trainer.accelerator}}`.

    bf16-mixed where the hardware has bf16 matrix units: CPUs with AMX or AVX512-BF16 (a training
    step 2.3x fp32's for AlexNet and convnet4 on 2 cores, docs/speed.md) and GPUs that
    report bf16 support (Ampere and later). On other CPUs bf16 is emulated and slower than fp32,
    so 32; older GPUs get 16-mixed.
    """
    if accelerator == "cpu":
        return "bf16-mixed" if cpu_has_bf16_units() else "32"
    if accelerator not in ("auto", "gpu", "cuda"):
        return "32"
    import torch

    if accelerator == "auto" and not torch.cuda.is_available():
        return fast_precision("cpu")
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return "bf16-mixed" if bf16 else "16-mixed"


def cpu_has_bf16_units() -> bool:
    """/proc/cpuinfo's flags name AMX tiles or AVX512-BF16; where there is no /proc (macOS),
    torch's own check."""
    if CPUINFO.is_file():
        lines = CPUINFO.read_text().splitlines()
        flags = {flag for line in lines if line.startswith("flags") for flag in line.split()}
        return bool(BF16_FLAGS & flags)
    import torch

    return torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
