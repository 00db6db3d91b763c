"""cudaemu: CUDA kernels executed on the CPU under an emulated thread model (see README.md)."""
