"""``make bench``: every benchmark of this folder, results in benchmarks/results/ (JSON + Markdown)."""
from __future__ import annotations

import importlib
import logging
import sys

BENCHMARKS = ("benchmarks.stages", "benchmarks.visualize", "benchmarks.memory")

log = logging.getLogger("benchmarks")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    failed = 0
    for name in BENCHMARKS:
        log.info("== %s", name)
        try:
            importlib.import_module(name).main([])
        except Exception as exc:  # a broken benchmark must not hide the others
            log.error("%s failed: %s", name, exc)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
