"""The ``pose3d-rt`` command line."""
from .main import entry, main

__all__ = ["entry", "main"]
