"""run_ensemble.py end to end: --smoke-test builds a real ensemble; then build options, queries and errors."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from results import ensemble_cli as run_ensemble   # what run_ensemble.py runs
from results.demo_experiment import SMOKE_MEMBERS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("smoke") / "exp"
    assert run_ensemble.main(["--smoke-test", str(out), "--quiet"]) == 0
    return out


def test_smoke_test_trains_builds_and_queries(smoke, capsys):
    files = sorted(p.name for p in (smoke / "ensemble").iterdir())
    assert files == ["manifest.json", "members_vs_ensemble.png", "metrics.json", "predictions_test.csv"]
    manifest = json.loads((smoke / "ensemble" / "manifest.json").read_text())
    assert len(manifest["members"]) == len(SMOKE_MEMBERS)
    assert manifest["method"] in ("single", "borda", "rrf", "mean_sim")     # auto: a fusion only if it helps on val
    assert (manifest["method"] == "single") == manifest["fallback"]


def test_build_options_and_the_fewer_than_k_rule(smoke, capsys):
    assert run_ensemble.main([str(smoke), "--top-k", "5"]) == 2
    assert "--allow-fewer" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="fewer than top_k=5"):
        assert run_ensemble.main([str(smoke), "--top-k", "5", "--allow-fewer", "--method", "mean_sim",
                                  "--weights", "1,2", "3"]) == 0
    out = capsys.readouterr().out
    assert "> mean_sim, given-weighted, all (3 of 3)" in out and "note: only 3 finished" in out
    manifest = json.loads((smoke / "ensemble" / "manifest.json").read_text())
    assert manifest["weights"] == [1.0, 2.0, 3.0] and manifest["method"] == "mean_sim" and not manifest["fallback"]
    assert run_ensemble.main([str(smoke), "--top-k", "3", "--weights", "1", "1"]) == 2
    assert "weights" in capsys.readouterr().err


def test_query_an_ensemble_and_a_checkpoint_dir(smoke, capsys):
    assert run_ensemble.main([str(smoke), "--top-k", "2", "--method", "rrf", "--weighting", "val", "--quiet"]) == 0
    capsys.readouterr()
    assert run_ensemble.main([str(smoke), "--query", "a person hands an object to another", "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("query: 'a person hands an object to another'") and len(lines) == 2 + 3
    assert [line.split()[0] for line in lines[2:]] == ["1", "2", "3"]
    checkpoint = next(smoke.glob("trial_*/checkpoint_*"))
    assert run_ensemble.main([str(checkpoint), "--query", "a person walks", "--split", "val"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2 + 10
    assert run_ensemble.main([str(checkpoint)]) == 2          # one model: query it, do not "ensemble" it
    assert "can be queried" in capsys.readouterr().err


def test_errors_exit_2_with_one_message(tmp_path, capsys):
    assert run_ensemble.main([str(tmp_path / "missing"), "--top-k", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_ensemble.main([str(tmp_path), "--query", "a person walks"]) == 2
    assert "checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_ensemble.main([])
    with pytest.raises(SystemExit):
        run_ensemble.main([str(tmp_path), "--weights", "heavy"])


def test_script_entry_point_runs():
    proc = subprocess.run([sys.executable, str(REPO / "run_ensemble.py"), "--help"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0 and "--top-k" in proc.stdout and "--query" in proc.stdout


def test_a_copied_experiment_uses_its_own_checkpoints(smoke, tmp_path, capsys):
    assert run_ensemble.main([str(smoke), "--top-k", "3", "--quiet"]) == 0
    manifest = json.loads((smoke / "ensemble" / "manifest.json").read_text())
    assert all(not Path(m["checkpoint"]).is_absolute() for m in manifest["members"])   # relative to the experiment
    copy = tmp_path / "synced"
    shutil.copytree(smoke, copy)
    original = smoke.with_name("exp.away")
    smoke.rename(original)   # the original is gone: the copy must not need it
    try:
        capsys.readouterr()
        assert run_ensemble.main([str(copy), "--query", "two people shake hands", "--top", "2"]) == 0
        assert "rank" in capsys.readouterr().out
        # A manifest written with absolute paths (before they were relative) is re-rooted at the copy.
        old = json.loads((copy / "ensemble" / "manifest.json").read_text())
        old["experiment_dir"] = str(smoke)
        for m in old["members"]:
            m["checkpoint"] = str(smoke / m["checkpoint"])
        (copy / "ensemble" / "manifest.json").write_text(json.dumps(old))
        assert run_ensemble.main([str(copy), "--query", "two people shake hands", "--top", "2"]) == 0
    finally:
        original.rename(smoke)


def test_a_damaged_manifest_is_one_error_with_the_fix(smoke, tmp_path, capsys):
    copy = tmp_path / "damaged"
    shutil.copytree(smoke, copy)
    text = (copy / "ensemble" / "manifest.json").read_text()
    (copy / "ensemble" / "manifest.json").write_text(text[: len(text) // 2])
    assert run_ensemble.main([str(copy), "--query", "a person walks"]) == 2
    err = capsys.readouterr().err
    assert "manifest.json: not a readable ensemble manifest" in err and "Fix: rebuild it: python run_ensemble.py" in err


def test_one_build_at_a_time_the_second_exits_2_with_the_holder(smoke, tmp_path, capsys):
    """Two builds of one experiment at once removed each other's temp folders (4 of 11 runs of a probe left only
    the plot): the second now stops before encoding anything, naming the build that holds the ensemble."""
    import os
    import socket

    from results.ensemble import ENSEMBLE_LOCK

    copy = tmp_path / "busy"
    shutil.copytree(smoke, copy)
    before = {p.name: p.read_bytes() for p in (copy / "ensemble").iterdir()}
    holder = {"host": socket.gethostname(), "pid": os.getppid(), "started": 0, "command": "run_ensemble.py"}
    (copy / ENSEMBLE_LOCK).write_text(json.dumps(holder))   # a live process (pytest's parent) is building it
    assert run_ensemble.main([str(copy), "--quiet", "--top-k", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "another ensemble build is writing" in err and f"pid {os.getppid()}" in err
    assert {p.name: p.read_bytes() for p in (copy / "ensemble").iterdir()} == before   # untouched
    (copy / ENSEMBLE_LOCK).unlink()


def test_two_builds_started_together_leave_one_whole_ensemble(smoke, tmp_path):
    """The real race, several times: both processes end (0, or 2 for the one that found the lock taken), never
    saying "wrote" about a half ensemble, and ensemble/ ends whole."""
    copy = tmp_path / "race"
    shutil.copytree(smoke, copy)
    cmd = [sys.executable, str(REPO / "run_ensemble.py"), str(copy), "--quiet", "--top-k", "3"]
    for _ in range(3):
        procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        codes = sorted(p.returncode for p in procs)
        assert codes in ([0, 0], [0, 2]), (codes, outs)
        for p, (out, err) in zip(procs, outs):
            assert "Traceback" not in err, err
            if p.returncode == 2:
                assert "another ensemble build is writing" in err and err.count("error:") == 1
        files = sorted(p.name for p in (copy / "ensemble").iterdir())
        assert files == ["manifest.json", "members_vs_ensemble.png", "metrics.json", "predictions_test.csv"]
        json.loads((copy / "ensemble" / "manifest.json").read_text())
    assert not list(copy.glob(".ensemble-tmp-*")) and not (copy / ".ensemble.lock").exists()
