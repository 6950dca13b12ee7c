"""``python -m core.train``: one config without Ray (the command line lives in core/train_cli.py)."""
import sys

from core.train_cli import main

sys.exit(main())
