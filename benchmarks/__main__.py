"""``python -m benchmarks``: run every benchmark (the same as ``make bench``); see :mod:`benchmarks.run`."""
import sys

from benchmarks.run import main

sys.exit(main())
