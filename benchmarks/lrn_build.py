"""Images/s of AlexNet's training step with the fused LRN kernel (lrn_cpu.cpp) built in other
ways, in one process: the installed build (setup.py's flags) on each of its ISA paths, the same
source built with --flags (default: the non-portable build, -march=native -ffast-math), and any
prebuilt extension given by --so (e.g. a copy of an older _lrn_cpu*.so).

The builds take turns, a few steps at a time, so that the machine's noise falls on all of them;
the medians of the per-step rates are printed with each build's ratio to the installed build on
the path it chooses. Nets: AlexNet 224 (bench-train's (a)) in fp32 and bf16, and the main job's
alexnet_small on 28x28 in fp32, all channels-last; then LRN alone, forward and backward, at
conv1's maps.

    python benchmarks/lrn_build.py [--flags "-O3 ..."] [--so PATH ...] [--rounds 7] [--steps 2]
                                   [--alexnet-batch 64] [--small-batch 128] [--build-dir DIR]
"""

import argparse
import importlib.util
import shlex
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch
from train_step import Subject, allocator

from alexlab import api
from alexlab.kernels import lrn as kernels
from alexlab.models.layers import LocalResponseNorm

# setup.py's flags before the build was made portable; ALEXLAB_ONE_PATH: -march=native is the
# only path, as it was then.
NATIVE_FAST_MATH = "-O3 -march=native -ffast-math -fopenmp -DALEXLAB_ONE_PATH"


@dataclass
class Build:
    """One way the kernel runs: an extension module, and the ISA path it is set to."""

    label: str
    module: ModuleType
    isa: str | None = None  # None: the one it chooses (or it has no paths to choose from)
    rates: dict[str, list[float]] = field(default_factory=dict)
    lrn_ms: dict[str, list[float]] = field(default_factory=dict)

    def use(self) -> None:
        kernels._lrn_cpu = self.module
        if self.isa:
            self.module.set_isa(self.isa)


def load_so(path: Path, index: int) -> ModuleType:
    # An extension's init function is named after the last part of its module name: the file's.
    spec = importlib.util.spec_from_file_location(
        f"lrn_build_{index}.{path.name.split('.')[0]}", path
    )
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def builds(flags: str, so_files: list[Path], build_dir: Path) -> list[Build]:
    installed = kernels._lrn_cpu
    assert installed is not None, f"the installed kernel did not load: {kernels.build_info()}"
    chosen = installed.isa()
    paths = [chosen] + [isa for isa in installed.isas() if isa != chosen]
    found = [Build(f"installed, {isa}", installed, isa) for isa in paths]
    if flags:
        module = kernels.compile_cpu_kernel("lrn_cpu_flags", shlex.split(flags), build_dir)
        found.append(Build("--flags", module))
    found += [Build(f"--so {path.name}", load_so(path, i)) for i, path in enumerate(so_files)]
    return found


def nets(alexnet_batch: int, small_batch: int) -> list[Subject]:
    def batch(size: int, channels: int, side: int, classes: int):
        return torch.randn(size, channels, side, side), torch.randint(classes, (size,))

    small = api.build("model", ["model=alexnet_small", "data=fashion_mnist"])
    alexnet = api.build("model", ["model=alexnet", "data=imagenet_ffcv"])
    return [
        Subject("AlexNet 224", alexnet, *batch(alexnet_batch, 3, 224, 1000), "fp32", True),
        Subject("AlexNet 224", alexnet, *batch(alexnet_batch, 3, 224, 1000), "bf16", True),
        Subject("alexnet_small 28", small, *batch(small_batch, 1, 28, 10), "fp32", True),
    ]


def lrn_step(a: torch.Tensor, grad: torch.Tensor) -> float:
    start = time.perf_counter()
    LocalResponseNorm(groups=2)(a).backward(grad)
    return 1000 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", default=NATIVE_FAST_MATH, help=f'[{NATIVE_FAST_MATH}]; "": none')
    parser.add_argument("--so", type=Path, nargs="*", default=[], help="prebuilt extensions")
    parser.add_argument("--rounds", type=int, default=7, help="turns each build takes [7]")
    parser.add_argument("--steps", type=int, default=2, help="steps per turn [2]")
    parser.add_argument("--alexnet-batch", type=int, default=64)
    parser.add_argument("--small-batch", type=int, default=128, help="the main job's [128]")
    parser.add_argument("--build-dir", type=Path, help="where --flags builds [a temporary one]")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {allocator()}")

    with tempfile.TemporaryDirectory() as scratch:
        all_builds = builds(args.flags, args.so, args.build_dir or Path(scratch))
    subjects = nets(args.alexnet_batch, args.small_batch)
    maps = {
        precision: torch.randn(args.alexnet_batch, 96, 55, 55, dtype=dtype)
        .contiguous(memory_format=torch.channels_last)
        .requires_grad_()
        for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    grads = {precision: torch.randn_like(a) for precision, a in maps.items()}
    for turn in range(args.rounds + 1):  # the first: warm-up (allocator, oneDNN primitives)
        for build in all_builds:
            build.use()
            for s in subjects:
                rates = [s.step() for _ in range(args.steps if turn else 1)]
                build.rates.setdefault(s.label, []).extend(rates if turn else [])
            for precision, a in maps.items():
                ms = lrn_step(a, grads[precision])
                build.lrn_ms.setdefault(precision, []).extend([ms] if turn else [])

    first = all_builds[0]
    columns = [s.label for s in subjects]
    print("\nimages/s of a training step, medians (ratio to the first row):\n")
    print("| build | path | " + " | ".join(columns) + " | LRN fwd+bwd fp32 ms | bf16 ms |")
    print("|---|---|" + "---:|" * (len(columns) + 2))
    for build in all_builds:
        cells = []
        for label in columns:
            rate = statistics.median(build.rates[label])
            cells.append(f"{rate:.1f} ({rate / statistics.median(first.rates[label]):.3f})")
        for precision in maps:
            ms = statistics.median(build.lrn_ms[precision])
            cells.append(f"{ms:.1f} ({ms / statistics.median(first.lrn_ms[precision]):.3f})")
        isa = build.isa or (build.module.isa() if hasattr(build.module, "isa") else "-")
        print(f"| {build.label} | {isa} | " + " | ".join(cells) + " |")
    print("\nflags:")
    for module in dict.fromkeys(b.module for b in all_builds):
        label = next(b.label for b in all_builds if b.module is module)
        flags = module.build_flags() if hasattr(module, "build_flags") else "not recorded"
        print(f"  {label}: {flags}")


if __name__ == "__main__":
    main()
