"""pytest plugin: run tests written for CuPy on the emulator instead of a GPU, e.g.

    LD_PRELOAD=$(g++ -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0 \
        PYTHONPATH=tests python -m pytest -p cudaemu.plugin tests/test_kernels_gpu.py

(the ASan runtime must be preloaded into the Python that loads the sanitized modules).
"""
import os

import pytest

from . import standin

standin.install()  # NOTE: at import: tests/conftest.py asks gpugrad about CUDA when it is imported


def pytest_configure(config):
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        raise pytest.UsageError("cudaemu.plugin: start Python with LD_PRELOAD=$(g++ -print-file-name=libasan.so) "
                                "ASAN_OPTIONS=detect_leaks=0 (see tests/cudaemu/plugin.py)")
