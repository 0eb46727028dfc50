"""The compiled part of alexlab: the fused LRN kernel for the CPU (src/alexlab/kernels/lrn_cpu.cpp).
Everything else is in pyproject.toml. Built against the installed torch, so `make install` installs
torch first and builds this without build isolation.

The default build is portable: it targets x86-64-v2 (any x86-64 CPU since about 2009; on other
architectures the compiler's default), and the kernel carries AVX2 and AVX-512 paths that it
chooses between at run time (`alexlab.kernels.lrn.build_info()` says which), so a .venv built on
one machine runs on any other of its architecture. Every path gives the same bits.

    ALEXLAB_NATIVE=1 make install    (or: ALEXLAB_NATIVE=1 pip install --no-build-isolation -e .)

builds for this machine's own CPU alone (-march=native, no run-time choice): the same results, but
it may die with an illegal instruction on a CPU without this one's instructions. To rebuild an
installed .venv, remove .venv/.installed first.
"""

import json
import os
import platform

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

NATIVE = os.environ.get("ALEXLAB_NATIVE") == "1"
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
# No -ffast-math: it made the results depend on the CPU (reciprocal square root approximations,
# FMA where the CPU has it) and lets the compiler assume that no value is inf or NaN, which a
# diverging run's are. -ffp-contract=off: no FMA contraction, so the AVX2 and AVX-512 paths round
# as the baseline one does. -fno-math-errno changes no value, only whether sqrt of a negative
# sets errno, which nothing reads (and s >= 0 here); without it GCC keeps a scalar call to sqrtf
# beside each sqrt for errno's sake and vectorizes none of the loops that take one: LRN's forward
# and backward at AlexNet's conv1 maps took 2.1x (fp32) and 2.3x (bf16) as long, its training
# step 5-10% longer (benchmarks/lrn_build.py, with a build without it by --flags or --so).
COMPILE = [
    "-O3",
    *(["-march=native"] if NATIVE else ["-march=x86-64-v2"] if X86_64 else []),
    "-fno-math-errno",
    "-ffp-contract=off",
    "-fopenmp",
]
# A native build is its own and only path (lrn_cpu.cpp's ALEXLAB_ONE_PATH).
DEFINES = [("ALEXLAB_ONE_PATH", None)] if NATIVE else []
BUILD_FLAGS = " ".join(COMPILE + [f"-D{name}" for name, _ in DEFINES])

setup(
    ext_modules=[
        CppExtension(
            "alexlab.kernels._lrn_cpu",
            ["src/alexlab/kernels/lrn_cpu.cpp"],
            define_macros=[*DEFINES, ("ALEXLAB_BUILD_FLAGS", json.dumps(BUILD_FLAGS))],
            extra_compile_args=COMPILE,
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
