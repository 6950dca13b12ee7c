"""Joint positions -> features: conversion speed of the ``joints`` loader, single process.

A standalone measurement (not one of ``run_all.py``'s benchmarks; it writes no JSON): frames/s of
  1. ``joints_to_features`` alone, on in-memory (200, 22, 3) arrays;
  2. ``convert_joints_file`` per file (np.load, shape/NaN checks, unit guess, up axis, features);
  3. ``load_raw(root, "joints", {"workers": 1})`` on the folder (also captions, items);
  4. the same three-stage file conversion on two-person (200, 2, 22, 3) scenes (278-d);
  5. the real HumanML3D sample new_joints/012314.npy (170, 22, 3), converted --reps times.
Each figure is measured --repeats times (the machine is shared); the median and the spread are printed.

    python bench/joints_conversion.py [--motions 200] [--frames 200] [--repeats 3]
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from core.data.features import joints_to_features
from core.data.loaders import load_raw
from core.data.loaders.joints import convert_joints_file
from tests.core.data.fabricated import fabricated_motion, fabricated_pair

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "humanml3d-sample" / "new_joints" / "012314.npy"


def _frames_per_second(work, frames: int, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        out.append(frames / (time.perf_counter() - t0))
    return out


def _report(name: str, rates: list[float]) -> None:
    lo, mid, hi = min(rates), float(np.median(rates)), max(rates)
    print(f"{name:<44} {mid:>10,.0f} frames/s   (min {lo:,.0f}, max {hi:,.0f}, spread {100 * (hi - lo) / mid:.0f} %)")


def _write_folder(root: Path, motions: list[np.ndarray]) -> list[Path]:
    (root / "motions").mkdir(parents=True)
    paths = []
    for k, x in enumerate(motions):
        paths.append(root / "motions" / f"m{k:04d}.npy")
        np.save(paths[-1], x.astype(np.float32))
    (root / "captions.csv").write_text("id,text\n" + "".join(f"m{k:04d},a person walks\n" for k in range(len(motions))))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--motions", type=int, default=200)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reps", type=int, default=200, help="conversions of the real sample per measurement")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    n, T, r = args.motions, args.frames, args.repeats
    singles = [fabricated_motion(T=T, turn_rate=0.3, speed=1.0, seed=k) for k in range(n)]
    pairs = [fabricated_pair(T=T, seed=k) for k in range(n // 2)]
    work = Path(tempfile.mkdtemp(prefix="joints-bench-"))
    try:
        single_paths = _write_folder(work / "single", singles)
        pair_paths = _write_folder(work / "pair", pairs)
        opts = {"fps": 20.0, "target_fps": 20.0}
        _report(f"joints_to_features, {n} x ({T}, 22, 3)",
                _frames_per_second(lambda: [joints_to_features(x, 20.0) for x in singles], n * T, r))
        _report(f"convert_joints_file, {n} files",
                _frames_per_second(lambda: [convert_joints_file(str(p), opts) for p in single_paths], n * T, r))
        _report(f"load_raw(joints, workers=1), {n} files",
                _frames_per_second(lambda: load_raw(work / "single", "joints", {"workers": 1}), n * T, r))
        _report(f"convert_joints_file, {len(pairs)} two-person files",
                _frames_per_second(lambda: [convert_joints_file(str(p), opts) for p in pair_paths], len(pairs) * T, r))
        if SAMPLE.exists():
            frames = len(np.load(SAMPLE))
            _report(f"real sample 012314.npy ({frames} frames) x {args.reps}",
                    _frames_per_second(lambda: [convert_joints_file(str(SAMPLE), opts) for _ in range(args.reps)],
                                       frames * args.reps, r))
        else:
            print(f"real sample not found: {SAMPLE}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
