"""``python -m core.train``: one config without Ray (the command line lives in core/train_cli.py)."""
import sys

try:
    from core.train_cli import main   # torch and the data code load here, inside the Ctrl+C guard

    code = main()
except KeyboardInterrupt:   # outside training (imports, loading data or text features, the final test report)
    print("\ninterrupted. What --out holds is whole: a started run continues with --resume OUT/last.",
          file=sys.stderr)
    code = 130
if code == 130:
    from core.interrupts import exit_130_stays_130

    exit_130_stays_130()
sys.exit(code)
