"""gg.save / gg.load: round trips, atomic writes, and clear errors for files that are not checkpoints."""
import collections
import io
import json
import math
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpugrad import backend
from gpugrad.serialization import MANIFEST, CheckpointError, load, save
from gpugrad.tensor import Tensor

NOT_CKPT = "is not a valid gpugrad checkpoint"


def same(a, b):
    """Exact equality of saved/loaded structures, types included."""
    if isinstance(a, Tensor):
        return (type(b) is Tensor and a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
                and np.array_equal(a._data, b._data, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, np.ndarray):
        return (type(b) is np.ndarray and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and bool(a == b or (np.isnan(a) and np.isnan(b)))
    return a == b


def roundtrip(obj, tmp_path, **kw):
    p = tmp_path / "ckpt.gg"
    save(obj, p)
    return load(p, **kw)


def _state():
    w = Tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    b = Tensor(np.zeros(2, np.float32), requires_grad=True)
    return {
        "model": collections.OrderedDict([("fc.weight", w), ("fc.bias", b), ("bn.num_batches", Tensor(np.array(7)))]),
        "optimizer": {
            "state": {0: {"step": 12, "exp_avg": np.full((2, 3), 0.5, np.float32)}, 1: {"step": 12}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False,
                              "params": [0, 1], "foreach": None, "name": "héllo ✓"}],
        },
        "epoch": 3, "scalar": np.float32(0.25), "big": 2 ** 70, "neg0": -0.0, "inf": float("inf"),
        "nan": float("nan"), "c": 1 - 2j, "empty": {}, "nested": [[], (), [(1,)]],
    }


# ------------------------------------------------------------------------------------------ round trips

def test_round_trip_nested_state(tmp_path):
    obj = _state()
    out = roundtrip(obj, tmp_path)
    assert same(obj, out)
    assert type(out["model"]) is collections.OrderedDict and type(out["optimizer"]) is dict
    assert list(out["optimizer"]["state"]) == [0, 1]  # int keys stay ints
    assert out["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)  # tuple stays tuple
    assert isinstance(out["optimizer"]["param_groups"][0]["params"], list)
    assert out["model"]["fc.weight"].requires_grad and not out["model"]["bn.num_batches"].requires_grad
    assert out["model"]["fc.weight"].grad is None and str(out["model"]["fc.weight"].device) == "cpu"
    assert out["big"] == 2 ** 70 and type(out["scalar"]) is np.float32


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64", "int32", "int8", "uint8", "bool",
                                   "complex64"])
def test_dtypes_round_trip(tmp_path, dtype):
    a = (np.arange(-3, 9).reshape(3, 4) % 5 - 1).astype(dtype)
    out = roundtrip({"t": Tensor(a), "a": a, "s": a[1, 2]}, tmp_path)
    assert out["t"].dtype == np.dtype(dtype) and np.array_equal(out["t"]._data, a)
    assert out["a"].dtype == np.dtype(dtype) and np.array_equal(out["a"], a)
    assert out["s"].dtype == np.dtype(dtype) and out["s"] == a[1, 2]


def test_odd_layouts_and_shapes(tmp_path):
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    obj = [Tensor(base.T), np.asfortranarray(base), base[:, ::2], Tensor(np.array(5.5)), np.zeros((0, 3)),
           Tensor(np.ones((2, 0, 1), np.float16))]
    out = roundtrip(obj, tmp_path)
    assert same(obj, out)
    assert all((o._data if isinstance(o, Tensor) else o).flags.writeable for o in out)  # optimizers update in place
    out[0]._data += 1
    assert out[0]._data[0, 0] == 1


def test_shared_objects_stay_shared_and_bytes_are_deterministic(tmp_path):
    t = Tensor(np.ones(3))
    out = roundtrip({"a": t, "b": [t], "c": Tensor(np.ones(3))}, tmp_path)
    assert out["a"] is out["b"][0] and out["a"] is not out["c"]
    with zipfile.ZipFile(tmp_path / "ckpt.gg") as zf:
        assert zf.namelist() == [MANIFEST, "arrays/0.npy", "arrays/1.npy"]
        m = json.loads(zf.read(MANIFEST))
        assert (m["format"], m["version"]) == ("gpugrad.checkpoint", 1)
    p2 = tmp_path / "again.gg"
    save({"a": t, "b": [t], "c": Tensor(np.ones(3))}, p2)
    assert p2.read_bytes() == (tmp_path / "ckpt.gg").read_bytes()


def test_file_objects_and_map_location(tmp_path):
    buf = io.BytesIO()
    save({"w": Tensor(np.arange(3.0))}, buf)
    for loc in (None, "cpu", backend.device("cpu"), {"cuda:0": "cpu"}):
        buf.seek(0)
        w = load(buf, map_location=loc)["w"]
        assert str(w.device) == "cpu" and w._data.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown device"):
        load(buf, map_location="tpu")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.gg")


@pytest.mark.skipif(backend.cuda.is_available(), reason="checks the error without a GPU")
def test_map_location_cuda_without_gpu_says_why(tmp_path):
    save({"w": Tensor(np.ones(2))}, tmp_path / "c.gg")
    with pytest.raises(backend.CudaUnavailableError):
        load(tmp_path / "c.gg", map_location="cuda")


@pytest.mark.skipif(not backend.cuda.is_available(), reason="needs CuPy and a CUDA GPU")
def test_cuda_tensors_come_back_on_cpu_unless_mapped(tmp_path):
    cp = backend.cupy_module()
    t = Tensor(cp.arange(4, dtype=cp.float32), requires_grad=True)
    save({"t": t}, tmp_path / "g.gg")
    cpu = load(tmp_path / "g.gg")["t"]
    assert str(cpu.device) == "cpu" and cpu._data.tolist() == [0, 1, 2, 3] and cpu.requires_grad
    gpu = load(tmp_path / "g.gg", map_location="cuda")["t"]
    assert str(gpu.device) == "cuda:0" and gpu._data.get().tolist() == [0, 1, 2, 3]
    assert str(load(tmp_path / "g.gg", map_location={"cuda:0": "cuda:0"})["t"].device) == "cuda:0"


leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 80, 2 ** 80), st.floats(allow_nan=True), st.text(max_size=8),
    st.builds(lambda v, dt: Tensor(np.asarray(v).astype(dt), requires_grad=dt.startswith("f") and v[0] > 0),
              st.lists(st.integers(-100, 100), min_size=1, max_size=5), st.sampled_from(["float16", "float32", "int64"])),
    st.builds(lambda v: np.asarray(v, dtype=np.float64), st.lists(st.floats(allow_nan=False), max_size=4)),
)
trees = st.recursive(leaves, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.lists(kids, max_size=3).map(tuple),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-5, 5)), kids, max_size=3)), max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(trees)
def test_random_structures_round_trip(obj):
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    assert same(obj, load(buf))


def test_public_names():
    import gpugrad as gg
    from gpugrad import serialization
    assert gg.save is serialization.save and gg.load is serialization.load


def test_optimizer_state_dict_round_trip(tmp_path):
    import gpugrad as gg
    p = Tensor(np.array([1.0, -2.0, 3.0], np.float32), requires_grad=True)
    opt = gg.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    save(opt.state_dict(), tmp_path / "o.gg")
    q = Tensor(p._data.copy(), requires_grad=True)
    opt2 = gg.optim.Adam([q], lr=0.5)
    opt2.load_state_dict(load(tmp_path / "o.gg"))
    a, b = opt.state_dict(), opt2.state_dict()
    assert b["param_groups"][0]["lr"] == 0.1 and b["param_groups"][0]["betas"] == (0.9, 0.999)
    assert b["state"][0]["step"] == a["state"][0]["step"] == 1
    assert np.array_equal(b["state"][0]["exp_avg"]._data, a["state"][0]["exp_avg"]._data)
    assert np.allclose(b["state"][0]["exp_avg"]._data, [0.2, -0.4, 0.6])


def test_module_state_dict_round_trip(tmp_path):
    from gpugrad import nn
    m = nn.Linear(3, 2)
    save(m.state_dict(), tmp_path / "m.gg")
    m2 = nn.Linear(3, 2)
    m2.load_state_dict(load(tmp_path / "m.gg"))
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert list(sd) == list(sd2) == ["weight", "bias"]
    for k in sd:
        assert np.array_equal(sd[k]._data, sd2[k]._data)


# ------------------------------------------------------------------------------------------ atomic writes

class _Unsavable:
    def state_dict(self):
        return {}


@pytest.mark.parametrize("bad,err,msg", [
    ({"ok": 1, "m": _Unsavable()}, TypeError, r"cannot save the _Unsavable at obj\['m'\] \(save module.state_dict"),
    ({"a": np.array([object()])}, TypeError, "dtype object"),
    ({("tuple", "key"): 1}, TypeError, "keys must be strings or ints"),
    ({True: 1}, TypeError, "keys must be strings or ints"),
    ({1.5: 1}, TypeError, "keys must be strings or ints"),
    ({"s": {1, 2}}, TypeError, "cannot save the set"),
])
def test_failed_save_leaves_old_file_intact(tmp_path, bad, err, msg):
    p = tmp_path / "keep.gg"
    save({"v": Tensor(np.arange(4.0))}, p)
    before = p.read_bytes()
    with pytest.raises(err, match=msg):
        save(bad, p)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["keep.gg"]
    assert load(p)["v"]._data.tolist() == [0, 1, 2, 3]


def test_cycle_is_refused(tmp_path):
    a = []
    a.append(a)
    with pytest.raises(ValueError, match="reference cycle"):
        save(a, tmp_path / "c.gg")
    assert os.listdir(tmp_path) == []


def test_crash_in_the_middle_of_a_write_leaves_old_file(tmp_path, monkeypatch):
    p = tmp_path / "keep.gg"
    save({"v": 1}, p)
    before = p.read_bytes()
    real = np.lib.format.write_array
    calls = []

    def flaky(fp, arr, **kw):
        calls.append(1)
        if len(calls) == 2:
            fp.write(b"partial")
            raise OSError("disk full")
        return real(fp, arr, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", flaky)
    with pytest.raises(OSError, match="disk full"):
        save([np.ones(100), np.ones(100)], p)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["keep.gg"]


def test_save_over_a_folder_fails_cleanly(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError):
        save({"v": 1}, tmp_path / "d")
    assert sorted(os.listdir(tmp_path)) == ["d"]


# ------------------------------------------------------------------------------------------ bad files

def _write(tmp_path, data, name="f.gg"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _npz_bytes():
    buf = io.BytesIO()
    np.savez(buf, w=np.ones(3))
    return buf.getvalue()


def _zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in entries.items():
            zf.writestr(k, v)
    return buf.getvalue()


@pytest.mark.parametrize("data,msg", [
    (b"", "the file is empty"),
    (pickle.dumps({"w": [1.0]}, protocol=2), "Python pickle"),
    (pickle.dumps({"w": [1.0]}, protocol=5), "never unpickles"),
    (bytes(range(256)) * 4, "not a zip archive"),
    (b"\x93NUMPY\x01\x00" + bytes(100), "single NumPy .npy"),
    (b"\x1f\x8b\x08" + bytes(20), "gzip file"),
    (_npz_bytes(), "NumPy .npz archive"),
    (_zip_bytes({"archive/data.pkl": b"\x80\x02}q\x00.", "archive/version": b"3"}), "PyTorch checkpoint"),
    (_zip_bytes({}), "no 'gpugrad-checkpoint.json' manifest"),
])
def test_foreign_files_are_refused(tmp_path, data, msg):
    p = _write(tmp_path, data)
    with pytest.raises(CheckpointError, match=msg) as e:
        load(p)
    assert NOT_CKPT in str(e.value) and str(p) in str(e.value)
    assert isinstance(e.value, ValueError)


def test_every_truncation_is_refused(tmp_path):
    save({"w": Tensor(np.arange(20.0)), "opt": {"step": 1}}, tmp_path / "c.gg")
    full = (tmp_path / "c.gg").read_bytes()
    cuts = sorted(set(range(0, len(full), 7)) | {1, 3, 4, len(full) - 1, len(full) - 22})
    for n in cuts:
        p = _write(tmp_path, full[:n], "cut.gg")
        with pytest.raises(CheckpointError, match=NOT_CKPT):
            load(p)


def test_flipped_data_byte_fails_the_crc(tmp_path):
    save({"w": Tensor(np.arange(64.0))}, tmp_path / "c.gg")
    data = bytearray((tmp_path / "c.gg").read_bytes())
    i = data.index(np.arange(64.0).tobytes()[8:16])  # somewhere inside the array bytes
    data[i] ^= 0x40
    with pytest.raises(CheckpointError, match="truncated or corrupt.*CRC"):
        load(_write(tmp_path, bytes(data)))


def _manifest_zip(manifest, arrays=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(MANIFEST, manifest if isinstance(manifest, (str, bytes)) else json.dumps(manifest))
        for name, a in arrays:
            f = io.BytesIO()
            np.save(f, a)
            zf.writestr(name, f.getvalue())
    return buf.getvalue()


ARR = [{"name": "arrays/0.npy", "dtype": "<f8", "shape": [3]}]


@pytest.mark.parametrize("manifest,arrays,msg", [
    ("{not json", (), "manifest is not valid JSON"),
    ([1, 2], (), "manifest names format 'list'"),
    ({"format": "other", "version": 1}, (), "format 'other'"),
    ({"format": "gpugrad.checkpoint", "version": 99, "arrays": [], "root": None}, (), "version 99, written by a newer"),
    ({"format": "gpugrad.checkpoint", "version": "1", "arrays": [], "root": None}, (), "bad format version"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": []}, (), "lacks 'arrays' or 'root'"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": ARR, "root": None}, (), "arrays/0.npy .* is missing"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": ARR, "root": None}, [("arrays/0.npy", np.ones(3, np.float32))],
     r"holds float32 \(3,\), the manifest says float64"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": [{"name": "x", "dtype": "<f8", "shape": [3]}], "root": None},
     (), "entry 0 of 'arrays' is malformed"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": [], "root": {"tensor": 0}}, (), "refers to array 0"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": [], "root": {"pickle": "x"}}, (), "unknown manifest node"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": [], "root": [1]}, (), "malformed manifest node"),
    ({"format": "gpugrad.checkpoint", "version": 1, "arrays": [], "root": {"dict": [[1.5, 1]]}}, (), "malformed dict item"),
])
def test_bad_manifests_are_refused(tmp_path, manifest, arrays, msg):
    p = _write(tmp_path, _manifest_zip(manifest, arrays))
    with pytest.raises(CheckpointError, match=msg):
        load(p)


def test_object_array_inside_is_refused(tmp_path):
    spec = [{"name": "arrays/0.npy", "dtype": "|O", "shape": [1]}]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(MANIFEST, json.dumps({"format": "gpugrad.checkpoint", "version": 1, "arrays": spec,
                                          "root": {"ndarray": 0}}))
        f = io.BytesIO()
        np.save(f, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        zf.writestr("arrays/0.npy", f.getvalue())
    with pytest.raises(CheckpointError, match=NOT_CKPT):
        load(_write(tmp_path, buf.getvalue()))


def test_compressed_entries_are_refused(tmp_path):
    save({"w": Tensor(np.zeros(100))}, tmp_path / "c.gg")
    buf = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "c.gg") as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for n in src.namelist():
            dst.writestr(n, src.read(n))
    with pytest.raises(CheckpointError, match="compressed"):
        load(_write(tmp_path, buf.getvalue()))
