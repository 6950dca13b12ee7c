"""Benchmarks: speed and search-efficiency claims measured as ratios in one run on one machine.

Each ``bench/<name>.py`` is a script (argparse, ``--quick``) that writes ``bench/results/<name>.json``;
``python bench/run_all.py`` runs them and regenerates ``bench/results/SUMMARY.md``. See bench/README.md.
"""
