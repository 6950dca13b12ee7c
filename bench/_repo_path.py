"""``python bench/x.py`` puts bench/ first on sys.path: swap it for the repository root.

Imported by each script only when run as a file (``__package__`` empty), before ``from bench...``: afterwards
``bench`` is importable as a package and bench/'s own files (common.py, summary.py, gpu.py) can no
longer shadow top-level modules of the same names.
"""
import sys
from pathlib import Path

_here = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
sys.path.insert(0, str(_here.parent))
