"""Devices: parsing, the default device ($GPUGRAD_DEVICE), CUDA availability and its error messages,
and the refusal to mix devices in one op."""
import types

import numpy as np
import pytest

import gpugrad as gg
from gpugrad import backend
from gpugrad.ops import elementwise as ew

from conftest import to_np

HAS_CUDA = gg.cuda.is_available()
needs_no_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only error paths")
needs_two_gpus = pytest.mark.skipif(gg.cuda.device_count() < 2, reason="needs two CUDA devices")


@pytest.mark.parametrize("spec,type_,index,text", [
    ("cpu", "cpu", None, "cpu"), ("CPU ", "cpu", None, "cpu"), ("cuda", "cuda", 0, "cuda:0"),
    ("cuda:1", "cuda", 1, "cuda:1"), ("cuda:12", "cuda", 12, "cuda:12")])
def test_device_parsing(spec, type_, index, text):
    d = gg.device(spec)
    assert (d.type, d.index, str(d)) == (type_, index, text)
    assert repr(d) == f"device('{text}')"
    assert gg.Device(d) == d and hash(gg.Device(text)) == hash(d)


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "cpu:1", "", "tpu:0"])
def test_bad_device_strings_raise_value_error(bad):
    with pytest.raises(ValueError, match="device"):
        gg.device(bad)


def test_device_type_errors_and_equality_with_strings():
    with pytest.raises(TypeError, match="string"):
        gg.Device(3)
    assert gg.device("cuda:0") == "cuda" and gg.device("cuda") == "cuda:0"
    assert gg.device("cpu") == "cpu" and gg.device("cpu") != "cuda" and gg.device("cuda:1") != "cuda:0"
    assert gg.device("cpu") != "nonsense" and gg.device("cpu") != 0
    assert gg.device(None) == gg.get_default_device()
    assert gg.device("auto") == ("cuda" if HAS_CUDA else "cpu")
    assert gg.tensor([1.0]).device == "cpu" and gg.backend.device_of(np.zeros(1)) == "cpu"
    assert backend.xp_of(np.zeros(1)) is np and backend.xp_of(np.float32(1)) is np
    with pytest.raises(TypeError, match="numpy or cupy"):
        backend.xp_of([1.0])


@needs_no_cuda
def test_cuda_unavailable_says_why_and_how_to_install():
    assert gg.cuda.is_available() is False and gg.cuda.device_count() == 0
    why = gg.cuda.why_unavailable()
    assert isinstance(why, str) and why
    gg.cuda.synchronize()  # a no-op without CUDA
    for make in (lambda: gg.zeros(2, device="cuda"), lambda: gg.tensor([1.0], device="cuda:0"),
                 lambda: gg.tensor([1.0]).cuda(), lambda: gg.set_default_device("cuda"), lambda: gg.device("cuda").xp):
        with pytest.raises(gg.CudaUnavailableError) as ei:
            make()
        if "not installed" in str(ei.value):
            assert 'pip install "gpugrad[cuda12]"' in str(ei.value)
    assert isinstance(gg.CudaUnavailableError("x"), RuntimeError)
    assert gg.get_default_device() == "cpu"  # the failed set_default_device changed nothing


@pytest.fixture
def fresh_default(monkeypatch):
    """Reset the cached default device before and after the test."""
    monkeypatch.setattr(backend, "_default_device", None)
    yield monkeypatch
    backend._default_device = None


def test_gpugrad_device_env_var(fresh_default):
    fresh_default.setenv("GPUGRAD_DEVICE", "cpu")
    assert gg.get_default_device() == "cpu" and gg.zeros(1).device == "cpu"
    backend._default_device = None
    fresh_default.setenv("GPUGRAD_DEVICE", "auto")
    assert gg.get_default_device() == ("cuda" if HAS_CUDA else "cpu")
    backend._default_device = None
    fresh_default.setenv("GPUGRAD_DEVICE", "quantum")
    with pytest.raises(ValueError, match="GPUGRAD_DEVICE='quantum'"):
        gg.get_default_device()
    backend._default_device = None
    fresh_default.delenv("GPUGRAD_DEVICE")
    assert gg.get_default_device() == "cpu"


@needs_no_cuda
def test_gpugrad_device_cuda_without_cuda_fails_clearly(fresh_default):
    fresh_default.setenv("GPUGRAD_DEVICE", "cuda")
    with pytest.raises(gg.CudaUnavailableError):
        gg.zeros(1)


def test_set_default_device(fresh_default):
    gg.set_default_device("cpu")
    assert gg.get_default_device() == "cpu"
    gg.set_default_device("auto")
    assert gg.ones(1).device == ("cuda" if HAS_CUDA else "cpu")
    with pytest.raises(ValueError):
        gg.set_default_device("cuda:banana")


# -- mixing devices: the error path, with a fake array type standing in for cupy ----------------------
class FakeGPUArray:
    """Enough of a cupy.ndarray for the device checks: type, .device.id, dtype, shape."""

    def __init__(self, dev_id, shape=(2,)):
        self.device = types.SimpleNamespace(id=dev_id)
        self.dtype = np.dtype("float32")
        self.shape = shape


@pytest.fixture
def fake_cupy(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", types.SimpleNamespace(ndarray=FakeGPUArray))


def test_fake_arrays_report_their_device(fake_cupy):
    assert backend.device_of(FakeGPUArray(1)) == "cuda:1"
    assert gg.Tensor(FakeGPUArray(0)).device == "cuda:0"


@pytest.mark.parametrize("a,b,names", [
    (lambda: FakeGPUArray(0), lambda: FakeGPUArray(1), ["cuda:0", "cuda:1"]),
    (lambda: np.zeros(2, np.float32), lambda: FakeGPUArray(0), ["cpu", "cuda:0"])])
def test_ops_on_two_devices_raise_naming_both(fake_cupy, a, b, names):
    x, y = gg.Tensor(a()), gg.Tensor(b())
    for op in (lambda: ew.Add.apply(x, y), lambda: x + y, lambda: gg.maximum(x, y)):
        with pytest.raises(RuntimeError, match="same device") as ei:
            op()
        msg = str(ei.value)
        assert all(n in msg for n in names) and ".to(device)" in msg
    with pytest.raises(RuntimeError, match="same device"):
        _ = x < y


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cpu_and_cuda_tensors_do_not_mix():
    x, y = gg.ones(2), gg.ones(2, device="cuda")
    with pytest.raises(RuntimeError, match="cpu"):
        x + y
    z = (x.cuda() + y).cpu()
    assert z.device == "cpu" and to_np(z).tolist() == [2.0, 2.0]


@needs_two_gpus
def test_two_cuda_devices_do_not_mix():
    with pytest.raises(RuntimeError, match="cuda:0.*cuda:1"):
        gg.ones(2, device="cuda:0") * gg.ones(2, device="cuda:1")


@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_gradient_flows_back_across_devices():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.to("cuda") * 3).sum()
    y.backward()
    assert x.grad.device == "cpu" and to_np(x.grad).tolist() == [3.0, 3.0]
