"""``python -m gpugrad {train,explain,bench,info}`` (also the ``gpugrad`` console script)."""
from __future__ import annotations

import argparse
import sys


def _info(args):
    import numpy as np  # noqa: PLC0415

    import gpugrad as gg  # noqa: PLC0415
    print(f"gpugrad {gg.__version__}  numpy {np.__version__}  python {sys.version.split()[0]}")
    print(f"default device: {gg.get_default_device()}")
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
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"
    if not script.exists():
        print("the benchmarks live in the source checkout (benchmarks/run.py); clone the repository to run them",
              file=sys.stderr)
        return 2
    sys.argv = [str(script)] + list(rest)
    runpy.run_path(str(script), run_name="__main__")
    return 0


def main(argv=None):
    from . import train as _train  # noqa: PLC0415
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"] and argv[1:2] != ["-h"] and argv[1:2] != ["--help"]:
        return _bench(argv[1:])  # NOTE: everything after `bench` goes to benchmarks/run.py, options first too
    p = argparse.ArgumentParser(prog="gpugrad", description="gpugrad command line")
    sub = p.add_subparsers(dest="cmd", required=True)
    _train.add_parser(sub)
    try:
        from .explain import cli as _explain_cli  # noqa: PLC0415
        _explain_cli.add_parser(sub)
    except ImportError:
        pass
    b = sub.add_parser("bench", help="run the benchmark suite (from a source checkout)")
    b.add_argument("rest", nargs=argparse.REMAINDER, help="[overhead] [train] [kernels] [--device cuda] ...")
    i = sub.add_parser("info", help="versions and devices")
    i.set_defaults(func=_info)
    args = p.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
