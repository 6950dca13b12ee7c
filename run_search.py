#!/usr/bin/env python
"""Hyper-parameter search for text-to-motion retrieval (Ray Tune + Optuna + ASHA + W&B).

    python run_search.py --list-spaces
    python run_search.py --smoke-test                      # seconds on CPU
    python run_search.py --space aligned_loss              # the default search
    python run_search.py --resume --name aligned_loss-20250101-120000
    python run_search.py --help
"""
import sys

if __name__ == "__main__":
    try:
        from search.cli import exit_now, main   # the libraries load inside the Ctrl+C guard
    except KeyboardInterrupt:
        print("\ninterrupted while starting: nothing was started yet. Run the same command again.", file=sys.stderr)
        sys.exit(130)
    exit_now(main())
