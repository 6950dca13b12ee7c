#!/usr/bin/env python
"""Kill points: stop a search's driver at random moments (SIGKILL, SIGINT, SIGTERM), resume it each time, and
check that nothing finished was lost.

One experiment per signal: the driver is started, stopped at a seeded random moment, resumed with ``--resume``,
stopped again, ... ``--kills`` times, then resumed until it ends. A SIGKILL also kills every process the driver
started (a crashed machine: Ray's workers die with it). At every kill point the trials whose own record says
TERMINATED are noted with their best val R@1. At the end:

  - every trial TERMINATED before a kill is TERMINATED after, with the same best R@1 and a readable best checkpoint;
  - no trial ends ERROR, and every checkpoint folder holds the epoch its trial's record names for it;
  - the final set of trials (their configs) equals an uninterrupted run's (``--sampler random`` draws each trial's
    params from its number, so the set does not depend on timing);
  - SIGINT / SIGTERM: the driver exits 130 and prints the ``--resume`` hint.

    python bench/kill_points.py                       # 20 SIGKILL + 10 SIGINT + 10 SIGTERM kill points (~30 min)
    python bench/kill_points.py --repo /tmp/old       # the same on another checkout (before/after a fix)
    python bench/kill_points.py --quick               # 1 kill per signal
"""
from __future__ import annotations

if __package__ in (None, ""):  # `python bench/x.py`: import the repo, never bench/ itself as top level
    import _repo_path  # noqa: F401

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import psutil

from bench.common import (REPO, LoadRecord, add_common_flags, apply_quick, out_dir_for, print_rows, row, run_dir,
                          setup_environment, wait_for_quiet, write_result)

NAME = "kill_points"
SEARCH = ["--smoke-test", "--no-wandb", "--sampler", "random", "--num-samples", "6", "--max-epochs", "3",
          "--max-concurrent", "2", "--refit-top-k", "0", "--ensemble-top-k", "0", "--data", "synthetic:n=600"]
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


def driver_env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="kp", dir="/tmp")   # short: Ray's socket paths are limited
    return env


def stop_tree(proc: psutil.Popen, sig: int, grace_s: float = 180.0) -> tuple[int | None, list[psutil.Process]]:
    """Send ``sig`` to the driver; SIGKILL takes every descendant with it. Returns (exit code, leftovers)."""
    tree = proc.children(recursive=True) if proc.is_running() else []
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass
    if sig == signal.SIGKILL:
        for child in tree:
            try:
                child.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=10)
    try:
        rc = proc.wait(grace_s)
    except psutil.TimeoutExpired:
        proc.kill()
        rc = None
    leftovers = [p for p in tree if p.is_running()]
    return rc, leftovers


def records(experiment: Path) -> dict[str, dict]:
    out = {}
    for path in experiment.glob("trial_*/trial.json"):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out


def config_key(config: dict) -> str:
    return json.dumps({k: v for k, v in sorted(config.items()) if not k.startswith("_")}, sort_keys=True)


def best_r1(epochs: list[dict]) -> float | None:
    values = [e["recall_at_1"] for e in epochs if isinstance(e.get("recall_at_1"), (int, float))]
    return max(values) if values else None


def terminated_now(experiment: Path) -> dict[str, float | None]:
    """config key -> best R@1 of every trial whose own record says TERMINATED."""
    return {config_key(r["config"]): best_r1(r.get("epochs", [])) for r in records(experiment).values()
            if r.get("status") == "TERMINATED" and isinstance(r.get("config"), dict)}


def complete(experiment: Path, expected: int) -> bool:
    """Every trial of the search finished (its last stages may have run too): nothing was left to interrupt."""
    try:
        trials = final_trials(experiment)
    except Exception:   # not readable as an experiment yet
        return False
    return len(trials) == expected and all(t["status"] == "TERMINATED" for t in trials)


def final_trials(experiment: Path) -> list[dict[str, Any]]:
    """The search's trials as results/ reads them (no Ray): key, status, best R@1, best checkpoint readable."""
    from core.checkpoint import read_checkpoint
    from results import read_experiment
    from results.tables import best_checkpoint

    out = []
    for trial in read_experiment(experiment).trials:
        if not trial.in_state:
            continue
        ckpt, _ = best_checkpoint(trial)
        readable = False
        if ckpt is not None:
            try:
                readable = "model" in read_checkpoint(ckpt)
            except Exception:   # what the check is for: any failure to read counts
                readable = False
        out.append({"trial_id": trial.trial_id, "key": config_key(trial.config), "status": trial.status,
                    "best": best_r1(trial.rows), "checkpoint_readable": readable})
    return out


def checkpoint_mixups(experiment: Path) -> list[str]:
    """Where a trial's record and its checkpoint folders disagree: two epochs naming one folder, or a folder whose
    report.json holds another epoch than the record says (a restored trial that stored a checkpoint over one its
    record already names)."""
    problems = []
    for folder, record in records(experiment).items():
        names: dict[str, int] = {}
        for row in record.get("epochs") or []:
            name, epoch = row.get("checkpoint_dir_name"), row.get("epoch")
            if not isinstance(name, str) or name.startswith("../"):
                continue   # none, or the folder of the trial it continues (checked there)
            if name in names:
                problems.append(f"{folder}: epochs {names[name]} and {epoch} both name {name}")
            names[name] = epoch
            try:
                stored = json.loads((experiment / folder / name / "report.json").read_text()).get("epoch")
            except (OSError, ValueError):
                continue   # emptied once superseded (search/retention.py)
            if stored != epoch:
                problems.append(f"{folder}/{name} holds epoch {stored}; the record says epoch {epoch}")
    return problems


def wait_for_new_checkpoint(experiment: Path, proc: psutil.Popen, timeout: float) -> bool:
    """Until a checkpoint folder appears that was not there when this was called (False: the driver ended or
    none came in ``timeout`` s)."""
    seen = set(experiment.glob("trial_*/checkpoint_*"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if set(experiment.glob("trial_*/checkpoint_*")) - seen:
            return True
        time.sleep(0.02)
    return False


def run_driver(repo: Path, storage: Path, name: str, resume: bool, log: Path, env: dict,
               search: list[str]) -> psutil.Popen:
    """The search, or ``--resume`` of it once it exists (a kill before its search_args.json: start it again)."""
    cmd = [sys.executable, str(repo / "run_search.py"), "--storage", str(storage), "--name", name]
    cmd += ["--resume"] if resume and (storage / name / "search_args.json").is_file() else search
    return psutil.Popen(cmd, cwd=repo, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def reference_run(repo: Path, root: Path, search: list[str] = SEARCH) -> tuple[set[str], float]:
    """The uninterrupted run's trial set (config keys) and wall time."""
    env = driver_env()
    t0 = time.perf_counter()
    try:
        proc = run_driver(repo, root / "reference", "ref", False, root / "reference.log", env, search)
        rc = proc.wait(1800)
    finally:
        shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    if rc != 0:
        raise SystemExit(f"the uninterrupted reference run exited {rc}: {root / 'reference.log'}")
    return {t["key"] for t in final_trials(root / "reference" / "ref")}, time.perf_counter() - t0


def killed_run(repo: Path, root: Path, plan: Sequence[str], span_s: float, rng: random.Random,
               reference: set[str], label: str = "", search: list[str] = SEARCH,
               after_checkpoint_share: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Experiments stopped at random moments with the signals of ``plan``, in its order (one per stop: a
    SIGINT, then a SIGTERM of the resumed driver, ...), each resumed to its end, until every signal was delivered
    (a run that ends before its next moment is checked, and a new one starts with the signals left).
    ``after_checkpoint_share`` (per signal name; 0.5 for any not named): the share of moments
    taken right after a trial stored a checkpoint (see ``one_experiment``); the others are uniform over the run."""
    experiments: list[dict[str, Any]] = []
    delivered = 0
    while delivered < len(plan) and len(experiments) < len(plan):
        experiment = one_experiment(repo, root, list(plan[delivered:]), span_s, rng, reference,
                                    f"{label}-{len(experiments)}", search, after_checkpoint_share)
        experiments.append(experiment)
        delivered += experiment["delivered"]
    return {"signal": "+".join(dict.fromkeys(plan)), "delivered": delivered,
            "survived": all(e["survived"] for e in experiments),
            "problems": [p for e in experiments for p in e["problems"]], "experiments": experiments,
            "kill_points": [k for e in experiments for k in e["kill_points"]],
            "terminated_before_kills": sum(e["terminated_before_kills"] for e in experiments)}


def one_experiment(repo: Path, root: Path, plan: list[str], span_s: float, rng: random.Random, reference: set[str],
                   label: str, search: list[str], after_checkpoint_share: Mapping[str, float] | None) -> dict[str, Any]:
    """One experiment stopped up to ``len(plan)`` times (the signals of ``plan`` in order), resumed each time and to
    its end, then checked."""
    folder = "-".join(dict.fromkeys(s.lower() for s in plan))
    storage, name = root / f"{folder}{label}", "killed"
    experiment = storage / name
    points: list[dict[str, Any]] = []
    terminated: dict[str, float | None] = {}
    started_once = False
    while (delivered := sum(p["delivered"] for p in points)) < len(plan) and len(points) < 3 * len(plan):
        sig_name = plan[delivered]
        sig = SIGNALS[sig_name]
        share = (after_checkpoint_share or {}).get(sig_name, 0.5)
        env = driver_env()
        log = root / f"{folder}{label}-{len(points)}.log"
        try:
            proc = run_driver(repo, storage, name, started_once, log, env, search)
            started_once = True
            # Half the moments are uniform in the first 70 % of an uninterrupted run's time (start-up, trials,
            # saving, the end); half land 0-1.5 s after a trial stored a new checkpoint, while Tune updates its
            # state and the old checkpoints are superseded (where the probe's kill -9 lost finished trials).
            after_checkpoint = rng.random() < share
            at = rng.uniform(0.0, 1.5) if after_checkpoint else rng.uniform(0.5, 0.7 * span_s)
            t0 = time.perf_counter()
            if after_checkpoint and not wait_for_new_checkpoint(experiment, proc, timeout=span_s):
                at = None
            try:
                proc.wait(at if at is not None else 0.01)
                points.append({"at_s": at, "after_checkpoint": after_checkpoint, "signal": sig_name,
                               "delivered": False, "exit": proc.returncode})
                if proc.returncode == 0:
                    break   # it ended before the moment: nothing left to interrupt
                continue
            except psutil.TimeoutExpired:
                at = round(time.perf_counter() - t0, 2)
            for key, value in terminated_now(experiment).items():
                terminated.setdefault(key, value)
            size = log.stat().st_size
            rc, leftovers = stop_tree(proc, sig)
            tail = log.read_bytes()[size:].decode(errors="replace")
            point = {"at_s": at, "after_checkpoint": after_checkpoint, "signal": sig_name, "delivered": True,
                     "exit": rc, "leftover_processes": len(leftovers)}
            if rc in (0, -signal.SIGINT) and complete(experiment, len(reference)) and "Traceback" not in tail:
                # The signal raced a finished search's exit: nothing was unfinished, so no hint is owed. -2: Python
                # resets its SIGINT handler in its last moments of shutdown, and a Ctrl+C then ends the process.
                point["delivered"] = False
                points.append(point)
                break
            if sig != signal.SIGKILL:   # the --resume command, or (stopped before anything started) "run it again"
                point["hint"] = "--resume" in tail or "nothing to resume" in tail
                point["ok_exit"] = rc == 130 and point["hint"]
            points.append(point)
        finally:
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    finish_rc = 0 if points and not points[-1]["delivered"] and points[-1]["exit"] == 0 else None
    for attempt in range(3 if finish_rc is None else 0):   # resume to the end
        env = driver_env()
        try:
            proc = run_driver(repo, storage, name, started_once, root / f"{folder}{label}-final-{attempt}.log",
                              env, search)
            finish_rc = proc.wait(1800)
        finally:
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
        started_once = True
        if finish_rc == 0:
            break
    final = final_trials(experiment) if experiment.is_dir() else []
    by_key = {t["key"]: t for t in final}
    problems = []
    if finish_rc != 0:
        problems.append(f"the last resume exited {finish_rc}")
    problems += [f"trial {t['trial_id']} ended {t['status']}" for t in final if t["status"] != "TERMINATED"]
    problems += checkpoint_mixups(experiment) if experiment.is_dir() else []
    if set(by_key) != reference or len(final) != len(reference):
        problems.append(f"trial set differs from the uninterrupted run: {len(final)} trials, "
                        f"{len(set(by_key) - reference)} unexpected, {len(reference - set(by_key))} missing")
    for key, value in terminated.items():
        after = by_key.get(key)
        if after is None or after["status"] != "TERMINATED":
            problems.append(f"a trial TERMINATED before a kill is {after and after['status'] or 'gone'} after")
        elif after["best"] != value:
            problems.append(f"trial {after['trial_id']}: best R@1 {value} before a kill, {after['best']} after")
        elif not after["checkpoint_readable"]:
            problems.append(f"trial {after['trial_id']}: best checkpoint unreadable after a kill")
    if not all(p.get("ok_exit", True) for p in points if p["delivered"]):
        problems.append("a SIGINT/SIGTERM did not end with exit 130 and the --resume hint: "
                        + ", ".join(f"{p['exit']}/{p.get('hint')}" for p in points if not p.get("ok_exit", True)))
    return {"experiment": str(experiment), "kill_points": points, "delivered": sum(p["delivered"] for p in points),
            "survived": not problems, "problems": problems, "terminated_before_kills": len(terminated),
            "final_trials": final}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose run_search.py is driven")
    ap.add_argument("--kills", type=int, default=5, help="kill points per experiment (default 5)")
    ap.add_argument("--runs", type=int, default=2, help="experiments per signal (default 2)")
    ap.add_argument("--sigkill-runs", type=int, default=4, help="experiments for SIGKILL (default 4: 20 kill points)")
    ap.add_argument("--signals", nargs="+", default=list(SIGNALS), choices=list(SIGNALS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--name", default=NAME, help="result file name (e.g. kill_points_before)")
    add_common_flags(ap, retries=0)
    args = ap.parse_args(argv)
    apply_quick(args)
    if args.quick:
        args.kills, args.runs, args.sigkill_runs = 1, 1, 1
    setup_environment()
    started = time.perf_counter()
    root = run_dir(args, "kill_points")
    root.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = str(args.repo.resolve())
    load = LoadRecord(wait_for_quiet(args.max_load, args.wait_load), own=2.0, max_per_core=args.max_load)
    reference, span = reference_run(args.repo.resolve(), root)
    print(f"reference: {len(reference)} trials in {span:.0f} s", flush=True)
    rng = random.Random(args.seed)
    by_signal: dict[str, list[dict[str, Any]]] = {}
    for sig_name in args.signals:
        for i in range(args.sigkill_runs if sig_name == "SIGKILL" else args.runs):
            run = killed_run(args.repo.resolve(), root, [sig_name] * args.kills, span, rng, reference, label=f"-{i}")
            by_signal.setdefault(sig_name, []).append(run)
            print(f"{sig_name} #{i}: {run['delivered']} kill point(s) delivered, "
                  f"{'survived' if run['survived'] else 'FAILED: ' + '; '.join(run['problems'])}", flush=True)
    load.finish()
    rows = []
    for sig_name, runs in by_signal.items():
        delivered = sum(r["delivered"] for r in runs)
        survived = sum(r["delivered"] for r in runs if r["survived"])
        failures = sorted({p for r in runs for p in r["problems"]})
        rows.append(row(f"Kill points, {sig_name}: stopped at random moments, resumed each time",
                        "every kill point survived", f"{delivered} kill points in {len(runs)} experiments: "
                        f"{sum(r['survived'] for r in runs)}/{len(runs)} experiments ended whole"
                        + (f"; {'; '.join(failures)[:500]}" if failures else ""),
                        survived / delivered if delivered else None, survived == delivered if delivered else None,
                        ratio_text=f"{survived}/{delivered} survived"))
    settings = {"search": " ".join(SEARCH), "kills_per_experiment": args.kills, "experiments_per_signal": args.runs,
                "sigkill_experiments": args.sigkill_runs,
                "seed": args.seed, "repo": str(args.repo), "workdir": str(root), "reference_wall_s": span}
    path = write_result(out_dir_for(args), args.name, title="Kill points: driver stopped at random moments",
                        quick=args.quick, rows=rows, settings=settings, details={"runs": by_signal}, load=load,
                        started=started)
    print_rows(rows, load, path)
    return 0 if all(r["survived"] for runs in by_signal.values() for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
