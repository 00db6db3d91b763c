// cudaemu stub: what kernels include from CUDA is provided by ../cuda_emu.h (force-included).
#pragma once
