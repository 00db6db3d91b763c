"""gg.compile's CUDA-graph replay (gpugrad/compile.py:_Graph), against a stand-in CuPy on NumPy arrays.

The stand-in's streams note begin_capture/end_capture/launch; its Graph.launch runs the captured Python body again
(the seam compile._run_captured hands it over), which computes what the real graph's kernels would, into the slots
the graph reads. NumPy underneath, so compiled == eager bit for bit. The real-GPU test at the end skips without CuPy.
"""
import contextlib
import importlib
import types
import warnings

import numpy as np
import pytest

import gpugrad as gg
_c = importlib.import_module("gpugrad.compile")
from gpugrad import nn
from gpugrad.autograd.primitive import Primitive
from gpugrad.fused import cuda as _cuda
from gpugrad.nn import functional as F


class _Fake:
    """The part of CuPy that _Graph calls, with a log of the capture calls."""

    def __init__(self, fail=None, no_graphs=False):
        self.log, self.fail, self.capturing, self.copies = [], fail, None, []
        fake = self

        class Stream:
            def __init__(self, non_blocking=False):
                assert non_blocking
                self.run = None

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def record(self, event=None):
                return object()

            def wait_event(self, event):
                pass

            if not no_graphs:
                def begin_capture(self, mode=None):
                    fake.log.append("begin")
                    fake.capturing = self

                def end_capture(self):
                    fake.log.append("end")
                    fake.capturing, run = None, self.run
                    if fake.fail:
                        raise RuntimeError("cudaErrorStreamCaptureInvalidated")
                    return types.SimpleNamespace(launch=lambda stream: (fake.log.append("launch"), run(), fake.log.append("done")))

        self.cuda = types.SimpleNamespace(Stream=Stream, get_current_stream=lambda: Stream(True),
                                          MemoryPool=lambda: types.SimpleNamespace(malloc=None),
                                          using_allocator=lambda fn: contextlib.nullcontext())
        self.empty, self.empty_like = np.empty, np.empty_like

    def captured(self, run):
        self.capturing.run = run
        run()


@pytest.fixture
def fake(monkeypatch):
    def make(**kw):
        f = _Fake(**kw)
        monkeypatch.setattr(_c, "_cupy_for", lambda arrays: f)
        monkeypatch.setattr(_c, "_run_captured", f.captured)
        return f
    return make


def _model(p=0.0):
    gg.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(p), nn.Linear(16, 4))


def _train(compiled, steps=6, p=0.0, opt=gg.optim.Adam, lrs=None):
    m = _model(p)
    o = opt(m.parameters(), lr=0.01)

    def step(x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss.detach()
    f = gg.compile(step) if compiled else step
    rng = np.random.default_rng(1)
    losses = []
    for k in range(steps):
        if lrs:
            o.param_groups[0]["lr"] = lrs[k]
        x = gg.tensor(rng.standard_normal((5, 8)).astype(np.float32))
        losses.append(f(x, gg.tensor(rng.integers(0, 4, 5))).numpy().copy())
    return [p.detach().numpy().copy() for p in m.parameters()], losses, f, x


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_graph_step_equals_eager_one_launch_per_call(fake, p):
    f = fake()
    lrs = [0.01, 0.01, 0.01, 0.05, 0.002, 0.002]  # NOTE: lr changed by hand after the capture: read on each replay
    pe, le, _, _ = _train(False, p=p, lrs=lrs)
    pc, lc, step, x = _train(True, p=p, lrs=lrs)
    for a, b in zip(pe + le, pc + lc):
        assert np.array_equal(a, b)  # NOTE: dropout: a fresh mask per launch, in eager's generator order
    assert f.log == ["begin", "end"] + ["launch", "done"] * 4  # calls 1-2 record, 3 captures and launches, 4-6 launch
    g = step.cache[next(iter(step.cache))][0].graph
    assert g.inp[0] is not x._data and np.array_equal(g.inp[0], x._data)  # the last input, in the static buffer


def test_sgd_momentum_and_scheduler(fake):
    fake()
    pe, le, _, _ = _train(False, opt=gg.optim.SGD, lrs=[0.1, 0.1, 0.1, 0.3, 0.3, 0.01])
    pc, lc, _, _ = _train(True, opt=gg.optim.SGD, lrs=[0.1, 0.1, 0.1, 0.3, 0.3, 0.01])
    assert all(np.array_equal(a, b) for a, b in zip(pe + le, pc + lc))


class _Checked(Primitive):
    """Identity whose forward sets a device-side error flag for values > 100, as cross_entropy's bad-target flag."""

    def forward(self, x):
        err = np.asarray((x > 100).any(), np.int32)
        _cuda.check_flag(err, self.fail)
        return x.copy()

    def backward(self, g):
        return g

    @staticmethod
    def fail():
        _Checked.when = _Checked.log[-1] if _Checked.log else "eager"
        raise ValueError("value > 100")


def test_flags_read_after_the_launch(fake):
    f = fake()
    _Checked.log = f.log
    w = gg.ones(3, requires_grad=True)

    @gg.compile
    def step(x):
        w.grad = None
        (_Checked.apply(x) * w).sum().backward()
        return w.grad

    for k in range(4):
        if k == 1:
            with pytest.raises(ValueError, match="value > 100"):  # NOTE: eager (recording) calls read it at once
                step.fn(gg.tensor([1.0, 200.0, 1.0]))
            assert _Checked.when in ("eager", "end")
        assert np.array_equal(step(gg.ones(3) * 2).numpy(), [2, 2, 2])
    with pytest.raises(ValueError, match="value > 100"):
        step(gg.tensor([1.0, 200.0, 1.0]))
    assert _Checked.when == "done" and f.log.count("begin") == 1  # NOTE: read after the launch, not inside it


def test_capture_failure_falls_back_once(fake):
    fake(fail=True)
    pe, le, _, _ = _train(False)
    with pytest.warns(RuntimeWarning, match="not as a CUDA graph: its capture failed"):
        pc, lc, step, _ = _train(True)
    assert all(np.array_equal(a, b) for a, b in zip(pe + le, pc + lc))
    assert step.cache[next(iter(step.cache))][0].graph is False


def test_no_graph_support_and_random_draws_fall_back(fake):
    fake(no_graphs=True)
    with pytest.warns(RuntimeWarning, match="capture failed"):
        _train(True, steps=4)
    fake()
    w = gg.ones(3, requires_grad=True)

    @gg.compile
    def noisy(x):
        w.grad = None
        ((x + gg.randn(3)) * w).sum().backward()
        return w.grad

    gg.manual_seed(3)
    eager = [noisy.fn(gg.ones(3)).numpy().copy() for _ in range(5)]
    gg.manual_seed(3)
    with pytest.warns(RuntimeWarning, match="draws random numbers"):
        comp = [noisy(gg.ones(3)).numpy().copy() for _ in range(5)]
    assert all(np.array_equal(a, b) for a, b in zip(eager, comp))  # NOTE: never the same noise twice


def test_held_grad_keeps_its_values_and_accumulation_is_flat(fake):
    fake()
    w = gg.ones(2, requires_grad=True)

    @gg.compile
    def step(x):
        w.grad = None
        (x * w).sum().backward()
        return w.grad.sum()

    held = []
    for k in range(5):
        step(gg.full((2,), float(k)))
        held.append(w.grad)  # NOTE: the graph rewrites the .grad memory: an old one still held keeps its values
    assert [h.detach().numpy().tolist() for h in held] == [[k, k] for k in range(5)]

    v = gg.ones(2, requires_grad=True)

    @gg.compile
    def acc(x):
        (x * v).sum().backward()
        return x

    with pytest.warns(RuntimeWarning, match="adds gradients into existing"):
        for _ in range(4):
            acc(gg.ones(2))
    assert v.grad.detach().numpy().tolist() == [4, 4]


def test_graph_on_gpu_matches_eager_digits_mlp():
    cp = pytest.importorskip("cupy")
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no GPU")
    except Exception:  # noqa: BLE001
        pytest.skip("no GPU")

    def run(compiled):
        gg.manual_seed(0)
        m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to("cuda")
        o = gg.optim.Adam(m.parameters(), lr=1e-3)

        def step(x, y):
            o.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            o.step()
            return loss
        f = gg.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        for _ in range(5):
            x = gg.tensor(rng.standard_normal((64, 64)).astype(np.float32), device="cuda")
            f(x, gg.tensor(rng.integers(0, 10, 64), device="cuda"))
        return [p.detach().numpy() for p in m.parameters()], f
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # NOTE: a fallback to the flat replay fails the test
        pc, f = run(True)
    pe, _ = run(False)
    for a, b in zip(pe, pc):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert f.cache[next(iter(f.cache))][0].graph
