"""``make bench``: every benchmark of this folder, results in benchmarks/results/ (JSON + Markdown).

Each benchmark runs in its own Python process, so that one's peak memory (the memory benchmark reads the peak RSS)
and thread pools cannot leak into another's figures.
"""
from __future__ import annotations

import logging
import subprocess
import sys

BENCHMARKS = ("benchmarks.stages", "benchmarks.visualize", "benchmarks.memory")

log = logging.getLogger("benchmarks")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    failed = 0
    for name in BENCHMARKS:
        log.info("== %s", name)
        code = subprocess.run([sys.executable, "-m", name]).returncode
        if code != 0:  # a broken benchmark must not hide the others
            log.error("%s failed with exit code %d", name, code)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
