#!/usr/bin/env python
"""Ensemble of a search's models: every fusion studied, the best kept only if it helps (results/ensemble_cli.py).

    python run_ensemble.py EXPERIMENT_DIR                      # auto: refit members, every fusion reported
    python run_ensemble.py EXPERIMENT_DIR --query "a person hands an object to another"
    python run_ensemble.py --smoke-test                        # seconds on CPU
    python run_ensemble.py --help
"""
import sys

if __name__ == "__main__":
    try:
        from results.ensemble_cli import main   # the libraries load inside the Ctrl+C guard
    except KeyboardInterrupt:
        print("\ninterrupted while starting: nothing was written (ensemble/ is swapped in whole). Run the same command again.", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
