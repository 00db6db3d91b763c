"""Shared fixtures: every device test runs on 'cpu', and on 'cuda' when CuPy and a GPU are usable."""
import numpy as np
import pytest

import gpugrad as gg

_CUDA_REASON = gg.cuda.why_unavailable()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(_CUDA_REASON is not None,
                                                                 reason=f"no CUDA: {_CUDA_REASON}"))]


@pytest.fixture(params=DEVICES)
def device(request):
    """The device under test ('cpu' or 'cuda')."""
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    gg.manual_seed(0)
    np.random.seed(0)


def to_np(t):
    """A Tensor's values as a numpy array (from any device)."""
    d = t._data if isinstance(t, gg.Tensor) else t
    return d if isinstance(d, np.ndarray) else d.get()
