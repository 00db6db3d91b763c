"""The CUDA emulator itself (tests/cudaemu): collective semantics, the errors it reports for
misused collectives, sanitizer catches, float16 conversions and the CuPy stand-in's argument
checks, on the small kernels of tests/cudaemu/selftest.cu. (The kernels of kernels/*.cu are
tested in test_kernels_emulated.py.)

``case_*`` functions run inside the emulator's worker process; ``test_*`` drive them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from cudaemu import harness  # noqa: E402

SELFTEST = TESTS / "cudaemu" / "selftest.cu"
NAMES = ["shfl", "votes", "block_sum", "atomic_sum", "misuse", "half_conv", "bf16_conv", "copy4", "oob", "scalars",
         "dyn_sum"]


@pytest.fixture(scope="module")
def emu():
    with harness.session(__name__, extra_builds=[(SELFTEST.read_text(), ("--std=c++17",), NAMES)]) as e:
        yield e


def _module():
    cp = harness.cupy()
    return cp, cp.RawModule(code=SELFTEST.read_text(), options=("--std=c++17",), name_expressions=NAMES)


def _run(name, grid, block, args, **kw):
    cp, mod = _module()
    mod.get_function(name)(grid, block, args, **kw)


# -- collectives compute what CUDA's do -------------------------------------------------------------

def _shfl_ref(v, kind, p, w):
    out = np.empty_like(v)
    for t in range(v.size):
        lane, seg = t % 32, (t % 32) & ~(w - 1)
        if kind == 0:
            src = seg + (p & (w - 1))
        elif kind == 1:
            src = lane - p if lane - p >= seg else lane
        elif kind == 2:
            src = lane + p if lane + p < seg + w else lane
        else:
            src = lane ^ p if (lane ^ p) < seg + w else lane
        out[t] = v[t - lane + src]
    return out


def case_shuffles():
    cp, mod = _module()
    k = mod.get_function("shfl")
    v = np.arange(64, dtype=np.int32) * 7 + 3
    for kind in range(4):
        for p in (0, 1, 3, 5, 16, 31):
            for w in (32, 16, 8, 2):
                out = cp.empty(64, np.int32)
                k((1,), (64,), (cp.asarray(v), out, np.int32(kind), np.int32(p), np.int32(w)))
                np.testing.assert_array_equal(out.get(), _shfl_ref(v, kind, p, w), err_msg=f"kind {kind} p {p} w {w}")


def case_votes():
    cp, mod = _module()
    pred = (np.arange(96) % 5 == 0).astype(np.int32)
    pred[64:] = 1
    out, out2 = cp.empty(3 * 96, np.uint32), cp.empty(3 * 96, np.int32)
    mod.get_function("votes")((1,), (96,), (cp.asarray(pred), out, out2))
    o = out.get().reshape(96, 3)
    for w in range(3):
        bits = sum(int(pred[32 * w + i]) << i for i in range(32))
        np.testing.assert_array_equal(o[32 * w:32 * w + 32], [[bits, bits != 0, bits == 0xFFFFFFFF]] * 32)
    np.testing.assert_array_equal(out2.get().reshape(96, 3), [[pred.sum(), 0, 1]] * 96)


def case_atomics_and_scalars():
    cp, mod = _module()
    x = np.random.default_rng(0).standard_normal(5000).astype(np.float32)
    out = cp.zeros(1, np.float32)
    mod.get_function("atomic_sum")((3,), (128,), (cp.asarray(x), out, np.int64(x.size)))
    assert abs(float(out.get()[0]) - float(x.astype(np.float64).sum())) < 1e-3
    xd = np.linspace(-1, 1, 300)
    y = cp.empty(300, np.float64)
    mod.get_function("scalars")((2,), (64,), (cp.asarray(xd), y, np.int64(300), np.int32(3), np.float32(0.5)))
    np.testing.assert_allclose(y.get(), xd * 3 + 0.5)


# -- schedules expose order-dependent results -------------------------------------------------------

def case_schedules_expose_races():
    from cudaemu import standin
    cp, mod = _module()
    k = mod.get_function("block_sum")
    x = np.random.default_rng(1).random(4 * 256).astype(np.float32)
    want = x.reshape(4, 256).sum(axis=1)
    results = {}
    for sync in (1, 0):
        for policy, seed in (("inorder", 0), ("lifo", 0), ("random", 5)):
            out = cp.empty(4, np.float32)
            with standin.schedule(policy, seed):
                k((4,), (256,), (cp.asarray(x), out, np.int32(sync)))
            results[sync, policy] = out.get()
    for policy in ("inorder", "lifo", "random"):  # with the barrier: right under every schedule
        np.testing.assert_allclose(results[1, policy], want, rtol=1e-5)
    # without it thread 0 reads slots the others have not written yet under in-order scheduling
    # (garbage: shared memory is refilled before each block), and right ones when it runs last
    assert not np.allclose(results[0, "inorder"], want, rtol=1e-5)
    np.testing.assert_allclose(results[0, "lifo"], want, rtol=1e-5)


# -- misuse is reported, naming kernel, block and thread --------------------------------------------

MISUSE = {0: (32, r"barrier divergence: thread \(0,0,0\) waits at __syncthreads\(\) \w+\.cu:\d+ while thread \(16,0,0\) waits at __syncthreads\(\) \w+\.cu:\d+"),
          1: (32, r"barrier divergence: thread \(3,0,0\) exited while thread \(0,0,0\) \(and 30 more\) waits at __syncthreads"),
          2: (32, r"(thread \(5,0,0\) exited while thread \(\d+,0,0\) waits for it in __shfl_xor_sync)|(names lane 5 .* which has exited)"),
          3: (32, r"deadlock: every live thread waits; thread \(0,0,0\) in __shfl_xor_sync\(mask 0xffffffff\) at \w+\.cu:\d+ \(lanes not there: 1 2 3"),
          4: (32, r"warp collectives do not match: thread \(\d+,0,0\) is in __shfl_(xor|down)_sync.* while thread \(\d+,0,0\) is in __shfl_(xor|down)_sync"),
          5: (32, r"(thread \(0,0,0\): __shfl_xor_sync\(mask 0xfffffffe\) at \w+\.cu:\d+ does not name the calling lane 0)"
                  r"|(reads lane 0, which is not in the mask)"),
          6: (16, r"names lane 16, which does not exist \(the block has 16 threads\)"),
          7: (32, r"thread \(7,0,0\): __trap\(\) at \w+\.cu:\d+")}


def case_misuse(which, policy):
    import re

    from cudaemu import standin
    cp, mod = _module()
    nthreads, pattern = MISUSE[which]
    out = cp.empty(32, np.int32)
    try:
        with standin.schedule(policy, 3):
            mod.get_function("misuse")((2,), (nthreads,), (out, np.int32(which)))
    except standin.EmulatorError as e:
        msg = str(e)
        assert msg.startswith("misuse block ("), msg
        assert re.search(pattern, msg), f"unexpected message: {msg}"
        return
    raise AssertionError("the misuse was not reported")


@pytest.mark.parametrize("policy", ["inorder", "lifo", "random"])
@pytest.mark.parametrize("which", sorted(MISUSE))
def test_misused_collectives_are_reported(emu, which, policy):
    emu.check("case_misuse", which=which, policy=policy)


# -- the sanitizers catch out-of-bounds and misaligned accesses -------------------------------------

def case_oob(which):
    cp, mod = _module()
    out = cp.empty(64, np.float32)
    mod.get_function("oob")((3 if which == 0 else 2,), (32,), (out, np.int64(64), np.int32(which)))
    if which == 2:  # shared memory is uninitialised: its garbage differs from block to block
        o = out.get()
        assert not np.array_equal(o[:32].view(np.uint32), o[32:].view(np.uint32)), o


def case_copy4(offset):
    cp, mod = _module()
    x = cp.asarray(np.arange(33, dtype=np.float32))
    out = cp.empty(32, np.float32)
    mod.get_function("copy4")((1,), (32,), (x[offset:offset + 32], out, np.int64(8)))
    np.testing.assert_array_equal(out.get(), np.arange(offset, offset + 32, dtype=np.float32))


@pytest.mark.parametrize("which,report", [(0, "AddressSanitizer: heap-buffer-overflow"),
                                          (1, "runtime error: index 32 out of bounds for type 'float [32]'")])
def test_out_of_bounds_accesses_abort_with_a_report(emu, which, report):
    # NOTE: a constant-size shared array indexed out of bounds is UBSan's catch (-fsanitize=bounds)
    # before it is ASan's (global-buffer-overflow): either aborts the worker with a report.
    res = emu.run("case_oob", which=which)
    assert res.get("crashed") and report in res["error"], res["error"][-3000:]
    assert "oob" in res["error"], "the report names the kernel"


def test_uninitialised_shared_memory_reads_garbage(emu):
    emu.check("case_oob", which=2)


def test_misaligned_vector_load_aborts(emu):
    emu.check("case_copy4", offset=0)
    res = emu.run("case_copy4", offset=1)
    assert res.get("crashed") and "misaligned address" in res["error"] and "float4" in res["error"], res["error"][-3000:]


def test_shuffles(emu):
    emu.check("case_shuffles")


def test_votes_and_counting_barriers(emu):
    emu.check("case_votes")


def test_atomics_and_scalar_arguments(emu):
    emu.check("case_atomics_and_scalars")


def test_schedules_expose_races(emu):
    emu.check("case_schedules_expose_races")


# -- float16 conversions are bit-exact -------------------------------------------------------------

def case_half_conversions():
    cp, mod = _module()
    bits = np.arange(1 << 16, dtype=np.uint16)
    rng = np.random.default_rng(0)
    f = np.concatenate([rng.standard_normal(20000).astype(np.float32) * 10.0 ** rng.integers(-9, 6, 20000),
                        np.float32([0, -0.0, 65504, 65519.99, 65520, 65536, 1e30, np.inf, -np.inf, np.nan,
                                    2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0001, 2.0 ** -26, 6.1e-5, 1 + 2.0 ** -11,
                                    1 + 3 * 2.0 ** -11])])
    # every float halfway between two adjacent halves (and its neighbours): ties go to even
    mids = ((bits[:0x7bff].view(np.float16).astype(np.float64) + bits[1:0x7c00].view(np.float16).astype(np.float64)) / 2)
    mids = np.concatenate([mids, -mids]).astype(np.float32)
    f = np.concatenate([f.astype(np.float32), mids, np.nextafter(mids, np.float32(np.inf)),
                        np.nextafter(mids, np.float32(-np.inf))])
    n = max(bits.size, f.size)
    bits_in = np.resize(bits, n)
    f_in = np.resize(f, n)
    out, back = cp.empty(n, np.float32), cp.empty(n, np.uint16)
    mod.get_function("half_conv")((64,), (256,), (cp.asarray(bits_in), out, cp.asarray(f_in), back, np.int64(n)))
    want = bits_in.view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(out.get().view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
    assert np.isnan(out.get()[np.isnan(want)]).all()
    h = back.get()
    ref = f_in.astype(np.float16).view(np.uint16)
    nan = np.isnan(f_in)
    np.testing.assert_array_equal(h[~nan], ref[~nan])
    assert (h[nan] == 0x7FFF).all()  # CUDA's canonical NaN


def test_half_conversions_are_bit_exact(emu):
    emu.check("case_half_conversions")


def case_bf16_conversions():
    import ml_dtypes  # noqa: PLC0415
    bf = np.dtype(ml_dtypes.bfloat16)
    cp, mod = _module()
    bits = np.arange(1 << 16, dtype=np.uint16)
    vals = bits.view(bf).astype(np.float64)
    fin = np.isfinite(vals)
    # every tie between two adjacent finite bfloat16 values of one sign (subnormals included), and its
    # float32 neighbours; for doubles also ties +-2^-40 relative (a float32 first rounding would land on
    # the tie: the double rounding a correct conversion must avoid)
    pos = vals[:0x7f81]
    mids = (pos[:-1] + pos[1:]) / 2
    mids = np.concatenate([mids, -mids])
    rng = np.random.default_rng(0)
    rand = rng.standard_normal(30000) * 10.0 ** rng.integers(-45, 39, 30000)
    edge = np.array([0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 3.3895e38, 3.3961e38, 3.3962e38, 3.4028e38, 1e39,
                     -1e39, 2.0 ** -133, 2.0 ** -134, 2.0 ** -134 * 1.0001, 2.0 ** -135, 1e-46, 1e-300, 1.17e-38])
    f = np.concatenate([rand, edge, mids]).astype(np.float32)
    f = np.concatenate([f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))])
    with np.errstate(over="ignore"):
        d = np.concatenate([rand, edge, mids, mids * (1 + 2.0 ** -40), mids * (1 - 2.0 ** -40),
                            np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    n = max(bits.size, f.size, d.size)
    bits_in, f_in, d_in = np.resize(bits, n), np.resize(f, n), np.resize(d, n)
    out, back, dback = cp.empty(n, np.float32), cp.empty(n, np.uint16), cp.empty(n, np.uint16)
    mod.get_function("bf16_conv")((64,), (256,), (cp.asarray(bits_in), out, cp.asarray(f_in), back, cp.asarray(d_in),
                                                 dback, np.int64(n)))
    want = bits_in.view(bf).astype(np.float32)
    nan = np.isnan(want)
    np.testing.assert_array_equal(out.get().view(np.uint32)[~nan], want.view(np.uint32)[~nan])
    assert np.isnan(out.get()[nan]).all()
    for got, x in ((back.get(), f_in), (dback.get(), d_in)):
        nan = np.isnan(x)
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(got[~nan], x[~nan].astype(bf).view(np.uint16))  # ml_dtypes: one RNE rounding
        assert (got[nan] == 0x7FFF).all()  # CUDA's canonical NaN
    assert fin.sum() == 65536 - 2 - 2 * 127


def test_bf16_conversions_are_bit_exact(emu):
    pytest.importorskip("ml_dtypes")
    emu.check("case_bf16_conversions")


# -- the CuPy stand-in packs arguments as CuPy does, and refuses what would pass the wrong bytes ---

ARG_CASES = {
    "int32 for long long": (lambda cp, x, y: (x, y, np.int32(4), np.int32(1), np.float32(0)), r"argument 2 \(n: long long\): got a int32 value; CuPy passes 4 bytes"),
    "python int for int": (lambda cp, x, y: (x, y, np.int64(4), 1, np.float32(0)), r"argument 3 \(k: int\): got a Python int; CuPy passes 8 bytes of int64"),
    "python float for float": (lambda cp, x, y: (x, y, np.int64(4), np.int32(1), 0.5), r"argument 4 \(f: float\): got a Python float; CuPy passes 8 bytes of float64"),
    "float32 array for double*": (lambda cp, x, y: (x.astype(np.float32), y, np.int64(4), np.int32(1), np.float32(0)), r"argument 0 \(x: const double\*\): got a float32 array"),
    "array for a value": (lambda cp, x, y: (x, y, x, np.int32(1), np.float32(0)), r"argument 2 \(n: long long\): got an array"),
    "scalar for a pointer": (lambda cp, x, y: (np.float64(1.0), y, np.int64(4), np.int32(1), np.float32(0)), r"argument 0 \(x: const double\*\): got a float64 value; the kernel takes a pointer"),
    "numpy array": (lambda cp, x, y: (x, y, np.arange(3), np.int32(1), np.float32(0)), r"a NumPy array of shape \(3,\)"),
    "None": (lambda cp, x, y: (None, y, np.int64(4), np.int32(1), np.float32(0)), r"None \(CuPy versions differ"),
    "too few": (lambda cp, x, y: (x, y, np.int64(4)), r"takes 5 arguments, got 3"),
    "restrict overlap": (lambda cp, x, y: (y[1:], y[:-1], np.int64(3), np.int32(1), np.float32(0)), r"arguments 0 \(x\) and 1 \(y\) overlap, one is written and one is __restrict__"),
    "non-contiguous": (lambda cp, x, y: (cp.asarray(np.arange(8.0))[::2], y, np.int64(4), np.int32(1), np.float32(0)), r"not C-contiguous"),
}


def case_argument_checks(name):
    import re

    from cudaemu import standin
    cp, mod = _module()
    k = mod.get_function("scalars")
    x, y = cp.asarray(np.arange(4.0)), cp.empty(4, np.float64)
    try:
        k((1,), (32,), ARG_CASES[name][0](cp, x, y))
    except (standin.ArgumentError, TypeError) as e:
        assert re.search(ARG_CASES[name][1], str(e)), str(e)
        return
    raise AssertionError(f"{name}: not refused")


@pytest.mark.parametrize("name", sorted(ARG_CASES))
def test_kernel_arguments_are_checked(emu, name):
    emu.check("case_argument_checks", name=name)


def case_launch_configuration_is_checked():
    from cudaemu import standin
    cp, mod = _module()
    k = mod.get_function("scalars")
    x, y = cp.asarray(np.arange(4.0)), cp.empty(4, np.float64)
    args = (x, y, np.int64(4), np.int32(1), np.float32(0))
    for grid, block, msg in (((0,), (32,), "zero dimension"), ((1,), (2048,), "at most 1024 threads"),
                             ((1,), (32, 64), "at most 1024 threads"), ((1, 70000), (32,), "y and z <= 65535"),
                             ((1,), (1, 1, 65), "z <= 64")):
        try:
            k(grid, block, args)
        except standin.EmulatorError as e:
            assert msg in str(e), str(e)
        else:
            raise AssertionError(f"grid {grid} block {block} accepted")
    for bad in ([1], 1):
        try:
            k(bad, (32,), args)
        except TypeError:
            pass
        else:
            raise AssertionError(f"grid {bad!r} accepted (CuPy takes tuples only)")


def test_launch_configuration_is_checked(emu):
    emu.check("case_launch_configuration_is_checked")


def case_device_arrays_refuse_implicit_conversion():
    cp = harness.cupy()
    a = cp.asarray(np.arange(3.0))
    for f in (np.asarray, lambda v: np.add(v, np.ones(3)), lambda v: v + np.ones(3), lambda v: np.ones(3) * v):
        try:
            f(a)
        except TypeError:
            continue
        raise AssertionError("a device array was converted to NumPy implicitly")
    assert isinstance(np.exp(a), cp.ndarray) and isinstance(a.sum(), cp.ndarray) and a.sum().shape == ()
    np.testing.assert_array_equal(cp.asnumpy(a * 2 + 1), [1.0, 3.0, 5.0])
    assert a.astype(np.float64, copy=False) is a and cp.ascontiguousarray(a) is a
    try:
        cp.ascontiguousarray(np.arange(3))
    except TypeError:
        pass
    else:
        raise AssertionError("cupy.ascontiguousarray took a NumPy array")
    from gpugrad import backend
    assert backend.xp_of(a) is cp and backend.device_of(a) == "cuda:0"
    np.testing.assert_array_equal(backend.to_device(a, "cpu"), [0.0, 1.0, 2.0])


def test_device_arrays_refuse_implicit_conversion(emu):
    emu.check("case_device_arrays_refuse_implicit_conversion")


def case_dynamic_shared(past):
    from cudaemu import standin
    cp, mod = _module()
    x = np.random.default_rng(2).random(3 * 128).astype(np.float32)
    for policy in ("inorder", "lifo", "random"):
        out = cp.empty(3, np.float32)
        with standin.schedule(policy, 1):
            mod.get_function("dyn_sum")((3,), (128,), (cp.asarray(x), out, np.int32(past)), shared_mem=128 * 4)
        np.testing.assert_allclose(out.get(), x.reshape(3, 128).sum(axis=1), rtol=1e-5)


def test_dynamic_shared_memory(emu):
    emu.check("case_dynamic_shared", past=0)
    res = emu.run("case_dynamic_shared", past=1)  # one float beyond shared_mem bytes
    assert res.get("crashed") and "AddressSanitizer: heap-buffer-overflow" in res["error"], res["error"][-3000:]
    assert "dyn_sum block (" in res["error"], "the report names the emulated kernel and thread"


def test_compile_errors_are_reported(emu):
    emu.check("case_compile_error")


def case_compile_error():
    cp = harness.cupy()
    mod = cp.RawModule(code="__global__ void k(float* x) { x[0] = undefined_name; }", name_expressions=["k"])
    try:
        mod.get_function("k")
    except cp.cuda.compiler.CompileException as e:
        assert "undefined_name" in str(e), str(e)
    else:
        raise AssertionError("no CompileException")
    mod = cp.RawModule(code="extern __shared__ float s[];\n__global__ void k(float* x) { x[0] = s[0]; }",
                       name_expressions=["k"])
    try:  # NOTE: dynamic shared memory at namespace scope is not emulated (a compile error, not a wrong run)
        mod.get_function("k")
    except cp.cuda.compiler.CompileException as e:
        assert "statement-expressions are not allowed outside functions" in str(e), str(e)
    else:
        raise AssertionError("namespace-scope dynamic shared memory did not raise")
