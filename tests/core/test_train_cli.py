"""``python -m core.train``: the standalone entry point, end to end in a subprocess."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args, cwd=REPO):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "core.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_smoke_test_writes_metrics_and_checkpoints(tmp_path):
    out = tmp_path / "run"
    proc = run("--smoke-test", "--out", str(out), "--set", "loss=aligned")
    assert proc.returncode == 0, proc.stderr
    history = json.loads((out / "metrics.json").read_text())
    assert [m["epoch"] for m in history] == [1, 2]
    assert "loss_uniformity" in history[0] and "recall_at_1" in history[0]
    # last/ resumes (with the optimizer's state), best/ is for evaluation and ensembles (the model only)
    assert {p.name for p in (out / "last").iterdir()} == {"checkpoint.pt", "training_state.pt", "config.json",
                                                           "embeddings.npz"}
    assert {p.name for p in (out / "best").iterdir()} == {"checkpoint.pt", "config.json", "embeddings.npz"}
    assert "recall_at_1" in proc.stderr + proc.stdout  # the per-epoch table header
    # continue the same run for one more epoch from its last checkpoint
    proc = run("--smoke-test", "--out", str(out), "--set", "loss=aligned", "--epochs", "3",
               "--resume", str(out / "last"))
    assert proc.returncode == 0, proc.stderr
    assert [m["epoch"] for m in json.loads((out / "metrics.json").read_text())] == [1, 2, 3]


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    for args, expected in ((["--set", "temprature=0.1"], "did you mean 'temperature'"),
                           (["--set", "lr"], "expected KEY=VALUE"),
                           (["--data", str(tmp_path / "missing")], "does not exist")):
        proc = run("--smoke-test", "--out", str(tmp_path / "x"), *args)
        assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_data_refused_after_out_was_made_leaves_no_empty_out_behind(tmp_path):
    from tests.faults.damaged_fixtures import tiny_folder

    out = tmp_path / "new" / "run"
    proc = run("--smoke-test", "--data", str(tiny_folder(tmp_path)), "--out", str(out))
    assert proc.returncode == 2 and "split of dataset 'tiny_folder' holds 1 motion(s) of 5" in proc.stderr, proc.stderr
    assert not out.exists()


def test_a_finished_run_is_kept_unless_overwrite_is_asked(tmp_path):
    out = tmp_path / "run"
    assert run("--smoke-test", "--out", str(out), "--epochs", "1").returncode == 0
    before = (out / "metrics.json").read_text()
    refused = run("--smoke-test", "--out", str(out), "--epochs", "1", "--set", "seed=1")
    assert refused.returncode == 2 and "already holds a run (1 epoch(s)" in refused.stderr, refused.stderr
    assert (out / "metrics.json").read_text() == before
    replaced = run("--smoke-test", "--out", str(out), "--epochs", "1", "--set", "seed=1", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    history = json.loads((out / "metrics.json").read_text())
    assert len(history) == 1 and json.loads((out / "last" / "config.json").read_text())["seed"] == 1


def test_ctrl_c_at_random_moments_keeps_metrics_and_checkpoints_in_step(tmp_path):
    """SIGINT while an epoch's files are written (last/, best/, metrics.json) used to leave metrics.json an epoch
    short after --resume; now the signal waits until they agree, and the run ends with the resume hint."""
    import random
    import signal
    import time

    from core.checkpoint import read_checkpoint

    out, rng = tmp_path / "run", random.Random(0)
    base = ["--smoke-test", "--out", str(out), "--epochs", "30"]   # ~0.2 s an epoch: Ctrl+C lands mid-run
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    resume: list[str] = []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "core.train", *base, *resume], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started, deadline = time.time(), time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not (
                (out / "metrics.json").exists() and (out / "metrics.json").stat().st_mtime > started):
            time.sleep(0.05)   # until this run has written an epoch
        time.sleep(rng.uniform(0.0, 2.0))   # somewhere in the next epochs, their writes included
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
        if proc.returncode == 0:   # it finished before the signal: the last run below resumes a finished run
            resume = ["--resume", str(out / "last")]
            break
        assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
        assert f"--resume {out / 'last'}" in stderr
        epochs = [m["epoch"] for m in json.loads((out / "metrics.json").read_text())]
        saved = [m["epoch"] for m in read_checkpoint(out / "last", training=True)["history"]]
        assert epochs == saved == list(range(1, len(epochs) + 1)), (epochs, saved)
        resume = ["--resume", str(out / "last")]
    proc = run(*base, *resume)
    assert proc.returncode == 0, proc.stderr
    assert [m["epoch"] for m in json.loads((out / "metrics.json").read_text())] == list(range(1, 31))
