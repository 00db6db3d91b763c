"""``gg.save`` / ``gg.load``: checkpoints that never execute code when read.

File format (version 1): an uncompressed zip archive holding

- ``gpugrad-checkpoint.json``: ``{"format": "gpugrad.checkpoint", "version": 1,
  "arrays": [{"name", "dtype", "shape"}, ...], "root": <node>}``;
- ``arrays/<i>.npy``: one ``.npy`` file per array, read back with ``allow_pickle=False``.

A node is JSON ``null``/bool/number/string for Python ``None``/bool/int/float/str, or an
object with one tag: ``{"tensor": i, "requires_grad": b, "device": "cuda:0"}``,
``{"ndarray": i}``, ``{"scalar": i}`` (NumPy scalar), ``{"complex": [re, im]}``,
``{"list": [...]}``, ``{"tuple": [...]}``, ``{"dict": [[key, node], ...], "ordered": b}``
(keys are strings or ints), where ``i`` indexes ``arrays``. An object reached twice
(the same Tensor or array) is stored once and comes back as one object.

Writes go to a temporary file in the target's folder, are fsynced, then renamed over
the target, so a crash or an unserializable object never leaves a half-written file.
``load`` reads and checks everything (zip structure, CRCs, manifest, every array's
header, dtype, shape and size) before it returns; any problem raises
:class:`CheckpointError` (a ``ValueError``) naming the file and what is wrong.
"""
from __future__ import annotations

import collections
import json
import os
import secrets
import stat
import struct
import zipfile
import zlib

import numpy as np

from . import _dtypes
from .backend import device as _device
from .backend import device_of, to_device
from .tensor import Tensor

__all__ = ["FORMAT", "VERSION", "CheckpointError", "load", "save"]

FORMAT = "gpugrad.checkpoint"
VERSION = 1
MANIFEST = "gpugrad-checkpoint.json"
_DTYPE_KINDS = "biufcmMSU"          # plain dtypes .npy stores without pickle
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # NOTE: fixed timestamps: the same object always gives the same bytes
_MAX_MANIFEST = 256 << 20


class CheckpointError(ValueError):
    """A file that is not a (valid) gpugrad checkpoint."""


# ---------------------------------------------------------------------------------------------- save

class _Encoder:
    def __init__(self):
        self.arrays = []   # (entry name, host numpy array)
        self.specs = []    # manifest entries
        self.memo = {}     # id(Tensor or array) -> array index
        self.keep = []     # keeps memoized objects alive so their ids stay unique
        self.active = set()

    def array(self, a, owner, where):
        key = id(owner)
        if key in self.memo:
            return self.memo[key]
        host = to_device(a, "cpu")
        dname = None
        if host.dtype == _dtypes.BF16:
            # NOTE: .npy has no bfloat16: stored as its uint16 bits, the manifest says "bfloat16"
            host, dname = host.view(np.uint16), "bfloat16"
        if host.dtype.kind not in _DTYPE_KINDS or host.dtype.fields is not None:
            raise TypeError(f"cannot save the array at {where}: dtype {host.dtype} is not a plain numeric, bool, "
                            "string or datetime dtype (object arrays would need pickle)")
        i = len(self.arrays)
        name = f"arrays/{i}.npy"
        self.arrays.append((name, host))
        self.specs.append({"name": name, "dtype": dname or host.dtype.str, "shape": list(host.shape)})
        self.memo[key] = i
        self.keep.append(owner)
        return i

    def enc(self, x, where):
        if x is None or type(x) in (bool, int, float, str):
            return x
        if isinstance(x, Tensor):
            node = {"tensor": self.array(x._data, x, where), "requires_grad": bool(x.requires_grad)}
            dev = str(x.device)
            if dev != "cpu":
                node["device"] = dev
            return node
        if isinstance(x, np.ndarray) or type(x).__module__.startswith("cupy") and hasattr(x, "__cuda_array_interface__"):
            return {"ndarray": self.array(x, x, where)}
        if isinstance(x, np.generic):
            return {"scalar": self.array(np.asarray(x), np.asarray(x), where)}
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x)
        if isinstance(x, str):
            return str(x)
        if isinstance(x, complex):
            return {"complex": [x.real, x.imag]}
        if isinstance(x, (dict, list, tuple)):
            if id(x) in self.active:
                raise ValueError(f"cannot save: the object at {where} contains itself (a reference cycle)")
            self.active.add(id(x))
            try:
                if isinstance(x, dict):
                    items = []
                    for k, v in x.items():
                        if type(k) is bool or not isinstance(k, (str, int)):
                            raise TypeError(f"cannot save the dict at {where}: key {k!r} is a {type(k).__name__}; "
                                            "checkpoint dict keys must be strings or ints")
                        k = str(k) if isinstance(k, str) else int(k)
                        items.append([k, self.enc(v, f"{where}[{k!r}]")])
                    node = {"dict": items}
                    if isinstance(x, collections.OrderedDict):
                        node["ordered"] = True
                    return node
                tag = "tuple" if isinstance(x, tuple) else "list"
                return {tag: [self.enc(v, f"{where}[{i}]") for i, v in enumerate(x)]}
            finally:
                self.active.discard(id(x))
        hint = " (save module.state_dict() instead)" if hasattr(x, "state_dict") else ""
        raise TypeError(f"cannot save the {type(x).__name__} at {where}{hint}: a checkpoint holds Tensors, arrays, "
                        "numbers, bools, None, strings, and dicts/lists/tuples of them")


def _zinfo(name):
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _write_zip(fh, manifest, arrays):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_zinfo(MANIFEST), manifest)
        for name, a in arrays:
            with zf.open(_zinfo(name), "w", force_zip64=a.nbytes > (1 << 30)) as out:
                np.lib.format.write_array(out, a, allow_pickle=False)


def _atomic_write(path, write):
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    while True:
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:  # keep the permissions of a file being replaced
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if hasattr(os, "O_DIRECTORY"):  # NOTE: fsync the folder so the rename itself survives a power cut
        try:
            dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass


def save(obj, f) -> None:
    """Save ``obj`` (a state dict, a Tensor, or nested dicts/lists/tuples of Tensors, arrays,
    numbers, bools, None and strings) to ``f``, a path or a writable binary file object.

    Tensors keep dtype, shape and ``requires_grad`` (not ``.grad``); GPU tensors are
    copied to the host. Everything is checked before the file is touched, and a path
    is written atomically: the old file stays intact if anything fails.
    """
    enc = _Encoder()
    root = enc.enc(obj, "obj")
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "arrays": enc.specs, "root": root},
                          separators=(",", ":")).encode()
    if hasattr(f, "write"):
        _write_zip(f, manifest, enc.arrays)
    else:
        _atomic_write(os.fspath(f), lambda fh: _write_zip(fh, manifest, enc.arrays))


# ---------------------------------------------------------------------------------------------- load

def _bad(name, what):
    return CheckpointError(f"{name} is not a valid gpugrad checkpoint: {what}")


def _sniff(head, name):
    """Say what a non-zip file looks like."""
    if not head:
        return _bad(name, "the file is empty")
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return _bad(name, "it is a Python pickle (e.g. written by torch.save or pickle.dump); gpugrad never "
                          "unpickles files, since unpickling can run arbitrary code")
    if head[:6] == b"\x93NUMPY":
        return _bad(name, "it is a single NumPy .npy array (use numpy.load)")
    if head[:2] == b"\x1f\x8b":
        return _bad(name, "it is a gzip file, not a zip archive")
    return _bad(name, f"not a zip archive (it starts with bytes {head[:8].hex(' ')}); the file is corrupt or of another kind")


def _foreign_zip(names, name):
    if any(n.endswith("data.pkl") for n in names):
        kind = "it looks like a PyTorch checkpoint (torch.save), which holds pickles gpugrad will not read"
    elif names and all(n.endswith(".npy") for n in names):
        kind = "it looks like a NumPy .npz archive (use numpy.load)"
    else:
        kind = "it is a zip archive of another kind"
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return _bad(name, f"no '{MANIFEST}' manifest: {kind} (entries: {shown or 'none'})")


def _check_manifest(m, name):
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        got = m.get("format") if isinstance(m, dict) else type(m).__name__
        raise _bad(name, f"its manifest names format {got!r}, expected {FORMAT!r}")
    v = m.get("version")
    if type(v) is not int or v < 1:
        raise _bad(name, f"bad format version {v!r}")
    if v > VERSION:
        raise CheckpointError(f"{name} is a gpugrad checkpoint of format version {v}, written by a newer gpugrad; "
                              f"this one reads versions up to {VERSION}: upgrade gpugrad")
    specs = m.get("arrays")
    if not isinstance(specs, list) or "root" not in m:
        raise _bad(name, "its manifest lacks 'arrays' or 'root'")
    for i, s in enumerate(specs):
        ok = (isinstance(s, dict) and s.get("name") == f"arrays/{i}.npy" and isinstance(s.get("dtype"), str)
              and isinstance(s.get("shape"), list) and all(type(d) is int and d >= 0 for d in s["shape"]))
        if not ok:
            raise _bad(name, f"manifest entry {i} of 'arrays' is malformed: {s!r:.200}")
    return specs


def _read_array(zf, spec, name, file_size):
    try:
        info = zf.getinfo(spec["name"])
    except KeyError:
        raise _bad(name, f"the array entry {spec['name']} listed in the manifest is missing") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise _bad(name, f"{spec['name']} is compressed (method {info.compress_type}); gpugrad checkpoints are stored uncompressed")
    if info.file_size > file_size:
        raise _bad(name, f"{spec['name']} claims {info.file_size} bytes but the whole file has {file_size}")
    bf16 = spec["dtype"] == "bfloat16"
    if bf16 and not _dtypes.BF16:
        raise TypeError(f"{name}: {spec['name']} is a bfloat16 array; loading it needs ml_dtypes: "
                        "pip install 'gpugrad[bf16]'")
    try:
        want = np.dtype(np.uint16 if bf16 else spec["dtype"])
    except TypeError:
        raise _bad(name, f"{spec['name']}: unknown dtype {spec['dtype']!r}") from None
    with zf.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _bad(name, f"{spec['name']}: unsupported .npy version {version}")
        if dtype.kind not in _DTYPE_KINDS or dtype.fields is not None or dtype != want or list(shape) != spec["shape"]:
            raise _bad(name, f"{spec['name']} holds {dtype} {tuple(shape)}, the manifest says {want} {tuple(spec['shape'])}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if f.tell() + nbytes != info.file_size:
            raise _bad(name, f"{spec['name']} has {info.file_size - f.tell()} data bytes, {dtype} {tuple(shape)} needs {nbytes}")
        buf = bytearray(nbytes)  # NOTE: a bytearray, so the loaded array is writable (optimizers update in place)
        got = f.readinto(buf) if nbytes else 0
        if got != nbytes or f.read(1):  # reading to the end makes zipfile check the CRC
            raise _bad(name, f"{spec['name']} is truncated")
    arr = np.frombuffer(buf, dtype=_dtypes.BF16 if bf16 else dtype)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


class _Decoder:
    def __init__(self, arrays, name):
        self.arrays, self.name = arrays, name
        self.memo = {}
        self.tensors = []  # (tensor, saved device)

    def index(self, node, tag):
        i = node[tag]
        if type(i) is not int or not 0 <= i < len(self.arrays):
            raise _bad(self.name, f"manifest node {tag!r} refers to array {i!r}, which does not exist")
        return i

    def dec(self, node):
        if node is None or type(node) in (bool, int, float, str):
            return node
        if not isinstance(node, dict) or not node:
            raise _bad(self.name, f"malformed manifest node {node!r:.200}")
        if "tensor" in node:
            i = self.index(node, "tensor")
            if ("t", i) not in self.memo:
                rg = node.get("requires_grad", False)
                dev = node.get("device", "cpu")
                if type(rg) is not bool or not isinstance(dev, str):
                    raise _bad(self.name, f"malformed tensor node {node!r:.200}")
                t = Tensor(self.arrays[i], requires_grad=rg)
                self.tensors.append((t, dev))
                self.memo["t", i] = t
            return self.memo["t", i]
        if "ndarray" in node:
            return self.arrays[self.index(node, "ndarray")]
        if "scalar" in node:
            a = self.arrays[self.index(node, "scalar")]
            if a.ndim != 0:
                raise _bad(self.name, f"scalar node refers to an array of shape {a.shape}")
            return a[()]
        if "complex" in node:
            v = node["complex"]
            if not (isinstance(v, list) and len(v) == 2 and all(type(p) in (int, float) for p in v)):
                raise _bad(self.name, f"malformed complex node {node!r:.200}")
            return complex(*v)
        for tag in ("list", "tuple"):
            if tag in node:
                items = node[tag]
                if not isinstance(items, list):
                    raise _bad(self.name, f"malformed {tag} node {node!r:.200}")
                out = [self.dec(v) for v in items]
                return out if tag == "list" else tuple(out)
        if "dict" in node:
            items = node["dict"]
            out = collections.OrderedDict() if node.get("ordered") is True else {}
            if not isinstance(items, list):
                raise _bad(self.name, f"malformed dict node {node!r:.200}")
            for kv in items:
                if not (isinstance(kv, list) and len(kv) == 2 and type(kv[0]) in (str, int)):
                    raise _bad(self.name, f"malformed dict item {kv!r:.200}")
                out[kv[0]] = self.dec(kv[1])
            return out
        raise _bad(self.name, f"unknown manifest node {node!r:.200}")


def _target(map_location, saved):
    if map_location is None:
        return _device("cpu")
    if isinstance(map_location, dict):
        return _device(map_location.get(saved, "cpu"))
    return _device(map_location)


def load(f, map_location=None):
    """Load an object written by :func:`save` from a path or a readable, seekable binary file.

    Tensors come back on the CPU unless ``map_location`` says otherwise: a device
    (``'cpu'``, ``'cuda'``, ``'cuda:1'``, a ``Device``) for all tensors, or a dict
    from saved device to target (``{'cuda:1': 'cuda:0'}``; unlisted -> CPU).
    Raises :class:`CheckpointError` for a file that is not a valid gpugrad
    checkpoint (empty, truncated, corrupt, a pickle, a foreign zip/npz, ...).
    """
    if map_location is not None and not isinstance(map_location, dict):
        _device(map_location)  # a bad spec fails before the file is read
    if hasattr(f, "read"):
        obj, tensors = _load_from(f, getattr(f, "name", "<file object>"))
    else:
        with open(os.fspath(f), "rb") as fh:
            obj, tensors = _load_from(fh, os.fspath(f))
    # NOTE: devices are resolved only after the whole file has been read and checked.
    moves = [(t, _target(map_location, dev)) for t, dev in tensors]
    for t, dev in moves:
        if dev != device_of(t._data):
            t._data = to_device(t._data, dev)
    return obj


def _load_from(fh, name):
    name = str(name)
    start = fh.tell()
    head = fh.read(8)
    size = fh.seek(0, os.SEEK_END) - start
    fh.seek(start)
    if head[:2] != b"PK":
        raise _sniff(head, name)
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error) as e:
        raise _bad(name, f"the file is truncated or corrupt: its zip directory (at the end of the file) is missing "
                         f"or damaged ({type(e).__name__}: {e}; the file has {size} bytes)") from None
    try:
        with zf:
            names = zf.namelist()
            if MANIFEST not in names:
                raise _foreign_zip(names, name)
            minfo = zf.getinfo(MANIFEST)
            if minfo.file_size > min(size, _MAX_MANIFEST):
                raise _bad(name, f"its manifest claims {minfo.file_size} bytes")
            try:
                manifest = json.loads(zf.read(minfo).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise _bad(name, f"its manifest is not valid JSON ({e})") from None
            specs = _check_manifest(manifest, name)
            arrays = [_read_array(zf, s, name, size) for s in specs]
            dec = _Decoder(arrays, name)
            return dec.dec(manifest["root"]), dec.tensors
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, TypeError, KeyError,
            struct.error, zlib.error, RecursionError, NotImplementedError) as e:
        raise _bad(name, f"the file is truncated or corrupt ({type(e).__name__}: {e})") from None

