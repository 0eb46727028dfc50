"""The compiled part of alexlab: the fused LRN kernel for the CPU (src/alexlab/kernels/lrn_cpu.cpp).
Everything else is in pyproject.toml. Built against the installed torch, so `make install` installs
torch first and builds this without build isolation."""

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

# -ffast-math at compile time only: it lets std::pow vectorize through glibc's libmvec; linking
# with it would switch the whole process to flush-to-zero. -march=native: the build is the
# machine's own (make install).
COMPILE = ["-O3", "-march=native", "-ffast-math", "-fopenmp"]

setup(
    ext_modules=[
        CppExtension(
            "alexlab.kernels._lrn_cpu",
            ["src/alexlab/kernels/lrn_cpu.cpp"],
            extra_compile_args=COMPILE,
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
