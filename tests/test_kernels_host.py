"""Host-side checks of the fused CUDA kernels (no GPU needed).

1. Every ``kernels/*.cu`` compiles with nvcc to PTX for sm_80 and sm_90, with each kernel
   instantiated for float, double, __half and __nv_bfloat16 (the name expressions the loader will ask
   NVRTC for).
2. The ``__host__ __device__`` math of activation.cu, softmax.cu and loss.cu, compiled for the host
   (tests/host/harness.cpp, loaded with ctypes), agrees with the NumPy fallbacks of gpugrad.fused on
   a grid of extreme values, forward and backward, in float32 and float64 compute (optim.cu's math
   has its own host harness in tests/test_optim.py; the kernels themselves run under emulation in
   tests/test_kernels_emulated.py).
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gpugrad.fused import activation as A  # noqa: E402
from gpugrad.fused import cuda as loader  # noqa: E402
from gpugrad.fused import loss as L  # noqa: E402
from gpugrad.fused import softmax as S  # noqa: E402

KDIR = ROOT / "kernels"
CU_FILES = sorted(p.name for p in KDIR.glob("*.cu"))
ARCHS = ("sm_80", "sm_90")
NVCC = shutil.which("nvcc")
CTYPES = ("float", "double", "__half", "__nv_bfloat16")
# kernels declared directly as `template <class T> __global__ void gpugrad_...(` (not via a macro)
_TEMPLATE_KERNEL = re.compile(r"template\s*<\s*(?:class|typename)\s+\w+\s*>\s*__global__\s+void\s+(gpugrad_\w+)\s*\(")


def _kernel_names(source: str) -> list[str]:
    text = (KDIR / source).read_text()
    return sorted(set(loader.registered_kernels(source)) | set(_TEMPLATE_KERNEL.findall(text)))


# -- 1. nvcc compile check -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def nvcc_results(tmp_path_factory):
    """Compile every (file, arch) concurrently once; {(file, arch): (CompletedProcess, ptx path)}."""
    if NVCC is None:
        pytest.skip("nvcc is not on PATH: cannot check that kernels/*.cu compile (install the CUDA toolkit)")
    d = tmp_path_factory.mktemp("nvcc")
    jobs = {}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as ex:
        for f in CU_FILES:
            unit = d / f"instantiate_{f}"
            refs = ",\n".join(f"  (void*)&{n}<{t}>" for n in _kernel_names(f) for t in CTYPES)
            # NOTE: taking each specialisation's address instantiates it, as NVRTC's name expressions do
            unit.write_text(f'#include "{f}"\nvoid* gpugrad_instantiated[] = {{\n{refs or "  0"}\n}};\n')
            for arch in ARCHS:
                ptx = d / f"{f}.{arch}.ptx"
                # NOTE: -Xcicc -O0 skips NVVM's optimiser (5x faster): the front end, template
                # instantiation and PTX generation for the arch, which is what can fail, still run.
                cmd = [NVCC, "-std=c++17", f"-I{KDIR}", "--ptx", f"-arch={arch}", "-Xcicc", "-O0", str(unit),
                       "-o", str(ptx)]
                jobs[(f, arch)] = (ex.submit(subprocess.run, cmd, capture_output=True, text=True, timeout=600), ptx)
        return {k: (fut.result(), ptx) for k, (fut, ptx) in jobs.items()}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("source", CU_FILES)
def test_cu_compiles(nvcc_results, source, arch):
    proc, ptx = nvcc_results[(source, arch)]
    assert proc.returncode == 0, f"nvcc failed for {source} ({arch}):\n{proc.stderr[-4000:]}"
    entries = ptx.read_text().count(".entry ")
    assert entries == len(_kernel_names(source)) * len(CTYPES), f"{source}: {entries} kernels in the PTX"


# -- 1b. NVRTC, the compiler CuPy's RawModule uses at run time (when libnvrtc is around) ------------

def _find_nvrtc():
    """(libnvrtc path, its builtins library or None, include dir with cuda_fp16.h) or None."""
    import ctypes.util  # noqa: PLC0415
    import glob  # noqa: PLC0415
    import site  # noqa: PLC0415
    roots = [os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"]
    if NVCC:
        roots.append(str(Path(NVCC).resolve().parent.parent))
    dirs = [f"{r}/{sub}" for r in roots if r for sub in ("lib64", "lib", "targets/x86_64-linux/lib")]
    dirs += [f"{sp}/nvidia/{pkg}/lib" for sp in site.getsitepackages() for pkg in ("cu13", "cuda_nvrtc")]
    libs = [p for d in dirs for p in sorted(glob.glob(f"{d}/libnvrtc.so*")) if "alt" not in p]
    found = ctypes.util.find_library("nvrtc")
    lib = libs[0] if libs else found
    inc = next((f"{r}/include" for r in roots if r and Path(f"{r}/include/cuda_fp16.h").is_file()), None)
    if lib is None or inc is None:
        return None
    builtins = sorted(glob.glob(str(Path(lib).parent / "libnvrtc-builtins.so.*")))
    return lib, (builtins[0] if builtins else None), inc


@pytest.fixture(scope="session")
def nvrtc():
    found = _find_nvrtc()
    if found is None:
        pytest.skip("libnvrtc (or the CUDA headers) not found: the NVRTC compile check needs a CUDA toolkit "
                    "or the nvidia-cuda-nvrtc wheel")
    lib_path, builtins, inc = found
    if builtins:  # NOTE: preloaded so libnvrtc finds it without LD_LIBRARY_PATH
        ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
    lib = ctypes.CDLL(lib_path)
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return lib, inc


@pytest.mark.parametrize("source", CU_FILES)
def test_nvrtc_compiles_every_name_expression(nvrtc, source):
    """What loader.get_kernel does on a GPU machine: one program per dtype, the name expressions
    added, compiled with the loader's options, each expression lowered to a symbol."""
    lib, inc = nvrtc
    code = (KDIR / source).read_text().encode()
    for ct in CTYPES:
        prog = ctypes.c_void_p()
        assert lib.nvrtcCreateProgram(ctypes.byref(prog), code, source.encode(), 0, None, None) == 0
        exprs = [f"{n}<{ct}>".encode() for n in _kernel_names(source)]
        for e in exprs:
            assert lib.nvrtcAddNameExpression(prog, e) == 0
        opts = [o.encode() for o in loader._options(KDIR)] + [f"-I{inc}".encode(), b"--gpu-architecture=compute_80"]
        rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        assert rc == 0, f"NVRTC failed on {source} for {ct}: {lib.nvrtcGetErrorString(rc)}\n{log.value.decode()[-4000:]}"
        for e in exprs:
            sym = ctypes.c_char_p()
            assert lib.nvrtcGetLoweredName(prog, e, ctypes.byref(sym)) == 0 and sym.value.startswith(b"_Z"), e
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


# -- 2. host math vs NumPy fallbacks ----------------------------------------------------------------

_D = ctypes.POINTER(ctypes.c_double)
_I64 = ctypes.POINTER(ctypes.c_longlong)


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The harness shared library built from the kernels' host/device math."""
    so = tmp_path_factory.mktemp("host") / "libgg_host.so"
    src = ROOT / "tests" / "host" / "harness.cpp"
    cxx = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if cxx:
        cmd = [cxx, "-std=c++17", "-O2", "-shared", "-fPIC", f"-I{KDIR}", str(src), "-o", str(so)]
    elif NVCC:
        cmd = [NVCC, "-std=c++17", "-O2", "-shared", "-Xcompiler", "-fPIC", f"-I{KDIR}", "-x", "cu", str(src),
               "-o", str(so)]
    else:
        pytest.skip("no host C++ compiler (g++/c++/clang++) or nvcc on PATH: cannot build the host harness")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"building the host harness failed:\n{proc.stderr[-4000:]}"
    lib = ctypes.CDLL(str(so))
    i, ll, dbl, s = ctypes.c_int, ctypes.c_longlong, ctypes.c_double, ctypes.c_char_p
    lib.gg_act.argtypes = [s, i, i, _D, _D, _D, ll, dbl, dbl, i]
    lib.gg_rows.argtypes = [s, i, _D, _D, _D, _D, ll, ll]
    lib.gg_ce_fwd.argtypes = [i, _D, _I64, _D, _D, _D, ll, ll, ll, dbl]
    lib.gg_ce_bwd.argtypes = [i, _D, _I64, _D, _D, _D, _D, ll, ll, ll, dbl]
    lib.gg_ce_prob_fwd.argtypes = [i, _D, _D, _D, _D, _D, ll, ll, dbl]
    lib.gg_ce_prob_bwd.argtypes = [i, _D, _D, _D, _D, _D, _D, ll, ll, dbl]
    lib.gg_pointwise.argtypes = [s, i, i, _D, _D, _D, ll, dbl]
    lib.gg_bce.argtypes = [i, i, _D, _D, _D, _D, _D, ll]
    return lib


def _p(a):
    if a is None:
        return None
    assert a.flags.c_contiguous and a.dtype in (np.float64, np.int64)
    return a.ctypes.data_as(_I64 if a.dtype == np.int64 else _D)


PRECS = [pytest.param(0, np.float32, id="float32"), pytest.param(1, np.float64, id="float64")]
TOL = {np.float32: dict(rtol=4e-6, atol=8 * np.finfo(np.float32).tiny),
       np.float64: dict(rtol=1e-12, atol=8 * np.finfo(np.float64).tiny)}
GRID = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-7, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 3.3, -7.7, 20.0, -20.0, 30.0,
                 -30.0, 88.0, -88.0, 100.0, -100.0, 1e4, -1e4, np.inf, -np.inf, np.nan])


def _d(a):
    """float64 copy of an array (the harness's I/O type)."""
    return np.ascontiguousarray(a, dtype=np.float64)


def assert_agree(host_vals, np_vals, dt, inputs_finite=None, what="", scaled=False):
    """Same NaN/inf pattern, equal infinities, finite values within the dtype's tolerance, and
    finite results wherever the inputs are finite. ``scaled``: the absolute tolerance is relative
    to the largest magnitude (gradients formed as differences of O(1) terms, e.g. p - onehot)."""
    h = host_vals.astype(dt).astype(np.float64)  # the kernel would store in dt
    n = np.asarray(np_vals, dtype=np.float64)
    assert h.shape == n.shape, what
    assert np.array_equal(np.isnan(h), np.isnan(n)), f"{what}: NaN pattern differs: host {h} numpy {n}"
    assert np.array_equal(np.isinf(h), np.isinf(n)) and np.array_equal(h[np.isinf(h)], n[np.isinf(n)]), \
        f"{what}: infinities differ: host {h} numpy {n}"
    fin = np.isfinite(h)
    tol = dict(TOL[dt])
    if scaled and fin.any():
        tol["atol"] = tol["rtol"] * float(np.abs(n[fin]).max())
    np.testing.assert_allclose(h[fin], n[fin], err_msg=what, **tol)
    if inputs_finite is not None:
        assert np.isfinite(n[inputs_finite]).all(), f"{what}: non-finite output from finite input: {n}"


ACT_CASES = A.table_cases()  # (row, params): every row of the table, at its defaults and its cases


@pytest.mark.parametrize("prec,dt", PRECS)
@pytest.mark.parametrize("op,params", ACT_CASES, ids=[A.case_id(*c) for c in ACT_CASES])
def test_activation_host_matches_numpy(host, op, params, prec, dt):
    p = op.values(params)
    p0, p1 = (p + (0.0, 0.0))[:2]
    from_y = op.saves_output(p)
    name = op.name
    x = GRID.astype(dt)
    xd = _d(x)
    y_host = np.empty_like(xd)
    assert host.gg_act(name.encode(), 0, prec, _p(xd), None, _p(y_host), xd.size, p0, p1, 0) == 0
    y_np = A.fwd(op, x, p)
    assert y_np.dtype == dt
    assert_agree(y_host, y_np, dt, np.isfinite(xd), f"{name} fwd")

    g = np.linspace(-2.0, 2.0, x.size).astype(dt)
    saved = y_np if from_y else x
    gx_host = np.empty_like(xd)
    assert host.gg_act(name.encode(), 1, prec, _p(_d(g)), _p(_d(saved)), _p(gx_host), xd.size, p0, p1, int(from_y)) == 0
    gx_np = A.bwd(op, g, saved, p)
    assert_agree(gx_host, gx_np, dt, np.isfinite(xd), f"{name} bwd")


def _row_matrix(dt):
    rng = np.random.default_rng(1)
    rows = [rng.standard_normal(7), rng.standard_normal(7) * 30, [1e4, -1e4, 0, 1, 2, 3, 1e4 - 1],
            [-1e4] * 7, [88, -88, 87, 1e-30, 0, -0.0, 5], [np.inf, 1, 2, 3, 4, 5, 6], [-np.inf] * 7,
            [-np.inf, 0, 1, -np.inf, 2, 3, 4], [np.nan, 1, 2, 3, 4, 5, 6], [20, 20, 20, 20, 20, 20, 20]]
    return np.array(rows, dtype=np.float64).astype(dt)


@pytest.mark.parametrize("prec,dt", PRECS)
def test_row_reductions_host_match_numpy(host, prec, dt):
    x = _row_matrix(dt)
    rows, n = x.shape
    finite_rows = np.isfinite(x).all(axis=1)
    xd = _d(x)
    for kind, fwd in (("softmax", S.softmax_fwd), ("log_softmax", S.log_softmax_fwd)):
        out = np.empty_like(xd)
        assert host.gg_rows(f"{kind}_fwd".encode(), prec, _p(xd), None, None, _p(out), rows, n) == 0
        y = fwd(x)
        assert_agree(out, y, dt, np.repeat(finite_rows[:, None], n, 1), f"{kind} fwd")
        g = np.cos(np.arange(x.size, dtype=np.float64)).reshape(x.shape).astype(dt)
        gout = np.empty_like(xd)
        assert host.gg_rows(f"{kind}_bwd".encode(), prec, _p(_d(g)), _p(_d(y)), None, _p(gout), rows, n) == 0
        bwd = S.softmax_bwd if kind == "softmax" else S.log_softmax_bwd
        assert_agree(gout, bwd(g, y), dt, np.repeat(finite_rows[:, None], n, 1), f"{kind} bwd")
    lse_host = np.empty(rows)
    assert host.gg_rows(b"logsumexp_fwd", prec, _p(xd), None, None, _p(lse_host), rows, n) == 0
    lse = S.logsumexp_fwd(x)
    assert_agree(lse_host, lse, dt, finite_rows, "logsumexp fwd")
    assert lse[6] == -np.inf and lse[5] == np.inf and np.isnan(lse[8])  # limits as PyTorch
    g = np.linspace(-1, 1, rows).astype(dt)
    gout = np.empty_like(xd)
    assert host.gg_rows(b"logsumexp_bwd", prec, _p(xd), _p(_d(g)), _p(_d(lse)), _p(gout), rows, n) == 0
    assert_agree(gout, S.logsumexp_bwd(g, x, lse), dt, np.repeat(finite_rows[:, None], n, 1), "logsumexp bwd")


def _ce_inputs(dt, ncls=6):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, ncls)) * 3
    x[1] = [1e4, -1e4, 0, 5, 1e4 - 3, 2][:ncls]
    x[2] = -1e4
    x[3] = [88, -88, 1e-30, 0, 20, -20][:ncls]
    x[4] *= 1e3
    t = np.array([0, 1, 2, 5, -100, 3, 4, 2, 1], dtype=np.int64)
    return x.astype(dt), t


CE_OPTS = [dict(), dict(label_smoothing=0.1), dict(weight=True), dict(weight=True, label_smoothing=0.25),
           dict(ignore_index=2, label_smoothing=0.05)]


@pytest.mark.parametrize("prec,dt", PRECS)
@pytest.mark.parametrize("opts", CE_OPTS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "plain")
def test_cross_entropy_host_matches_numpy(host, prec, dt, opts):
    x, t = _ce_inputs(dt)
    rows, ncls = x.shape
    w = np.linspace(0.5, 2.0, ncls).astype(dt) if opts.get("weight") else None
    ig, eps = opts.get("ignore_index", -100), opts.get("label_smoothing", 0.0)
    t[t == -100] = ig
    loss_h, lse_h = np.empty(rows), np.empty(rows)
    wd = None if w is None else _d(w)
    assert host.gg_ce_fwd(prec, _p(_d(x)), _p(t), _p(wd), _p(loss_h), _p(lse_h), rows, ncls, ig, eps) == 0
    loss, lse = L.cross_entropy_fwd(x, t, weight=w, ignore_index=ig, label_smoothing=eps, reduction="none")
    assert loss.dtype == dt and lse.dtype == np.float64
    assert_agree(loss_h, loss, dt, np.ones(rows, bool), "ce loss")
    assert_agree(lse_h, lse, np.float64 if prec else dt, np.ones(rows, bool), "ce lse")
    g = np.linspace(0.5, 1.5, rows).astype(dt)
    gx_h = np.empty(x.shape)
    host.gg_ce_bwd(prec, _p(_d(x)), _p(t), _p(wd), _p(_d(lse)), _p(_d(g)), _p(gx_h), rows, ncls, ig, eps)
    gx = L.cross_entropy_bwd(g, x, t, lse, weight=w, ignore_index=ig, label_smoothing=eps, reduction="none")
    assert_agree(gx_h, gx, dt, np.ones(x.shape, bool), "ce grad", scaled=True)


@pytest.mark.parametrize("prec,dt", PRECS)
@pytest.mark.parametrize("eps,weighted", [(0.0, False), (0.2, True)])
def test_cross_entropy_prob_host_matches_numpy(host, prec, dt, eps, weighted):
    x, _ = _ce_inputs(dt)
    rows, ncls = x.shape
    q = np.random.default_rng(3).random((rows, ncls))
    q /= q.sum(axis=1, keepdims=True)
    q = q.astype(dt)
    w = np.linspace(0.5, 2.0, ncls).astype(dt) if weighted else None
    wd = None if w is None else _d(w)
    loss_h, lse_h = np.empty(rows), np.empty(rows)
    host.gg_ce_prob_fwd(prec, _p(_d(x)), _p(_d(q)), _p(wd), _p(loss_h), _p(lse_h), rows, ncls, eps)
    loss, lse = L.cross_entropy_fwd(x, q, weight=w, label_smoothing=eps, reduction="none")
    assert_agree(loss_h, loss, dt, np.ones(rows, bool), "ce prob loss")
    assert_agree(lse_h, lse, np.float64 if prec else dt, np.ones(rows, bool), "ce prob lse")
    g = np.linspace(0.5, 1.5, rows).astype(dt)
    gx_h = np.empty(x.shape)
    host.gg_ce_prob_bwd(prec, _p(_d(x)), _p(_d(q)), _p(wd), _p(_d(lse)), _p(_d(g)), _p(gx_h), rows, ncls, eps)
    assert_agree(gx_h, L.cross_entropy_bwd(g, x, q, lse, weight=w, label_smoothing=eps, reduction="none"), dt,
                 np.ones(x.shape, bool), "ce prob grad", scaled=True)


def test_cross_entropy_host_flags_bad_target(host):
    x = np.zeros((3, 4))
    t = np.array([0, 7, -100], dtype=np.int64)
    loss, lse = np.empty(3), np.empty(3)
    assert host.gg_ce_fwd(1, _p(x), _p(t), None, _p(loss), _p(lse), 3, 4, -100, 0.0) == 1
    assert np.isnan(loss[1]) and loss[2] == 0 and loss[0] == pytest.approx(np.log(4))


POINTWISE = [("mse_loss", 0.0, L.mse_loss_fwd, L.mse_loss_bwd, {}), ("l1_loss", 0.0, L.l1_loss_fwd, L.l1_loss_bwd, {}),
             ("huber_loss", 1.5, L.huber_loss_fwd, L.huber_loss_bwd, {"delta": 1.5}),
             ("smooth_l1_loss", 0.5, L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.5}),
             ("smooth_l1_loss", 0.0, L.smooth_l1_loss_fwd, L.smooth_l1_loss_bwd, {"beta": 0.0})]


@pytest.mark.parametrize("prec,dt", PRECS)
@pytest.mark.parametrize("name,p0,fwd,bwd,kw", POINTWISE, ids=[f"{c[0]}-{c[1]}" for c in POINTWISE])
def test_pointwise_losses_host_match_numpy(host, prec, dt, name, p0, fwd, bwd, kw):
    x = GRID.astype(dt)
    t = np.roll(GRID, 3).astype(dt)
    t[np.arange(t.size) % 4 == 0] = x[np.arange(t.size) % 4 == 0]  # some exact zeros of d
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(_d(x) - _d(t))
    for b, ref in ((0, fwd(x, t, reduction="none", **kw)), (1, bwd(np.ones_like(x), x, t, reduction="none", **kw))):
        out = np.empty(x.size)
        assert host.gg_pointwise(name.encode(), b, prec, _p(_d(x)), _p(_d(t)), _p(out), x.size, p0) == 0
        assert_agree(out, ref, dt, finite, f"{name} {'bwd' if b else 'fwd'}")


@pytest.mark.parametrize("prec,dt", PRECS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits_host_matches_numpy(host, prec, dt, weighted):
    x = GRID.astype(dt)
    t = (np.arange(x.size) % 3 / 2).astype(dt)  # 0, 0.5, 1
    w = np.linspace(0.1, 2, x.size).astype(dt) if weighted else None
    pw = np.linspace(3, 0.5, x.size).astype(dt) if weighted else None
    finite = np.isfinite(_d(x))
    for b, ref in ((0, L.bce_with_logits_fwd(x, t, w, pw, reduction="none")),
                   (1, L.bce_with_logits_bwd(np.ones_like(x), x, t, w, pw, reduction="none"))):
        out = np.empty(x.size)
        host.gg_bce(b, prec, _p(_d(x)), _p(_d(t)), None if w is None else _p(_d(w)), None if pw is None else _p(_d(pw)),
                    _p(out), x.size)
        # NOTE: bwd is (1 - t) - lw * sigmoid(-x), a difference of O(1) terms: absolute tolerance
        assert_agree(out, ref, dt, finite, f"bce {'bwd' if b else 'fwd'}", scaled=bool(b))
