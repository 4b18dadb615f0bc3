"""``pose3d-rt bench``: a thin command over the source checkout's ``benchmarks/`` folder (not part of the package)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType
from typing import Optional

from ..errors import Pose3DError


def benchmarks_module() -> Optional[ModuleType]:
    """The benchmarking code lives in the source checkout's ``benchmarks/`` folder, not in the package: import it
    from there (None when pose3d-rt is installed from a wheel)."""
    try:
        import benchmarks.bench as bench
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "benchmarks" / "bench.py").is_file():
            return None
        sys.path.insert(0, str(root))
        import benchmarks.bench as bench
    return bench


def cmd_bench(args: argparse.Namespace) -> int:
    bench = benchmarks_module()
    if bench is None:
        raise Pose3DError("bench runs from a source checkout (its benchmarks/ folder is not part of the package)")
    return bench.cmd_bench(args)
