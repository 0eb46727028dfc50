"""Defaults that depend on the machine a run lands on, chosen by `make bench-train`'s measurements.

The resolver below is registered wherever a config is composed, tab completion and
`--cfg job` included, which never resolve it: torch is imported when a value is resolved."""


def fast_precision(accelerator: str) -> str:
    """Lightning precision for `trainer.precision: ${fast_precision:${trainer.accelerator}}`.

    bf16-mixed where the hardware has bf16 matrix units: CPUs with AMX or AVX512-BF16 (a training
    step 2.3x fp32's for AlexNet and convnet4 on 2 cores, docs/speed.md) and GPUs that
    report bf16 support (Ampere and later). On other CPUs bf16 is emulated and slower than fp32,
    so 32; older GPUs get 16-mixed.
    """
    import torch

    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator in ("gpu", "cuda"):
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return "bf16-mixed" if bf16 else "16-mixed"
    if accelerator == "cpu":
        bf16 = torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()
        return "bf16-mixed" if bf16 else "32"
    return "32"
