"""Shared fixtures: every device test runs on 'cpu', and on 'cuda' when CuPy and a GPU are usable."""
import re

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


# -- the skip summary ------------------------------------------------------------------------------------
# NOTE: the reasons the CUDA cases give (besides the text of _CUDA_REASON); a toolkit skip (nvcc, NVRTC) is not one
_CUDA_SKIP = re.compile(r"needs (CUDA|CuPy and a CUDA GPU|two CUDA devices)")


def _is_cuda_skip(report):
    """A test skipped because this machine has no usable CUDA (other skips are never folded)."""
    longrepr = report.longrepr
    if _CUDA_REASON is None or not (isinstance(longrepr, tuple) and len(longrepr) == 3):
        return False
    reason = str(longrepr[2]).removeprefix("Skipped: ")
    return _CUDA_REASON in reason or bool(_CUDA_SKIP.fullmatch(reason))


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter, config):
    """On a machine without CUDA, the CUDA cases' skip reasons (one line per test location under -ra) fold into
    one line with their count. `pytest -rs` or `-v` lists them all as usual."""
    args = config.invocation_params.args
    if config.option.verbose > 0 or any(str(a).startswith("-r") for a in args):
        return
    cuda = [r for r in terminalreporter.stats.get("skipped", []) if _is_cuda_skip(r)]
    for r in cuda:
        # NOTE: the summary folds skips with one (file, line, reason); the counts are left as they are
        r.longrepr = (__file__, None, f"CUDA cases, no CUDA here: {_CUDA_REASON} (-rs lists them)")
