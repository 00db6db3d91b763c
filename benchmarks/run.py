"""Run the benchmark suite: ``python benchmarks/run.py [overhead] [train] [kernels] [ops] [--device cuda]``.

Each benchmark prints a short table and writes JSON (with the machine, date and library
versions) under benchmarks/results/.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402,F401  (sets the thread counts before NumPy is imported)

ALL = ("overhead", "train", "kernels", "ops")


def main(argv):
    k = 0
    while k < len(argv) and not argv[k].startswith("-"):
        k += 1
    names, rest = argv[:k] or list(ALL), argv[k:]
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
        else:
            raise SystemExit(f"unknown benchmark {n!r}: choose from {', '.join(ALL)}")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
