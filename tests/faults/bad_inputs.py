"""The bad-input table: every entry point, given one bad input, exits 2 with ONE clear message (no traceback).

Each case is (id, what is wrong, entry point, argv, stderr regex).  ``{name}`` in argv is a file or folder built
by FIXTURES (bad_input_fixtures.py) into the case's own temp folder (``{tmp}`` is that folder), so cases run in parallel safely;
``{checkpoint}`` is one real core.train checkpoint shared read-only by every case.

    python -m tests.faults.bad_inputs --write    # regenerate tests/faults/BAD_INPUTS.md from this table
    python -m tests.faults.bad_inputs --run      # run every case, print exit status, seconds, message

tests/faults/test_bad_inputs.py runs the table and checks that BAD_INPUTS.md is in sync with it.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.faults.bad_input_case import ENTRY_POINTS, SMOKE, Case
from tests.faults.bad_input_fixtures import FIXTURES
from tests.faults.bad_inputs_damaged import CLUSTER_CASES, DAMAGED_CASES, SERVICE_CASES, STORAGE_CASES
from tests.faults.bad_inputs_retrieval import RETRIEVAL_CASES
from tests.faults.procs import REPO, cleanup_env, subprocess_env

MARKDOWN = Path(__file__).with_name("BAD_INPUTS.md")


# ---------------------------------------------------------------------------------------------- the table

CASES: tuple[Case, ...] = (
    # run_search.py: flags, validated before Ray starts
    Case("unknown-space", "--space names no registered space", "run_search.py",
         ("--space", "nope", *SMOKE), r"--space: unknown search space 'nope'.*--list-spaces"),
    Case("grace-gt-max-epochs", "contradictory flags: ASHA grace period longer than a trial", "run_search.py",
         ("--max-epochs", "2", "--grace-period", "5", *SMOKE), r"--grace-period: 5 must be in \[1, --max-epochs=2\].*lower it"),
    Case("zero-samples", "--num-samples 0", "run_search.py", ("--num-samples", "0", *SMOKE),
         r"--num-samples: 0 must be >= 1"),
    Case("gpus-on-cpu-machine", "--gpus-per-trial more than this machine has", "run_search.py",
         ("--gpus-per-trial", "64", *SMOKE), r"--gpus-per-trial: 64 but this machine has \d+ visible GPU\(s\); use 0 or --address"),
    Case("gpu-fraction-above-1", "--gpus-per-trial 1.5 (fractions only below 1)", "run_search.py",
         ("--gpus-per-trial", "1.5", *SMOKE), r"--gpus-per-trial: 1.5: fractions are allowed only below 1"),
    Case("cpus-beyond-machine", "--cpus-per-trial more than this machine has", "run_search.py",
         ("--cpus-per-trial", "512", *SMOKE), r"--cpus-per-trial: 512 > the \d+ CPU\(s\) of this machine.*Use at most"),
    Case("unreachable-address", "--address of a port nobody listens on (must fail fast, not hang)", "run_search.py",
         ("--address", "127.0.0.1:{closed_port}", *SMOKE),
         r"--address 127\.0\.0\.1:\d+: cannot reach a Ray cluster there.*--address local"),
    Case("malformed-address", "--address that is not host:port", "run_search.py", ("--address", "nowhere", *SMOKE),
         r"--address: 'nowhere': expected 'local', 'auto', host:port"),
    Case("unwritable-storage", "--storage below a plain file", "run_search.py",
         ("--smoke-test", "--no-wandb", "--storage", "{not_a_dir}/experiments"),
         r"--storage .*a_file/experiments.*: cannot write to .*Pick a writable folder"),
    Case("unknown-storage-scheme", "--storage with an unsupported URI scheme", "run_search.py",
         ("--smoke-test", "--storage", "ftp://host/dir"), r"--storage 'ftp://host/dir': unsupported scheme 'ftp://'.*s3://"),
    Case("name-with-slash", "--name that is a path", "run_search.py", ("--name", "a/b", *SMOKE),
         r"--name: 'a/b' must be a plain folder name"),
    Case("unknown-set-key", "--set of a config key that does not exist (typo)", "run_search.py",
         ("--set", "temprature=0.1", *SMOKE), r"unknown config key\(s\): 'temprature' \(did you mean 'temperature'\?\)"),
    Case("bad-set-value", "--set value of the wrong type", "run_search.py", ("--set", "lr=fast", *SMOKE),
         r"config key 'lr' = 'fast' is invalid: expected float"),
    Case("set-out-of-range", "--set value out of its range", "run_search.py", ("--set", "lr=5", *SMOKE),
         r"config key 'lr' = 5\.0 is invalid: expected a number in \(0, 1\)"),
    Case("set-owned-by-a-flag", "--set of a key that has its own flag", "run_search.py",
         ("--set", "epochs=3", *SMOKE), r"'epochs' has its own flag; use --max-epochs"),
    Case("set-without-value", "--set without =VALUE", "run_search.py", ("--set", "lr", *SMOKE),
         r"--set 'lr': expected KEY=VALUE"),
    Case("name-is-a-file", "--name of a plain file in --storage", "run_search.py",
         ("--name", "taken", "--smoke-test", "--no-wandb", "--storage", "{storage_with_a_file}"),
         r"--name: 'taken': .*store/taken is a file, not an experiment folder\. Choose another --name"),
    Case("cuda-device-without-gpus", "--set device=cuda while trials get no GPU (--gpus-per-trial 0)", "run_search.py",
         ("--set", "device=cuda", *SMOKE), r"--set device: 'cuda' with --gpus-per-trial 0: Ray hides every GPU.*Add "
         r"--gpus-per-trial 1"),
    Case("data-path-missing", "--data path that does not exist (checked before Ray starts)", "run_search.py",
         ("--data", "{tmp}/no_such_dataset", *SMOKE), r"dataset path does not exist: .*no_such_dataset.*Fix: check --data"),
    Case("search-eval-data-other-layout", "--eval-data whose features are laid out unlike --data's (checked before "
         "Ray starts)", "run_search.py", ("--eval-data", "synthetic:n=60,people=1", *SMOKE),
         r"--eval-data synthetic:n=60,people=1: its motions have the 'joints22' feature layout \(137-d\), but the "
         r"model trains on 'interx396' \(396-d\) from --data synthetic:n=200.*Fix: evaluate on a dataset in the "
         r"training layout"),
    Case("optuna-storage-not-a-url", "--optuna-storage that is not a database URL", "run_search.py",
         ("--optuna-storage", "my_study.db", *SMOKE),
         r"--optuna-storage: 'my_study\.db': expected a database URL, e\.g\. sqlite:////abs/path/study\.db"),
    Case("synthetic-too-small", "--data synthetic corpus too small to split", "run_search.py",
         ("--data", "synthetic:n=5", *SMOKE), r"synthetic option n=5 is too small; use n >= 10"),
    Case("split-bigger-than-data", "--data split counts that leave nothing to train on", "run_search.py",
         ("--data", "synthetic:n=40,val=30,test=10", *SMOKE), r"has 40 motions, too few for val 30 motions, test 10 "
                                                              r"motions.*Fix: ask for smaller val=/test="),
    Case("split-fraction-invalid", "--data split fraction above 1 that is not a count", "run_search.py",
         ("--data", "synthetic:val=1.5", *SMOKE), r"dataset option val=1\.5 .* is invalid.*a fraction in \[0, 1\)"),
    Case("refit-seeds-zero", "--refit-seeds 0", "run_search.py", ("--refit-seeds", "0", *SMOKE),
         r"--refit-seeds: 0 must be >= 1"),
    Case("format-on-synthetic", "--format given for the synthetic corpus", "run_search.py",
         ("--format", "bvh", *SMOKE), r"--format 'bvh' does not apply to the synthetic corpus.*drop --format"),
    Case("resume-missing-experiment", "--resume of an experiment that does not exist", "run_search.py",
         ("--resume", "--name", "never-ran", "--storage", "{tmp}"),
         r"--resume: no experiment 'never-ran' in .*Check --name/--storage"),
    Case("resume-changes-a-flag", "--resume with a flag that would change the stored search", "run_search.py",
         ("--resume", "--name", "stored", "--storage", "{stored}", "--space", "temos"),
         r"--space 'temos' cannot change on --resume.*start a new --name"),
    Case("seed-negative", "--seed -1 (numpy seeds are unsigned)", "run_search.py", ("--seed", "-1", *SMOKE),
         r"--seed: -1 must be in \[0, 2\*\*32\)"),
    Case("reduction-factor-inf", "--reduction-factor inf (ASHA would never stop a trial)", "run_search.py",
         ("--reduction-factor", "inf", *SMOKE), r"--reduction-factor: inf must be a finite number > 1"),
    Case("name-too-long", "--name of 300 characters (longer than a folder name may be)", "run_search.py",
         ("--name", "n" * 300, *SMOKE), r"--name: 300 bytes is too long for a folder name; use at most 200"),
    Case("set-infinite-weight", "--set of a loss weight to inf (passes a >= 0 check)", "run_search.py",
         ("--set", "mse_weight=inf", *SMOKE), r"config key 'mse_weight' = inf is invalid: expected a finite number"),
    Case("resume-damaged-args", "--resume of an experiment whose search_args.json is cut off", "run_search.py",
         ("--resume", "--name", "stored", "--storage", "{stored_damaged_args}"),
         r"--resume: .*search_args\.json is damaged \(JSONDecodeError.*Fix: start a new --name"),
    Case("resume-args-from-another-version", "--resume of a search_args.json with a key this version does not know",
         "run_search.py", ("--resume", "--name", "stored", "--storage", "{stored_future_args}"),
         r"--resume: .*search_args\.json was not written by this version \(unknown keys \['future_flag'\].*Fix:"),
    Case("resume-torn-state-no-copy", "--resume of an experiment whose Tune state a full disk cut off, no copy kept",
         "run_search.py", ("--resume", "--name", "stored", "--storage", "{stored_torn_state}"),
         r"--resume: .*experiment_state-.*\.json is cut off .*no complete copy.*Fix: start a new --name"),
    # python -m core.data: one DataError per bad dataset, naming the file
    Case("unknown-format", "--format that no loader has", "python -m core.data",
         ("--data", "{empty_dir}", "--format", "xyz", "--cache-dir", "{tmp}/cache"),
         r"unknown dataset format 'xyz'; known formats: humanml3d, .*Fix: pass one of them with --format"),
    Case("unrecognised-folder", "a folder in no known dataset layout", "python -m core.data",
         ("--data", "{empty_dir}", "--cache-dir", "{tmp}/cache"),
         r"empty_dir: cannot tell the dataset format .*Fix: pass --format NAME"),
    Case("corrupt-npy", "a motion .npy that is not a numpy file", "python -m core.data",
         ("--data", "{corrupt_npy}", "--cache-dir", "{tmp}/cache"),
         r"motions/b\.npy: cannot read this \.npy motion .*Fix: re-save it with numpy\.save"),
    Case("nan-npy", "a motion .npy holding NaN", "python -m core.data",
         ("--data", "{nan_npy}", "--cache-dir", "{tmp}/cache"),
         r"motions/b\.npy: motion 'b' contains NaN/inf \(first at frame 3, feature 2\)\. Fix: clean or drop"),
    Case("wrong-shape-npy", "a motion .npy with 3 dimensions", "python -m core.data",
         ("--data", "{wrong_shape_npy}", "--cache-dir", "{tmp}/cache"),
         r"motions/b\.npy: motion 'b' has shape \(12, 2, 3\); expected 2 dimensions.*Fix: save each motion as a \(T, D\)"),
    Case("empty-caption", "a blank caption", "python -m core.data",
         ("--data", "{empty_caption}", "--cache-dir", "{tmp}/cache"),
         r"motions/c\.npy: motion 'c' has an empty caption\. Fix: remove empty lines"),
    Case("split-id-without-file", "a split file naming an id with no motion file", "python -m core.data",
         ("--data", "{split_without_file}", "--cache-dir", "{tmp}/cache"),
         r"splits/train\.txt: split id 'zzz' has no motions/zzz\.npy.*Fix: remove the id"),
    Case("csv-unquoted-comma", "a caption with an unquoted comma (would be cut at the comma)", "python -m core.data",
         ("--data", "{unquoted_comma}", "--cache-dir", "{tmp}/cache"),
         r"captions\.csv: line 3: the row has more columns than the header \(an unquoted comma.*Fix: quote captions"),
    Case("csv-latin1", "captions.csv saved as Latin-1", "python -m core.data",
         ("--data", "{latin1_csv}", "--cache-dir", "{tmp}/cache"),
         r"captions\.csv: line 2: byte 0xe9 is not UTF-8.*Fix: save it as UTF-8"),
    Case("csv-utf16", "captions.csv saved as UTF-16", "python -m core.data",
         ("--data", "{utf16_csv}", "--cache-dir", "{tmp}/cache"),
         r"captions\.csv: the file is UTF-16 text; captions must be UTF-8\. Fix: save it as UTF-8"),
    Case("jsonl-latin1", "captions.jsonl saved as Latin-1", "python -m core.data",
         ("--data", "{latin1_jsonl}", "--cache-dir", "{tmp}/cache"),
         r"captions\.jsonl: line 1: byte 0xe9 is not UTF-8.*Fix: save it as UTF-8"),
    Case("npz-as-npy", "an .npz archive saved under a .npy name", "python -m core.data",
         ("--data", "{npz_as_npy}", "--cache-dir", "{tmp}/cache"),
         r"motions/b\.npy: this \.npy is an \.npz archive \(arrays \['motion'\]\).*Fix: save the motion alone"),
    Case("zero-feature-motions", "motions of shape (T, 0)", "python -m core.data",
         ("--data", "{zero_features}", "--cache-dir", "{tmp}/cache"),
         r"motion 'a' has shape \(12, 0\): zero features per frame\. Fix:"),
    Case("overlapping-splits", "split files that share an id (train and val both list b)", "python -m core.data",
         ("--data", "{overlapping_splits}", "--cache-dir", "{tmp}/cache"),
         r"splits/val\.txt: 1 motion id\(s\) are in both the 'train' and 'val' split, e\.g\. \['b'\].*Fix: remove"),
    Case("duplicated-split-id", "an id listed twice in one split file (silently oversampled before)",
         "python -m core.data", ("--data", "{duplicated_split_id}", "--cache-dir", "{tmp}/cache"),
         r"train\.txt: id 'a' is listed twice, on lines 1 and 3\. Fix: list every id once"),
    Case("infinite-fps", "meta.json fps Infinity (passed a > 0 check before)", "python -m core.data",
         ("--data", "{infinite_fps}", "--cache-dir", "{tmp}/cache"), r"meta\.json: fps=inf is invalid.*finite.*Fix:"),
    Case("string-npy", "a motion .npy holding strings", "python -m core.data",
         ("--data", "{string_npy}", "--cache-dir", "{tmp}/cache"), r"b\.npy: .*expected a float array\. Fix:"),
    Case("negative-max-motions", "loader option max_motions=-1 (silently dropped the last motion before)",
         "python -m core.data", ("--data", "{corrupt_npy}:max_motions=-1", "--cache-dir", "{tmp}/cache"),
         r"option max_motions=-1 is invalid; it must be a whole number >= 1"),
    Case("synthetic-negative-seed", "synthetic:seed=-1", "python -m core.data",
         ("--data", "synthetic:seed=-1", "--cache-dir", "{tmp}/cache"), r"synthetic option seed=-1 .*whole number >= 0"),
    Case("malformed-bvh", "a BVH file with a short frame line", "python -m core.data",
         ("--data", "{malformed_bvh}", "--cache-dir", "{tmp}/cache"),
         r"run\.bvh: line \d+: a frame line has \d+ values but the hierarchy.*Fix:"),
    Case("gar-missing-part", "GAR annotation record whose part_descriptions lacks a part", "python -m core.data",
         ("--data", "{gar_missing_part}", "--cache-dir", "{tmp}/cache"),
         r"captions\.jsonl: line 2: part_descriptions must have exactly the keys torso, left_arm, right_arm, "
         r"left_leg, right_leg \(missing: \['torso'\].*Fix: describe every part"),
    Case("kit-21-joints", "KIT-ML 21-joint positions (T, 21, 3), auto-detected as joints (no faithful 22-joint map)",
         "python -m core.data", ("--data", "{kit_joints}", "--cache-dir", "{tmp}/cache"),
         r"motions/a\.npy: the motion has shape \(40, 21, 3\): KIT-ML 21-joint positions are not supported.*"
         r"Fix: load KIT-ML from its features: --format kitml"),
    # python -m core.train: the standalone trainer
    Case("train-unknown-key", "--set of an unknown key", "python -m core.train",
         ("--set", "hidden_dimm=32", "--out", "{tmp}/out"), r"unknown config key\(s\): 'hidden_dimm' \(did you mean 'hidden_dim'\?\)"),
    Case("train-data-missing", "--data path that does not exist", "python -m core.train",
         ("--data", "{tmp}/nothing_here", "--out", "{tmp}/out"), r"dataset path does not exist: .*nothing_here"),
    Case("train-eval-data-other-layout", "--eval-data in another feature layout: HumanML3D 263-d features for a "
         "model trained on joints22 137-d (refused before training)", "python -m core.train",
         ("--smoke-test", "--data", "synthetic:n=60,people=1", "--eval-data", "{hml263}", "--out", "{tmp}/out"),
         r"--eval-data .*hml263: its motions have the 'hml263' feature layout \(263-d\), but the model trains on "
         r"'joints22' \(137-d\) from --data synthetic:n=60,people=1; .*Fix: evaluate on a dataset in the training "
         r"layout \(BVH folders and Bandai-Namco give joints22"),
    Case("train-parts-unknown-joints", "--set motion_encoder=parts on features whose joints are unknown (refused "
         "before training)", "python -m core.train",
         ("--smoke-test", "--data", "{raw_features}", "--set", "motion_encoder=parts", "--out", "{tmp}/out"),
         r"motion_encoder='parts' needs a feature layout with known joints; dataset 'raw_features' has layout "
         r"'raw' \(D=7\)\. Fix: use joints22"),
    Case("train-seed-negative", "--set seed=-1", "python -m core.train",
         ("--smoke-test", "--set", "seed=-1", "--out", "{tmp}/out"),
         r"config key 'seed' = -1 is invalid: expected an int in \[0, 2\*\*32\)"),
    Case("checkpoint-config-mismatch", "--resume from a checkpoint trained with another config", "python -m core.train",
         ("--smoke-test", "--epochs", "2", "--set", "hidden_dim=32", "--resume", "{checkpoint}", "--out", "{tmp}/out"),
         r"checkpoint .* does not match this config \(hidden_dim: checkpoint 64 vs config 32\)\. Resume with the config"),
    Case("resume-missing-checkpoint", "--resume from a folder without checkpoint.pt", "python -m core.train",
         ("--smoke-test", "--resume", "{empty_dir}", "--out", "{tmp}/out"),
         r"empty_dir/checkpoint\.pt: no checkpoint here \(expected checkpoint\.pt written by core\.train\)\. "
         r"Fix: pass a checkpoint folder"),
    # run_ensemble.py / python -m results: reading a finished search
    Case("query-unknown-device", "--device that is not a torch device", "run_ensemble.py",
         ("{checkpoint}", "--query", "a person walks", "--device", "gpu0"),
         r"device 'gpu0' is not a torch device\. Fix: use auto, cpu, cuda or cuda:N"),
    Case("results-top-negative", "python -m results --top -1", "python -m results", ("{two_trials}", "--top", "-1"),
         r"--top -1: must be >= 1"),
    Case("ensemble-no-trials", "ensemble of an experiment without trials", "run_ensemble.py", ("{no_trials}",),
         r"no_trials: the experiment has no trials yet.*Fix:"),
    Case("ensemble-nothing-finished", "ensemble of an experiment whose only trial never reported", "run_ensemble.py",
         ("{no_checkpoints}",), r"no finished trial \(TERMINATED/ERROR\) with a best checkpoint on disk.*Fix: wait"),
    Case("ensemble-top-k-too-large", "--top-k larger than the finished trials", "run_ensemble.py",
         ("{two_trials}", "--top-k", "5"), r"only 2 finished trial\(s\) with a checkpoint, fewer than top_k=5\..*--allow-fewer"),
    Case("ensemble-eval-format-alone", "--eval-format without --eval-data (would be ignored)", "run_ensemble.py",
         ("{two_trials}", "--top-k", "2", "--eval-format", "bvh"),
         r"--eval-format is given without --eval-data\. Fix: add --eval-data SPEC"),
    Case("ensemble-split-alone", "--split without --query (was silently ignored while the ensemble was rebuilt)",
         "run_ensemble.py", ("{two_trials}", "--split", "val"),
         r"--split val: picks the motions --query, --serve or --index search.*Add --query TEXT, or drop it"),
    Case("ensemble-top-k-zero", "--top-k 0", "run_ensemble.py", ("{two_trials}", "--top-k", "0"),
         r"top_k=0: an ensemble needs at least one member\. Fix: pass --top-k 1 or more"),
    Case("ensemble-bad-weights", "--weights that are not numbers", "run_ensemble.py",
         ("{two_trials}", "--top-k", "2", "--weights", "heavy", "light"), r"--weights heavy light: expected numbers"),
    Case("ensemble-missing-dir", "an experiment folder that does not exist", "run_ensemble.py",
         ("{tmp}/missing",), r"missing: experiment directory does not exist\. Fix: pass the folder Ray Tune wrote"),
    Case("ensemble-of-a-checkpoint", "a checkpoint folder where an experiment is expected", "run_ensemble.py",
         ("{checkpoint}",), r"a checkpoint dir holds one model.*Fix: pass the experiment dir"),
    Case("query-plain-dir", "--query on a folder that is neither experiment nor checkpoint", "run_ensemble.py",
         ("{empty_dir}", "--query", "a person walks"),
         r"empty_dir: neither a checkpoint dir \(checkpoint\.pt\) nor an experiment with an ensemble.*Fix: build the ensemble"),
    Case("query-code-checkpoint", "--query on a checkpoint.pt that runs code when unpickled", "run_ensemble.py",
         ("{code_checkpoint}", "--query", "a person walks"),
         r"checkpoint\.pt: refused to open it: it holds pickled objects other than tensors.*could run code.*Fix: open only"),
    Case("query-torn-checkpoint", "--query on a checkpoint.pt cut in half", "run_ensemble.py",
         ("{torn_checkpoint}", "--query", "a person walks"),
         r"checkpoint\.pt: cannot read it .*truncated or not a torch checkpoint\. Fix: use another checkpoint"),
    Case("resume-code-checkpoint", "--resume from a checkpoint.pt that runs code when unpickled", "python -m core.train",
         ("--smoke-test", "--epochs", "2", "--resume", "{code_checkpoint}", "--out", "{tmp}/out"),
         r"checkpoint\.pt: refused to open it.*could run code"),
    Case("train-out-holds-a-run", "--out of a finished run (training would silently replace it)", "python -m core.train",
         ("--smoke-test", "--out", "{finished_run}"),
         r"finished_run: already holds a run \(2 epoch\(s\), best val R@1 33\.30 at epoch 2\).*Fix: --resume .*--overwrite"),
    Case("train-out-is-a-file", "--out naming a plain file", "python -m core.train",
         ("--smoke-test", "--out", "{not_a_dir}"), r"--out .*a_file: is a file, not a folder\. Fix: pass a folder"),
    Case("query-empty-text", "--query with an empty text", "run_ensemble.py", ("{empty_dir}", "--query", " "),
         r"--query: the text is empty; give the words to search for"),
    Case("query-top-zero", "--top 0", "run_ensemble.py", ("{empty_dir}", "--query", "walk", "--top", "0"),
         r"--top 0: must be >= 1"),
    Case("results-not-an-experiment", "tables of a folder that is not an experiment", "python -m results",
         ("{empty_dir}",), r"empty_dir: not a Ray Tune experiment directory.*Fix: pass the folder"),
) + DAMAGED_CASES + SERVICE_CASES + STORAGE_CASES + CLUSTER_CASES + RETRIEVAL_CASES


# ---------------------------------------------------------------------------------------------- running

def build_checkpoint(root: Path, env: dict[str, str]) -> Path:
    """The one real checkpoint the checkpoint cases share: 1 epoch of the smoke config (seconds)."""
    out = root / "trained"
    proc = subprocess.run([*ENTRY_POINTS["python -m core.train"], "--smoke-test", "--epochs", "1", "--out", str(out),
                           "--set", "num_threads=1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"could not train the shared checkpoint:\n{proc.stderr[-2000:]}")
    return out / "last"


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    started_ray: bool          # a session folder appeared in the case's private RAY_TMPDIR

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "error:" in line]


def command(case: Case, tmp: Path, shared: dict[str, str]) -> list[str]:
    values = {"tmp": str(tmp), **shared}
    for name in case.fixtures:
        if name not in values:
            values[name] = str(FIXTURES[name][1](tmp))
    return [*ENTRY_POINTS[case.entry], *(arg.format(**values) for arg in case.argv)]


def run_case(case: Case, tmp: Path, shared: dict[str, str], timeout: float = 90, launcher=None) -> Outcome:
    """The case as a subprocess; with ``launcher`` (tests/faults/warm_entry.py) a process forked from one that has
    the libraries imported already."""
    tmp.mkdir(parents=True, exist_ok=True)
    cmd = command(case, tmp, shared)
    env = subprocess_env()
    t0 = time.perf_counter()
    try:
        if launcher is None:
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        else:
            out, err = tmp / ".case-stdout", tmp / ".case-stderr"
            returncode = launcher.run(cmd, str(REPO), env, str(out), str(err), timeout)
            stdout, stderr = (p.read_text(errors="replace") for p in (out, err))
        started_ray = (Path(env["RAY_TMPDIR"]) / "ray").exists()
    finally:
        cleanup_env(env)
    return Outcome(returncode, stdout, stderr, time.perf_counter() - t0, started_ray)


# ---------------------------------------------------------------------------------------------- Markdown

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shown(arg: str) -> str:
    arg = re.sub(r"\{(\w+)\}", r"<\1>", arg)
    return f"'{arg}'" if " " in arg else arg


def render_markdown() -> str:
    lines = [
        "# Bad inputs: one clear error each",
        "",
        "Generated from `tests/faults/bad_inputs.py` (`python -m tests.faults.bad_inputs --write`); "
        "`tests/faults/test_bad_inputs.py` runs every row and fails if this file is out of date.",
        "",
        "Every row exits with the status shown, prints exactly one `error:` line on stderr and no traceback, "
        "and starts no Ray cluster. The regex is what that line must match: it names the flag, key or file "
        "and says how to fix it.",
        "",
        "| # | case | bad input | command | exit | stderr matches |",
        "|---|------|-----------|---------|------|----------------|",
    ]
    for n, case in enumerate(CASES, 1):
        cmd = " ".join([case.entry, *(_shown(a) for a in case.argv)])
        lines.append(f"| {n} | {case.id} | {_cell(case.what)} | `{_cell(cmd)}` | {case.exit_code} | "
                     f"`{_cell(case.stderr)}` |")
    lines += ["", "Placeholders (built in each case's own temp folder; `<checkpoint>` is one real checkpoint that "
              "the cases share read-only):", "",
              "| placeholder | what it is |", "|-------------|------------|",
              "| `<tmp>` | the case's own empty temp folder |"]
    lines += [f"| `<{name}>` | {_cell(desc)} |" for name, (desc, _) in FIXTURES.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.faults.bad_inputs", description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"regenerate {MARKDOWN.name}")
    ap.add_argument("--run", action="store_true", help="run every case and print what it printed")
    args = ap.parse_args(argv)
    if args.write:
        MARKDOWN.write_text(render_markdown())
        print(f"wrote {MARKDOWN}")
    if args.run:
        root = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
        env = subprocess_env()
        try:
            shared = {"checkpoint": str(build_checkpoint(root, env))}
        finally:
            cleanup_env(env)
        for case in CASES:
            out = run_case(case, root / case.id, shared)
            ok = (out.returncode == case.exit_code and len(out.error_lines) == 1
                  and re.search(case.stderr, out.error_lines[0]) is not None and "Traceback" not in out.stderr)
            print(f"{'ok  ' if ok else 'FAIL'} {case.id:<28} exit {out.returncode} {out.seconds:5.1f}s "
                  f"ray={'yes' if out.started_ray else 'no'}  {' | '.join(out.error_lines) or out.stderr[-300:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
