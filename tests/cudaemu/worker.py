"""The process that runs emulated kernels, and the client the tests use to drive it.

ASan in a shared library needs its runtime loaded first, so the modules are never loaded into
pytest's own process: a worker (``python -m cudaemu.worker FD``) is started with
``LD_PRELOAD=<libasan>``, installs the CuPy stand-in, and runs test cases (module-level
functions of the test files, called by name with JSON keyword arguments) one request at a time.
A sanitizer report aborts the worker; the client then returns the report as the case's result
(and starts a fresh worker for the next case), so a test can also *expect* a crash.

Protocol: requests are JSON lines on the worker's stdin; replies JSON lines on the inherited
pipe FD; the worker's stdout and stderr (sanitizer reports, prints) go to a log file.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
ASAN_OPTIONS = ("detect_leaks=0:detect_stack_use_after_return=0:detect_odr_violation=0:halt_on_error=1:"
                "abort_on_error=0:handle_segv=1:allocator_may_return_null=1:print_summary=1")
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1"


class Worker:
    """Client side: ``run(module, func, **kwargs)`` -> dict(ok, error, crashed, launches, seconds)."""

    def __init__(self, libasan: str):
        self.libasan, self.proc, self.restarts = libasan, None, 0
        self.log = tempfile.NamedTemporaryFile(prefix="cudaemu-worker-", suffix=".log", delete=False)

    def _start(self):
        r, w = os.pipe()
        env = dict(os.environ)
        env["LD_PRELOAD"] = " ".join(filter(None, [self.libasan, env.get("LD_PRELOAD")]))
        env["ASAN_OPTIONS"], env["UBSAN_OPTIONS"] = ASAN_OPTIONS, UBSAN_OPTIONS
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), str(ROOT), env.get("PYTHONPATH")]))
        env["PYTHONFAULTHANDLER"] = "1"
        self.proc = subprocess.Popen([sys.executable, "-m", "cudaemu.worker", str(w)], stdin=subprocess.PIPE,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
                                     pass_fds=(w,), text=True)
        os.close(w)
        self.replies = os.fdopen(r, "r")

    def run(self, module: str, func: str, timeout: float = 600, **kwargs) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
            self._start()
        self.log.flush()
        offset = os.path.getsize(self.log.name)
        t0 = time.monotonic()
        self.proc.stdin.write(json.dumps({"module": module, "func": func, "kwargs": kwargs}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.replies], [], [], timeout)
        line = self.replies.readline() if ready else ""
        if line:
            res = json.loads(line)
        else:  # the worker died (a sanitizer abort, a segfault) or hung
            if not ready:
                self.proc.kill()
            self.proc.wait()
            self.replies.close()
            with open(self.log.name, errors="replace") as f:
                f.seek(offset)
                report = f.read()
            why = f"timed out after {timeout:.0f} s" if not ready else f"died with exit status {self.proc.returncode}"
            res = {"ok": False, "crashed": True, "error": f"emulator worker {why}:\n{report[-12000:]}", "launches": []}
            self.proc = None
        res["seconds"] = time.monotonic() - t0
        return res

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        os.unlink(self.log.name)


def ping():
    """A case that only proves the worker starts (with the sanitizer runtime preloaded)."""


def serve(fd: int):
    """Worker side: install the stand-in, then answer requests until stdin closes."""
    import importlib  # noqa: PLC0415

    from cudaemu import standin  # noqa: PLC0415

    standin.install()
    out = os.fdopen(fd, "w")
    for line in sys.stdin:
        req = json.loads(line)
        print(f"=== {req['module']}.{req['func']}({req['kwargs']})", flush=True)
        n0 = len(standin.launches)
        try:
            getattr(importlib.import_module(req["module"]), req["func"])(**req["kwargs"])
            res = {"ok": True}
        except BaseException as e:  # noqa: BLE001 - every failure goes back to the test
            res = {"ok": False, "type": type(e).__name__, "error": "".join(traceback.format_exception(e))[-12000:]}
        res["launches"] = [list(x) for x in standin.launches[n0:]]
        del standin.launches[n0:]
        out.write(json.dumps(res) + "\n")
        out.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
