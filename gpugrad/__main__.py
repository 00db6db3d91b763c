"""``python -m gpugrad {train,explain,bench,info}`` (also the ``gpugrad`` console script).

A mistake on the command line prints one line (the problem and the fix) and exits with code 2; Ctrl-C exits
with code 130. Tracebacks are shown only with ``--debug``.
"""
from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _info(args):
    import numpy as np  # noqa: PLC0415

    import gpugrad as gg  # noqa: PLC0415
    from .train import UsageError  # noqa: PLC0415
    print(f"gpugrad {gg.__version__}  numpy {np.__version__}  python {sys.version.split()[0]}")
    try:
        print(f"default device: {gg.get_default_device()}")
    except (ValueError, gg.CudaUnavailableError) as e:
        raise UsageError(f"the default device cannot be used: {e}; set GPUGRAD_DEVICE=cpu (or unset it)") from None
    reason = gg.cuda.why_unavailable()
    if reason is None:
        import cupy as cp  # noqa: PLC0415
        for i in range(gg.cuda.device_count()):
            p = cp.cuda.runtime.getDeviceProperties(i)
            print(f"cuda:{i}: {p['name'].decode()}  cupy {cp.__version__}  "
                  f"driver {cp.cuda.runtime.driverGetVersion()}  runtime {cp.cuda.runtime.runtimeGetVersion()}")
    else:
        print(f"CUDA: not usable — {reason}")
    return 0


def _bench(rest):
    import runpy  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from .train import UsageError, resolve_device  # noqa: PLC0415
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
    if not script.exists():
        raise UsageError("the benchmarks live in the source checkout (benchmarks/run.py); clone the repository "
                         "and run this command there")
    for k, a in enumerate(rest):  # NOTE: the device is checked here, with the message every command gives
        if a == "--device" and k + 1 < len(rest) or a.startswith("--device="):
            resolve_device(rest[k + 1] if a == "--device" else a.split("=", 1)[1])
    bench = runpy.run_path(str(script), run_name="gpugrad_bench")
    return bench["main"](list(rest), prog="gpugrad bench") or 0


def _parser():
    from . import train as _train  # noqa: PLC0415
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    p = _Parser(prog="gpugrad", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    _train.add_parser(sub, parents=[common])
    try:
        from .explain import cli as _explain_cli  # noqa: PLC0415
        _explain_cli.add_parser(sub, parents=[common])
    except ImportError:
        pass
    b = sub.add_parser("bench", help="run the benchmark suite (from a source checkout)",
                       description="python -m gpugrad bench [overhead] [train] [kernels] [ops] [--device cuda] "
                                   "[--out DIR] [--overwrite] [--debug] ...: the options go to benchmarks/run.py; "
                                   "results are written to --out (default benchmarks/results/local/, ignored by git)")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="[overhead] [train] [kernels] [ops] [--device cuda] ...")
    i = sub.add_parser("info", help="versions and devices", parents=[common])
    i.set_defaults(func=_info)
    return p


def main(argv=None):
    from .train import UsageError  # noqa: PLC0415
    argv = sys.argv[1:] if argv is None else list(argv)
    cmd = argv[0] if argv else "?"
    debug = "--debug" in argv
    try:
        if cmd == "bench" and argv[1:2] not in (["-h"], ["--help"]):
            # NOTE: everything after `bench` goes to benchmarks/run.py, options first too
            return _bench([a for a in argv[1:] if a != "--debug"])
        args = _parser().parse_args(argv)
        args.argv = argv
        return args.func(args) or 0
    except UsageError as e:
        if debug:
            raise
        print(f"gpugrad {cmd}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\ngpugrad {cmd}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        print(f"gpugrad {cmd}: unexpected {type(e).__name__}: {e} (run it again with --debug to see the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
