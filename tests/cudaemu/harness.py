"""Glue for the emulated test files: the worker fixture (pytest's process) and the helpers the
cases use inside the worker (device copies, comparisons, schedules, mutations).

Test files define their cases as module-level functions ``case_*`` (run inside the worker, they
assert) and thin pytest tests that call ``emu.check("case_x", **kwargs)``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import build

ROOT = build.ROOT
KDIR = ROOT / "kernels"
SOURCES = tuple(sorted(p.name for p in KDIR.glob("*.cu")))  # NOTE: a new file joins the coverage check
try:  # NOTE: bfloat16 (ml_dtypes' dtype, as CuPy's) is tested where ml_dtypes is installed
    import ml_dtypes
    BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    BF16 = None
DTYPES = ("float16", "float32", "float64") + (("bfloat16",) if BF16 is not None else ())
TIMINGS: dict = {}  # builds: [(modules, seconds)]; cases: [(test module, case, seconds)]


# -- pytest's side ---------------------------------------------------------------------------------

def skip_reason():
    """Why the emulated tests cannot run here, or None."""
    if build.compiler() is None:
        return "no host C++ compiler (g++/c++/clang++) on PATH: the CUDA emulator cannot be built"
    if build.asan_runtime() is None:
        return f"the C++ compiler {build.compiler()[0]} has no AddressSanitizer runtime (libasan.so)"
    return None


def module_args(source, dtype, kdir=KDIR):
    """(code, options, name expressions) exactly as gpugrad.fused.cuda builds the RawModule."""
    import importlib  # noqa: PLC0415

    from gpugrad.fused import cuda as loader  # noqa: PLC0415
    for fam in ("activation", "amp", "attention", "loss", "optim", "rnn", "softmax"):
        importlib.import_module(f"gpugrad.fused.{fam}")  # NOTE: importing a family registers its kernels
    saved, loader._opts = loader._opts, None
    try:
        opts = loader._options(Path(kdir))
    finally:
        loader._opts = saved
    exprs = sorted({loader.name_expression(n, np.dtype(dtype)) for n in loader.registered_kernels(source)})
    return (Path(kdir) / source).read_text(), opts, exprs


def prebuild(extra=()):
    """Build every (source, dtype) module, plus ``extra`` (code, options, exprs), on all cores.

    NOTE: the worker would build them on first use too, one at a time; building here in parallel
    only saves time (a build whose arguments the loader computes differently is redone there)."""
    jobs = [module_args(s, d) for s in SOURCES for d in DTYPES] + list(extra)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as ex:
        for f in [ex.submit(build.build_module, *j) for j in jobs]:
            f.result()
    TIMINGS.setdefault("builds", []).append((len(jobs), time.monotonic() - t0))


class Emu:
    """pytest's handle on a worker: ``check`` runs a case and fails the test with its report."""

    def __init__(self, module):
        from .worker import Worker  # noqa: PLC0415
        self.module, self.worker, self.launches = module, Worker(build.asan_runtime()), []

    def run(self, func, timeout=600, **kwargs):
        res = self.worker.run(self.module, func, timeout=timeout, **kwargs)
        self.launches += res.get("launches", [])
        TIMINGS.setdefault("cases", []).append((self.module, func, res["seconds"]))
        return res

    def check(self, func, **kwargs):
        import pytest  # noqa: PLC0415
        res = self.run(func, **kwargs)
        if not res["ok"]:
            pytest.fail(res["error"], pytrace=False)
        return res


@contextlib.contextmanager
def session(module, extra_builds=()):
    """The module-scoped fixture body: skip without a compiler, build, start a worker."""
    import pytest  # noqa: PLC0415
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    prebuild(extra_builds)
    emu = Emu(module)
    res = emu.worker.run("cudaemu.worker", "ping", timeout=120)
    if not res["ok"]:
        emu.worker.close()
        if "AddressSanitizer" in res["error"] and "shadow" in res["error"].lower():
            pytest.skip(f"the AddressSanitizer runtime cannot start here: {res['error'][-500:]}")
        pytest.fail(f"the emulator worker does not start:\n{res['error']}", pytrace=False)
    try:
        yield emu
    finally:
        emu.worker.close()


# -- the worker's side -----------------------------------------------------------------------------

def cupy():
    from . import standin  # noqa: PLC0415
    return standin.install()


class View:
    """An argument made the same way on both sides: ``base[idx]``, on the device from a device
    copy of ``base``. So an offset view is misaligned on the device too (a host view copied to
    the device is a new, aligned allocation)."""

    def __init__(self, base, idx):
        self.base, self.idx = base, idx


def host(a):
    return a.base[a.idx] if isinstance(a, View) else a


def dev(a):
    """A device copy of a NumPy array or View (other values as they are)."""
    if isinstance(a, View):
        return dev(a.base)[a.idx]
    return cupy().asarray(a) if isinstance(a, np.ndarray) else a


# NOTE: as tests/test_kernels_gpu.py: rounding differences of libm vs NumPy transcendentals grow
# in the far tails (exp of a large argument amplifies its last-ulp error), hence the atol.
TOL = {np.dtype(np.float16): dict(rtol=2e-3, atol=1e-5), np.dtype(np.float32): dict(rtol=1e-5, atol=1e-7),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-14)}
if BF16 is not None:  # NOTE: float16's, scaled by 2^3 for bfloat16's 8-bit (vs 11-bit) significand
    TOL[BF16] = dict(rtol=1.6e-2, atol=8e-5)


def assert_agree(got, want, what="", scaled=False, rtol=None, atol=None):
    """Same shape and dtype, same NaN pattern, equal infinities, finite values within the dtype's
    tolerance (``scaled``: the absolute tolerance relative to the largest finite magnitude, for
    results formed as differences of larger terms)."""
    assert got.shape == want.shape and got.dtype == want.dtype, \
        f"{what}: shape/dtype {got.shape} {got.dtype} vs {want.shape} {want.dtype}"
    g, w = got.astype(np.float64), want.astype(np.float64)
    assert np.array_equal(np.isnan(g), np.isnan(w)), f"{what}: NaN pattern differs at {np.argwhere(np.isnan(g) != np.isnan(w))[:5].tolist()}"
    assert np.array_equal(g[np.isinf(g)], w[np.isinf(g)]) and np.array_equal(np.isinf(g), np.isinf(w)), \
        f"{what}: infinities differ at {np.argwhere(np.isinf(g) != np.isinf(w))[:5].tolist()}"
    t = dict(TOL[want.dtype])
    if rtol is not None:
        t["rtol"] = rtol
    if atol is not None:
        t["atol"] = atol
    fin = np.isfinite(w)
    if scaled and fin.any():
        t["atol"] = max(t["atol"], t["rtol"] * float(np.abs(w[fin]).max()))
    np.testing.assert_allclose(g[fin], w[fin], err_msg=what, **t)


def compute(dt):
    """The compute dtype of a storage dtype (float32 for float16/bfloat16)."""
    return np.dtype(np.float32) if np.dtype(dt).itemsize == 2 else np.dtype(dt)


def _outputs(r):
    return r if isinstance(r, tuple) else (r,)


def compare(fn, args=(), kwargs=None, what="", schedules=False, scaled=False, tol_as=None, **tol):
    """fn on NumPy arrays (the fallback) vs fn on device copies (the kernels through the bridge);
    ``schedules``: the device run is repeated under the lifo and two random schedules and must
    give the same bits; ``tol_as``: a dtype whose tolerance applies to every output (e.g. the
    float64 lse of float32 logits carries float32 precision). Returns the device outputs."""
    from . import standin  # noqa: PLC0415
    cp, kwargs = cupy(), kwargs or {}
    want = _outputs(fn(*[host(a) for a in args], **{k: host(v) for k, v in kwargs.items()}))

    def on_device():
        out = _outputs(fn(*[dev(a) for a in args], **{k: dev(v) for k, v in kwargs.items()}))
        for o in out:
            assert isinstance(o, cp.ndarray), f"{what}: the device path returned a {type(o).__name__}"
        return [o.get() for o in out]

    got = on_device()
    assert len(got) == len(want), what
    for i, (g, w) in enumerate(zip(got, want)):
        t = tol
        if tol_as is not None:  # the looser of the output's own tolerance and tol_as's
            loose = max((np.dtype(tol_as), np.asarray(w).dtype), key=lambda d: TOL[d]["rtol"])
            t = dict(TOL[loose], **tol)
        assert_agree(g, np.asarray(w), f"{what} output {i}", scaled=scaled, **t)
    if schedules:
        for policy, seed in (("lifo", 0), ("random", 1), ("random", 2)):
            with standin.schedule(policy, seed):
                again = on_device()
            for i, (g, a) in enumerate(zip(got, again)):
                assert np.array_equal(g.reshape(-1).view(np.uint8), a.reshape(-1).view(np.uint8)), \
                    f"{what} output {i}: the {policy} schedule (seed {seed}) gives different bits: the result depends on thread order"
    return got


@contextlib.contextmanager
def patched(obj, **attrs):
    """Set attributes for the duration (the worker runs many cases: always restore)."""
    old = {k: getattr(obj, k) for k in attrs}
    for k, v in attrs.items():
        setattr(obj, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(obj, k, v)


def mutated_kernels(name, file, old, new):
    """A copy of kernels/ with one text patch applied to ``file``, at a stable path (so its
    emulator build is cached like the others). The patch must match exactly once."""
    text = (KDIR / file).read_text()
    assert text.count(old) == 1, f"mutation {name}: the text to patch occurs {text.count(old)} times in {file}"
    d = build.cache_root() / "mutations" / f"{name}-{hashlib.sha256((old + new).encode()).hexdigest()[:10]}"
    d.mkdir(parents=True, exist_ok=True)
    for p in list(KDIR.glob("*.cu")) + list(KDIR.glob("*.cuh")):
        t = text.replace(old, new) if p.name == file else p.read_text()
        if not (d / p.name).exists() or (d / p.name).read_text() != t:
            (d / p.name).write_text(t)
    return d


@contextlib.contextmanager
def kernels_from(kdir):
    """Make gpugrad's loader read its sources from ``kdir`` (and forget what it compiled)."""
    from gpugrad.fused import cuda as loader  # noqa: PLC0415
    state = (loader._opts, dict(loader._modules), dict(loader._kernels))
    loader._opts = None
    loader._modules.clear()
    loader._kernels.clear()
    try:
        with patched(loader, kernels_dir=lambda: Path(kdir)):
            yield
    finally:
        loader._opts = state[0]
        loader._modules.clear()
        loader._modules.update(state[1])
        loader._kernels.clear()
        loader._kernels.update(state[2])


@contextlib.contextmanager
def patched_function(module, func, old, new):
    """``module.func`` recompiled from its source with one text patch (a mutated bridge)."""
    import inspect  # noqa: PLC0415
    import textwrap  # noqa: PLC0415
    src = textwrap.dedent(inspect.getsource(getattr(module, func)))
    assert src.count(old) == 1, f"the text to patch occurs {src.count(old)} times in {module.__name__}.{func}"
    ns = dict(vars(module))
    exec(compile(src.replace(old, new), f"<mutated {module.__name__}.{func}>", "exec"), ns)  # noqa: S102
    with patched(module, **{func: ns[func]}):
        yield


def assert_every_kernel_ran(emu, module, module_globals, sources, dtypes, exclude=()):
    """The coverage check of an emulated test module: every __global__ kernel of ``sources`` (found by the
    build's scan, registered or not) was launched for every dtype by the module's ``case_*`` functions
    (pytest-skipped when a -k selection ran only some of them). Writes the launch configurations to
    .cache/cudaemu/coverage-<module>.json."""
    import pytest  # noqa: PLC0415
    from gpugrad.fused import cuda as loader  # noqa: PLC0415
    cases = {case for mod, case, _ in TIMINGS.get("cases", []) if mod == module}
    wanted = {n for n, v in module_globals.items() if n.startswith("case_") and callable(v)} - set(exclude)
    if not wanted <= cases:
        pytest.skip(f"not all cases ran in this session (missing {sorted(wanted - cases)[:3]} ...)")
    expected = set()
    for src in sources:
        for dt in dtypes:
            code, opts, exprs = module_args(src, dt)
            meta = json.loads((build.build_module(code, opts, exprs) / "meta.json").read_text())
            expected |= {loader.name_expression(k, np.dtype(dt)) for k in meta["kernels"]}
    ran = {}
    for name, grid, block, shm, policy in emu.launches:
        ran.setdefault(name, set()).add((tuple(grid), tuple(block), policy))
    missing = sorted(expected - set(ran))
    (build.cache_root() / f"coverage-{module}.json").write_text(json.dumps(
        {k: sorted(map(list, v)) for k, v in sorted(ran.items())}, indent=0))
    assert not missing, f"{len(missing)} kernels never ran: {missing[:10]}"

