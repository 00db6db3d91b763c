"""Build an emulator module: a CUDA source (as RawModule gets it) + its name expressions -> a .so.

``build_module(code, options, name_expressions)`` compiles the UNCHANGED source text with the host
C++ compiler, force-including ``cuda_emu.h``, together with a generated table of launch thunks
(one per name expression, which instantiates it, as NVRTC's name expressions do) and links
``runtime.cpp``; everything with ``-O1 -g -fsanitize=address,undefined``. Two more passes give
what the compiler does not: a preprocessor pass (``-DCUDAEMU_SCAN``) whose ``__global__`` /
``__shared__`` markers yield each kernel's parameter names and ``__restrict__`` flags and the
names of shared variables, and ``nm`` on the result, which locates those variables (the runtime
refills them with garbage before each block).

Builds are cached under ``.cache/cudaemu/`` at the repository root (``$GPUGRAD_CUDAEMU_CACHE``
overrides), keyed by a hash of the source, the options, the name expressions, every header in
the include paths, the emulator's own sources, the flags and the compiler's version, so CI builds
once. ``$GPUGRAD_CUDAEMU_CFLAGS`` adds compiler flags (``-DCUDAEMU_UCONTEXT``: the portable
ucontext fiber switch instead of the x86-64 one).
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HEADER = HERE / "cuda_emu.h"
RUNTIME = HERE / "runtime.cpp"
STUBS = HERE / "include"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
# NOTE: -fvisibility=hidden and -fno-gnu-unique keep every module's template statics (its
# __shared__ variables) its own: with default visibility, unique symbols of modules loaded
# into one process are merged by the dynamic linker.
CFLAGS = ["-std=c++17", "-O1", "-g", "-fPIC", "-fno-omit-frame-pointer", "-fvisibility=hidden", "-fno-gnu-unique",
          "-w", *SANITIZE, *os.environ.get("GPUGRAD_CUDAEMU_CFLAGS", "").split()]  # e.g. -DCUDAEMU_UCONTEXT


class CompileError(RuntimeError):
    """The emulator build of a module failed; the message holds the compiler's log."""


def cache_root() -> Path:
    return Path(os.environ.get("GPUGRAD_CUDAEMU_CACHE") or ROOT / ".cache" / "cudaemu")


@functools.lru_cache(maxsize=None)
def compiler():
    """(path, version line) of the host C++ compiler, or None when there is none."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")
    if not cxx:
        return None
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except OSError:
        return None
    return cxx, out.splitlines()[0] if out else "?"


def asan_runtime() -> str | None:
    """Path of the compiler's libasan (to LD_PRELOAD into the Python running the modules)."""
    c = compiler()
    if c is None:
        return None
    p = subprocess.run([c[0], "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return p if p and os.path.isabs(p) and os.path.exists(p) else None


def _nvrtc_to_gcc(options):
    """NVRTC options -> g++ flags and include dirs. Unknown options are an error, not ignored."""
    flags, incs = [], []
    for o in options:
        if o.startswith(("--std=", "-std=")):
            flags.append("-std=" + o.split("=", 1)[1])
        elif o.startswith("-I"):
            incs.append(o[2:])
        elif o.startswith("-D"):
            flags.append(o)
        elif o.startswith(("--gpu-architecture", "-arch")):
            pass  # NOTE: the emulator has no architectures; __CUDA_ARCH__ is fixed in cuda_emu.h
        else:
            raise CompileError(f"cudaemu: NVRTC option {o!r} is not supported by the emulator")
    return flags, incs


def _digest(code, options, exprs, incs, extra=b""):
    h = hashlib.sha256()
    for part in (code.encode(), repr(tuple(options)).encode(), "\0".join(exprs).encode(), HEADER.read_bytes(),
                 RUNTIME.read_bytes(), Path(__file__).read_bytes(), repr(compiler()).encode(), " ".join(CFLAGS).encode(),
                 extra):
        h.update(len(part).to_bytes(8, "little") + part)
    for d in incs:
        for p in sorted(Path(d).glob("*")):
            if p.suffix in (".cuh", ".h", ".hpp") and p.is_file():
                h.update(p.name.encode() + b"\0" + p.read_bytes())
    for p in sorted(STUBS.glob("*")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:24]


def _run(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise CompileError(f"cudaemu: {what} failed ({' '.join(map(str, cmd[:1]))} ... exit {proc.returncode}):\n"
                           + proc.stderr[-6000:])
    return proc.stdout


_rt_lock = threading.Lock()


def _runtime_object():
    c = compiler()
    key = _digest("runtime", (), (), ())
    obj = cache_root() / f"runtime-{key}.o"
    # NOTE: builds run in threads (harness.prebuild) and processes at once: one builds it
    with _rt_lock, open(cache_root() / "runtime.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not obj.exists():
            tmp = obj.with_suffix(f".{os.getpid()}.tmp")
            _run([c[0], *CFLAGS, f"-I{HERE}", "-c", str(RUNTIME), "-o", str(tmp)], "compiling runtime.cpp")
            os.replace(tmp, obj)
    return obj


def _source_name(code, incs):
    """The .cu file the text came from (same bytes in an include dir), for readable messages."""
    for d in incs:
        for p in sorted(Path(d).glob("*.cu")):
            try:
                if p.read_text() == code:
                    return p.name
            except OSError:
                pass
    return "module.cu"


_GLOBAL = re.compile(r"__cudaemu_global__\s+void\s+([A-Za-z_]\w*)\s*\(")
_SHARED = re.compile(r"__cudaemu_shared__\s+(?:__attribute__\s*\(\(.*?\)\)\s*)?[^;=]*?([A-Za-z_]\w*)\s*(?:\[[^;]*\])?\s*;")


# NOTE: the one rewrite of a source: `extern __shared__ T name[];` (dynamic shared memory) cannot
# be a `static` like the other __shared__ variables (extern static is not C++); it becomes a const
# pointer to the launch's dynamic shared buffer (function scope only; see cuda_emu.h).
_DYN_SHARED = re.compile(r"\bextern\s+__shared__\s+((?:__align__\s*\(\s*\d+\s*\)\s*|alignas\s*\(\s*\d+\s*\)\s*)?)"
                         r"([A-Za-z_][\w:<>, ]*?)\s*\b([A-Za-z_]\w*)\s*\[\s*\]\s*;")


def rewrite_dynamic_shared(code):
    return _DYN_SHARED.sub(lambda m: f"__cudaemu_dynamic_shared__({m.group(2).strip()}, {m.group(3)});", code)


def _split_params(text):
    """Top-level comma split of a parameter list."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "(<[{":
            depth += 1
        elif ch in ")>]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [p.strip() for p in out]


def scan(preprocessed: str):
    """({kernel: [(param name, is restrict)]}, [shared variable names]) from the marker pass."""
    kernels = {}
    for m in _GLOBAL.finditer(preprocessed):
        i, depth = m.end(), 1
        while depth and i < len(preprocessed):
            depth += {"(": 1, ")": -1}.get(preprocessed[i], 0)
            i += 1
        params = []
        for p in _split_params(preprocessed[m.end():i - 1]):
            if p in ("", "void"):
                continue
            ids = [t for t in re.findall(r"[A-Za-z_]\w*", p.split("=")[0]) if t not in ("__restrict__", "__restrict")]
            params.append((ids[-1] if ids else "?", "__restrict__" in p or "__restrict " in p))
        kernels[m.group(1)] = params
    shared = sorted(set(_SHARED.findall(preprocessed)))
    if re.search(r"\bextern\s+__cudaemu_shared__", preprocessed):
        raise CompileError("cudaemu: an extern __shared__ declaration of a form the emulator cannot rewrite "
                           "(expected `extern __shared__ T name[];`)")
    return kernels, shared


def _shared_symbols(so, names):
    """[(offset, size, symbol)] of the module's static variables named like a __shared__ one."""
    out = _run(["nm", "-S", "-C", "--defined-only", str(so)], "nm")
    found = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) != 4 or parts[2] not in "bBdD" or parts[3].startswith("cudaemu::"):
            continue
        sym = parts[3]
        last = sym.rsplit("::", 1)[-1]
        if last in names:
            found.append((int(parts[0], 16), int(parts[1], 16), sym))
    return found


def _build_in(tmp, out, c, code, flags, incs, exprs, rt):
    name = _source_name(code, incs)
    (tmp / name).write_text(rewrite_dynamic_shared(code))
    entries = ",\n".join(f"  CUDAEMU_KERNEL({e})" for e in exprs)
    (tmp / "module.cpp").write_text(
        f'#include "{name}"\n'
        'extern "C" { extern const ::cudaemu::KernelInfo cudaemu_table[]; extern const int cudaemu_table_size; }\n'
        f"const ::cudaemu::KernelInfo cudaemu_table[] = {{\n{entries}\n}};\n"
        f"const int cudaemu_table_size = {len(exprs)};\n")
    # NOTE: the build runs in a temporary folder renamed to `out` at the end: file names in
    # debug info and __FILE__ (sanitizer reports, emulator messages) name the final place.
    common = [*flags, f"-ffile-prefix-map={tmp}={out}", "-include", str(HEADER), f"-I{STUBS}", *(f"-I{d}" for d in incs)]
    pre = _run([c[0], *CFLAGS, *common, "-DCUDAEMU_SCAN", "-E", "-x", "c++", str(tmp / name)], "preprocessing")
    kernels, shared = scan(pre)
    try:
        _run([c[0], *CFLAGS, *common, "-c", str(tmp / "module.cpp"), "-o", str(tmp / "module.o")], f"compiling {name}")
    except CompileError as e:
        raise CompileError(str(e).replace(str(tmp) + "/", "")) from None
    _run([c[0], *SANITIZE, "-shared", str(tmp / "module.o"), str(rt), "-o", str(tmp / "module.so")], "linking")
    (tmp / "module.o").unlink()
    return {"source": name, "expressions": exprs, "kernels": kernels,
            "shared": _shared_symbols(tmp / "module.so", shared)}


def build_module(code: str, options=(), name_expressions=()) -> Path:
    """Directory holding ``module.so`` and ``meta.json`` for this source and name expressions."""
    c = compiler()
    if c is None:
        raise CompileError("cudaemu: no host C++ compiler (g++/c++/clang++) on PATH")
    exprs = list(name_expressions)
    flags, incs = _nvrtc_to_gcc(options)
    key = _digest(code, options, exprs, incs)
    out = cache_root() / key
    if (out / "meta.json").exists():
        return out
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # NOTE: parallel builders of the same key wait for one
        if (out / "meta.json").exists():
            return out
        rt = _runtime_object()
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache_root()))
        try:
            meta = _build_in(tmp, out, c, code, flags, incs, exprs, rt)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    return out
