"""Fused kernels: local response normalization in one pass each way, in C++ for the CPU
(`lrn_cpu.cpp`, built by `make install`) and in Triton for CUDA (`lrn_triton.py`), behind one
PyTorch operator (`lrn.py`)."""
