"""Run the benchmark suite:
``python benchmarks/run.py [overhead] [train] [kernels] [ops] [cpu] [amp] [--device cuda] [--out DIR] [--overwrite]``.

Each benchmark prints a short table and writes JSON (with the machine, date and library
versions) to ``--out`` (default benchmarks/results/local/, ignored by git). A folder holding
committed results (benchmarks/results/) is written only with ``--overwrite``.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (sets the thread counts before NumPy is imported)

ALL = ("overhead", "train", "kernels", "ops", "cpu", "amp")


def _fail(prog, message):
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _committed(folder):
    """The files git tracks in ``folder`` (none outside a git checkout, or without git)."""
    try:
        r = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "ls-files", "--", str(folder)],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return r.stdout.split() if r.returncode == 0 else []


def results_folder(argv, prog="run.py"):
    """Take ``--out DIR`` and ``--overwrite`` out of ``argv``; return the results folder, checked."""
    out, overwrite, k = common.RESULTS, False, 0
    while k < len(argv):
        a = argv[k]
        if a == "--overwrite":
            overwrite = True
            del argv[k]
        elif a == "--out" or a.startswith("--out="):
            if a == "--out" and k + 1 >= len(argv):
                _fail(prog, "--out needs a folder, e.g. --out benchmarks/results/local")
            out = Path(argv[k + 1] if a == "--out" else a.split("=", 1)[1]).resolve()
            del argv[k:k + (2 if a == "--out" else 1)]
        else:
            k += 1
    if out.exists() and not out.is_dir():
        _fail(prog, f"--out {out} is a file, not a folder; choose another --out")
    recorded = Path(__file__).resolve().parent / "results"  # NOTE: the committed tables, also outside a git checkout
    if (out == recorded or _committed(out)) and not overwrite:
        _fail(prog, f"--out {out} holds committed results: pass --overwrite to replace them, or choose another "
                    "--out (default benchmarks/results/local/)")
    return out


def main(argv, prog="run.py"):
    argv = list(argv)
    common.RESULTS = results_folder(argv, prog)
    k = 0
    while k < len(argv) and not argv[k].startswith("-"):
        k += 1
    names, rest = argv[:k] or list(ALL), argv[k:]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        _fail(prog, f"unknown benchmark {unknown[0]!r}: choose from {', '.join(ALL)}")
    for n in names:
        if n == "overhead":
            import overhead
            overhead.main()
        elif n == "train":
            import train_step
            train_step.main(rest)
        elif n == "kernels":
            import kernels as kb
            kb.main(rest)
        elif n == "ops":
            import ops_vs_torch
            ops_vs_torch.main(rest)
        elif n == "cpu":
            import cpu_kernels
            cpu_kernels.main(rest)
        elif n == "amp":
            import amp as amp_bench
            amp_bench.main(rest)
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
