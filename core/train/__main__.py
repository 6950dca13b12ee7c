"""``python -m core.train``: one config without Ray (the command line lives in core/train_cli.py)."""
import sys

from core.train_cli import main

try:
    sys.exit(main())
except KeyboardInterrupt:   # outside training (loading data or text features, the final test report)
    print("\ninterrupted. What --out holds is whole: a started run continues with --resume OUT/last.",
          file=sys.stderr)
    sys.exit(130)
