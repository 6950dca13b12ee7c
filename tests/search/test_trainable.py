"""search/trainable.py without Ray: train_trial with core.train and Tune's session functions replaced by
recorders (divergence, other errors, restore from Tune's checkpoint)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest


class FakeCoreTrain:
    """Stands in for core.train inside train_trial: replays epochs, optionally diverging."""

    class NonFiniteLossError(RuntimeError):
        pass

    def __init__(self, epochs: int, diverge_after: int | None = None, error: Exception | None = None):
        self.epochs, self.diverge_after, self.error = epochs, diverge_after, error
        self.calls: list[dict] = []

    def train_retrieval(self, config, reporter, *, shared=None, resume_from=None):
        self.calls.append({"config": config, "shared": shared, "resume_from": resume_from})
        for epoch in range(1, self.epochs + 1):
            if self.error is not None:
                raise self.error
            if self.diverge_after is not None and epoch > self.diverge_after:
                raise self.NonFiniteLossError(f"loss is nan at epoch {epoch}")
            reporter({"epoch": epoch, "recall_at_1": 10.0 * epoch}, None)


@pytest.fixture
def adapter(monkeypatch):
    """train_trial with core.train and ray.tune's session functions replaced by recorders."""
    import core
    from search import trainable

    reports: list[dict] = []
    state = {"checkpoint": None}

    def install(fake: FakeCoreTrain):
        monkeypatch.setitem(sys.modules, "core.train", fake)
        monkeypatch.setattr(core, "train", fake, raising=False)
        monkeypatch.setattr(trainable.tune, "report",
                            lambda metrics, checkpoint=None: reports.append(dict(metrics)))
        monkeypatch.setattr(trainable.tune, "get_checkpoint", lambda: state["checkpoint"])
        return trainable.train_trial

    return install, reports, state


def test_divergence_is_reported_as_a_useless_model_not_an_error(adapter):
    install, reports, _ = adapter
    train_trial = install(FakeCoreTrain(epochs=5, diverge_after=2))
    train_trial({"lr": 0.5}, shared="SHARED")
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert reports[-1]["recall_at_1"] == 0.0 and reports[-1]["diverged"] == 1.0
    # Tune records the epoch as its iteration: a restore from an older checkpoint cannot leave it one short
    assert [r["training_iteration"] for r in reports] == [1, 2, 3]


def test_other_trainer_errors_propagate_for_failure_config(adapter):
    install, reports, _ = adapter
    train_trial = install(FakeCoreTrain(epochs=3, error=MemoryError("out of memory")))
    with pytest.raises(MemoryError):
        train_trial({}, shared=None)
    assert reports == []


def test_restored_trial_resumes_from_tunes_checkpoint(adapter, tmp_path):
    from ray import tune

    install, reports, state = adapter
    fake = FakeCoreTrain(epochs=1)
    train_trial = install(fake)
    import torch

    # a whole, resumable checkpoint (a cut-off or stripped one: tests/search/test_tune_state.py)
    torch.save({"epoch": 3}, tmp_path / "checkpoint.pt")
    torch.save({"optimizer": {}, "scheduler": {}}, tmp_path / "training_state.pt")
    state["checkpoint"] = tune.Checkpoint.from_directory(str(tmp_path))
    train_trial({"lr": 1e-4}, shared="SHARED")
    call = fake.calls[0]
    assert call["shared"] == "SHARED" and call["config"] == {"lr": 1e-4}
    assert Path(call["resume_from"]) == tmp_path


def _checkpoint(folder: Path, epoch: int, resumable: bool = True) -> Path:
    import torch

    folder.mkdir(parents=True)
    torch.save({"epoch": epoch}, folder / "checkpoint.pt")
    if resumable:
        torch.save({"optimizer": {}, "scheduler": {}}, folder / "training_state.pt")
    return folder


def test_a_trial_whose_tune_checkpoint_was_emptied_continues_from_the_newer_one_and_numbers_on(
        adapter, tmp_path, monkeypatch):
    """A driver killed after Tune registered checkpoint_000002 (and retention emptied checkpoint_000001), before its
    state was saved: Tune restores the trial from checkpoint_000001. It continues from checkpoint_000002, and its
    next checkpoint must go to checkpoint_000003, not over checkpoint_000002 (which the record names for epoch 3)."""
    from ray import tune
    from search import trainable

    install, _, state = adapter
    fake = FakeCoreTrain(epochs=1)
    train_trial = install(fake)
    numbered: list[str] = []
    monkeypatch.setattr(trainable, "continue_checkpoint_numbering", numbered.append)
    trial = tmp_path / "trial_x"
    emptied = trial / "checkpoint_000001"
    emptied.mkdir(parents=True)
    (emptied / "retired.json").write_text("{}")
    newer = _checkpoint(trial / "checkpoint_000002", epoch=3)
    state["checkpoint"] = tune.Checkpoint.from_directory(str(emptied))
    train_trial({}, shared=None)
    assert Path(fake.calls[0]["resume_from"]) == newer
    assert [Path(n).name for n in numbered] == ["checkpoint_000002"]


def test_a_trial_resumed_at_its_last_epoch_reports_that_epoch_again(adapter, tmp_path, monkeypatch):
    """Killed after the trial stored its last checkpoint, before its end was recorded: restored, it has nothing left
    to train; it reports that epoch again (without a checkpoint), or Tune would end the search on a result
    without R@1 (bench/kill_points caught it)."""
    import json

    from ray import tune
    from search import trainable

    install, reports, state = adapter
    fake = FakeCoreTrain(epochs=0)   # resumed at its last epoch: core.train reports nothing
    train_trial = install(fake)
    monkeypatch.setattr(trainable, "continue_checkpoint_numbering", lambda _: None)
    last = _checkpoint(tmp_path / "trial_x" / "checkpoint_000002", epoch=3)
    (last / "report.json").write_text(json.dumps({"epoch": 3, "recall_at_1": 41.0, "val_loss": 1.0}))
    state["checkpoint"] = tune.Checkpoint.from_directory(str(last))
    train_trial({}, shared=None)
    assert reports == [{"epoch": 3, "recall_at_1": 41.0, "training_iteration": 3}]


def test_a_trial_that_reported_keeps_its_own_results_only(adapter, tmp_path):
    from ray import tune

    install, reports, state = adapter
    train_trial = install(FakeCoreTrain(epochs=2))
    state["checkpoint"] = tune.Checkpoint.from_directory(str(_checkpoint(tmp_path / "trial_x" / "checkpoint_000000",
                                                                         epoch=1)))
    train_trial({}, shared=None)
    assert [r["epoch"] for r in reports] == [1, 2]
