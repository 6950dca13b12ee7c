"""Files and folders the bad-input table (tests/faults/bad_inputs.py) breaks things in, one builder each.

``FIXTURES[name] = (description, build(root) -> path)``: each case builds the ones its argv names into its own
temp folder.  ``checkpoint`` is the exception: one real checkpoint trained once and shared read-only.
"""
from __future__ import annotations

import json
import pickle
import socket
from pathlib import Path
from typing import Callable

import numpy as np

from tests.core.data.fabricated import make_folder, make_humanml3d, make_joints_folder, write_bvh
from tests.faults.bad_inputs_retrieval import FIXTURES as RETRIEVAL_FIXTURES
from tests.faults.damaged_fixtures import FIXTURES as DAMAGED_FIXTURES


def _folder(root: Path, name: str) -> Path:
    """A valid 3-motion folder dataset (motions a, b, c; D = 6) to break one thing in."""
    return make_folder(root / name)


def corrupt_npy(root: Path) -> Path:
    data = _folder(root, "corrupt_npy")
    (data / "motions" / "b.npy").write_bytes(b"\x93NUMPY this file was truncated")
    return data


def nan_npy(root: Path) -> Path:
    data = _folder(root, "nan_npy")
    x = np.load(data / "motions" / "b.npy")
    x[3, 2] = np.nan
    np.save(data / "motions" / "b.npy", x)
    return data


def wrong_shape_npy(root: Path) -> Path:
    data = _folder(root, "wrong_shape_npy")
    np.save(data / "motions" / "b.npy", np.zeros((12, 2, 3), np.float32))
    return data


def empty_caption(root: Path) -> Path:
    data = _folder(root, "empty_caption")
    with open(data / "captions.csv", "a") as fh:
        fh.write('c,"   "\n')
    return data


def unquoted_comma(root: Path) -> Path:
    data = _folder(root, "unquoted_comma")
    (data / "captions.csv").write_text("id,text\na,two people shake hands\nb,one pushes, the other falls\nc,they hug\n")
    return data


def latin1_csv(root: Path) -> Path:
    data = _folder(root, "latin1_csv")
    (data / "captions.csv").write_bytes("id,text\na,a café greeting\nb,a push\nc,they hug\n".encode("latin-1"))
    return data


def utf16_csv(root: Path) -> Path:
    data = _folder(root, "utf16_csv")
    (data / "captions.csv").write_bytes("id,text\na,greet\nb,a push\nc,they hug\n".encode("utf-16"))
    return data


def latin1_jsonl(root: Path) -> Path:
    data = make_folder(root / "latin1_jsonl", captions="jsonl")
    (data / "captions.jsonl").write_bytes('{"id": "a", "text": "a café greeting"}\n'.encode("latin-1")
                                          + (data / "captions.jsonl").read_bytes())
    return data


def npz_as_npy(root: Path) -> Path:
    data = _folder(root, "npz_as_npy")
    with open(data / "motions" / "b.npy", "wb") as fh:
        np.savez(fh, motion=np.zeros((12, 6), np.float32))
    return data


def zero_features(root: Path) -> Path:
    data = _folder(root, "zero_features")
    for motion_id in ("a", "b", "c"):
        np.save(data / "motions" / f"{motion_id}.npy", np.zeros((12, 0), np.float32))
    return data


def overlapping_splits(root: Path) -> Path:
    data = _folder(root, "overlapping_splits")
    (data / "splits").mkdir()
    (data / "splits" / "train.txt").write_text("a\nb\n")
    (data / "splits" / "val.txt").write_text("b\n")
    (data / "splits" / "test.txt").write_text("c\n")
    return data


def duplicated_split_id(root: Path) -> Path:
    data = _folder(root, "duplicated_split_id")
    (data / "splits").mkdir()
    (data / "splits" / "train.txt").write_text("a\nb\na\n")   # a twice: it would be sampled twice as often
    (data / "splits" / "val.txt").write_text("c\n")
    return data


def infinite_fps(root: Path) -> Path:
    data = _folder(root, "infinite_fps")
    (data / "meta.json").write_text('{"fps": Infinity}')
    return data


def string_npy(root: Path) -> Path:
    data = _folder(root, "string_npy")
    np.save(data / "motions" / "b.npy", np.array([["1.0", "2.0"], ["3.0", "4.0"]]))
    return data


def split_without_file(root: Path) -> Path:
    data = _folder(root, "split_without_file")
    (data / "splits").mkdir()
    (data / "splits" / "train.txt").write_text("a\nb\nzzz\n")
    return data


def malformed_bvh(root: Path) -> Path:
    data = root / "malformed_bvh"
    good = write_bvh(data / "walk.bvh")
    (data / "walk.txt").write_text("a person walks forward\n")
    text = good.read_text().splitlines()
    # Row 5 of the motion loses its last two values (a truncated export).
    text[-3] = " ".join(text[-3].split()[:-2])
    (data / "run.bvh").write_text("\n".join(text) + "\n")
    (data / "run.txt").write_text("a person runs\n")
    return data


def kit_joints(root: Path) -> Path:
    data = make_joints_folder(root / "kit_joints")
    for name in ("a", "b", "c"):   # KIT-ML's 21-joint skeleton: same layout, one joint fewer
        np.save(data / "motions" / f"{name}.npy", np.load(data / "motions" / f"{name}.npy")[:, :21])
    return data


def empty_dir(root: Path) -> Path:
    (root / "empty_dir").mkdir()
    return root / "empty_dir"


def not_a_dir(root: Path) -> Path:
    (root / "a_file").write_text("a file where a folder is expected\n")
    return root / "a_file"


class _WritesAMarker:
    """Unpickling this runs code: it creates the file named ``marker`` (a harmless stand-in for an attack)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def code_checkpoint(root: Path) -> Path:
    """A checkpoint folder whose checkpoint.pt runs code when unpickled (creates root/PWNED)."""
    import torch

    folder = root / "code_checkpoint"
    folder.mkdir()
    torch.save({"model": {}, "config": {}, "payload": _WritesAMarker(root / "PWNED")}, folder / "checkpoint.pt")
    return folder


def torn_checkpoint(root: Path) -> Path:
    """A checkpoint folder whose checkpoint.pt was cut in half (a crash mid-copy)."""
    import torch

    folder = root / "torn_checkpoint"
    folder.mkdir()
    torch.save({"model": {"w": torch.zeros(64, 64)}, "config": {}}, folder / "checkpoint.pt")
    data = (folder / "checkpoint.pt").read_bytes()
    (folder / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    return folder


def finished_run(root: Path) -> Path:
    """A `python -m core.train --out` folder holding a finished 2-epoch run (metrics.json + last/ + best/)."""
    run = root / "finished_run"
    for name in ("last", "best"):
        (run / name).mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps([{"epoch": 1, "recall_at_1": 30.0}, {"epoch": 2, "recall_at_1": 33.3}]))
    return run


def storage_with_a_file(root: Path) -> Path:
    """A --storage folder where the experiment name 'taken' is a plain file."""
    (root / "store").mkdir()
    (root / "store" / "taken").write_text("not an experiment\n")
    return root / "store"


def _state(exp: Path, trials: list[tuple[dict, dict]]) -> None:
    exp.mkdir(parents=True, exist_ok=True)
    data = {"trial_data": [[json.dumps(t), json.dumps(m)] for t, m in trials], "runner_data": {},
            "stats": {"start_time": 1.0}}
    (exp / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(data))


def experiment_without_trials(root: Path) -> Path:
    exp = root / "no_trials"
    _state(exp, [])
    return exp


def experiment_without_checkpoints(root: Path) -> Path:
    """One trial that crashed before its first epoch: nothing to ensemble."""
    exp = root / "no_checkpoints"
    trial = exp / "trial_aaaa0001"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"epochs": 2}))
    (trial / "error.txt").write_text("Failure # 1 (occurred at 2026-01-01_00-00-00)\nRuntimeError: boom\n")
    _state(exp, [({"trial_id": "aaaa0001", "status": "ERROR", "relative_logdir": trial.name},
                  {"num_failures": 1, "error_filename": "error.txt"})])
    return exp


def two_finished_trials(root: Path) -> Path:
    """Two TERMINATED trials with a checkpoint folder each (the top-k check comes before any is loaded)."""
    exp = root / "two_trials"
    entries = []
    for n, r1 in ((1, 10.0), (2, 12.0)):
        trial_id = f"bbbb000{n}"
        trial = exp / f"trial_{trial_id}"
        (trial / "checkpoint_000000").mkdir(parents=True)
        (trial / "checkpoint_000000" / "checkpoint.pt").write_bytes(b"placeholder")
        (trial / "params.json").write_text(json.dumps({"epochs": 1}))
        (trial / "result.json").write_text(json.dumps(
            {"epoch": 1, "training_iteration": 1, "trial_id": trial_id, "recall_at_1": r1,
             "weighted_recall": 2 * r1, "checkpoint_dir_name": "checkpoint_000000", "done": True}) + "\n")
        entries.append(({"trial_id": trial_id, "status": "TERMINATED", "relative_logdir": trial.name}, {}))
    _state(exp, entries)
    return exp


def stored_search(root: Path) -> Path:
    """Storage holding experiment 'stored': its search_args.json, written when a search starts; no Tune state
    (the driver stopped before Tune saved any)."""
    from search import resolve_args
    from search.storage import ARGS_FILE, write_json

    args = resolve_args({"storage": str(root / "storage"), "name": "stored", "smoke_test": True, "wandb": False})
    write_json(str(Path(args.experiment_path) / ARGS_FILE), args.to_json())
    return Path(args.storage)


def stored_torn_state(root: Path) -> Path:
    """Storage holding experiment 'stored' whose Tune state a full disk cut off, with no complete copy kept."""
    storage = stored_search(root)
    (storage / "stored" / "tuner.pkl").write_bytes(pickle.dumps({}))   # written whole when the search started
    (storage / "stored" / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_data": [["{\\"trial_')
    return storage


def stored_damaged_args(root: Path) -> Path:
    """Storage holding experiment 'stored' whose search_args.json was cut off."""
    storage = stored_search(root)
    args_file = storage / "stored" / "search_args.json"
    args_file.write_text(args_file.read_text()[:40])
    return storage


def stored_future_args(root: Path) -> Path:
    """Storage holding experiment 'stored' whose search_args.json has a key this version does not know."""
    storage = stored_search(root)
    args_file = storage / "stored" / "search_args.json"
    args_file.write_text(json.dumps({**json.loads(args_file.read_text()), "future_flag": True}))
    return storage


def closed_port(root: Path) -> str:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def hml263(root: Path) -> Path:
    return make_humanml3d(root / "hml263")


def raw_features(root: Path) -> Path:
    """30 motions of 7 unnamed feature columns: a valid dataset whose joints are unknown."""
    data = root / "raw_features"
    (data / "motions").mkdir(parents=True)
    rng = np.random.default_rng(3)
    lines = ["id,text"]
    for i in range(30):
        np.save(data / "motions" / f"m{i:02d}.npy", rng.normal(size=(16, 7)).astype(np.float32))
        lines.append(f"m{i:02d},motion number {i}")
    (data / "captions.csv").write_text("\n".join(lines) + "\n")
    return data


def gar_missing_part(root: Path) -> Path:
    """Folder dataset whose captions.jsonl holds GAR records; line 2 has no torso description."""
    import json

    data = make_folder(root / "gar_missing_part", captions="jsonl")
    parts = {"torso": "stays upright", "left_arm": "rests", "right_arm": "waves", "left_leg": "stands still",
             "right_leg": "stands still"}
    lines = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines()]
    records = [{"id": r["id"], "caption": r["text"], "part_descriptions": dict(parts)} for r in lines]
    del records[1]["part_descriptions"]["torso"]
    (data / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return data


FIXTURES: dict[str, tuple[str, Callable[[Path], Path | str]]] = {
    "corrupt_npy": ("folder dataset whose motions/b.npy is truncated garbage", corrupt_npy),
    "nan_npy": ("folder dataset whose motions/b.npy holds a NaN", nan_npy),
    "wrong_shape_npy": ("folder dataset whose motions/b.npy is (12, 2, 3) instead of (T, D)", wrong_shape_npy),
    "empty_caption": ("folder dataset whose captions.csv has a blank caption for c", empty_caption),
    "split_without_file": ("folder dataset whose splits/train.txt names id zzz (no motions/zzz.npy)",
                           split_without_file),
    "unquoted_comma": ("folder dataset whose captions.csv (id,text) has an unquoted comma in b's caption",
                       unquoted_comma),
    "latin1_csv": ("folder dataset whose captions.csv is Latin-1 ('café')", latin1_csv),
    "utf16_csv": ("folder dataset whose captions.csv is UTF-16", utf16_csv),
    "latin1_jsonl": ("folder dataset whose captions.jsonl is Latin-1 ('café') on line 1", latin1_jsonl),
    "npz_as_npy": ("folder dataset whose motions/b.npy is an .npz archive", npz_as_npy),
    "zero_features": ("folder dataset whose motions are (12, 0) arrays", zero_features),
    "overlapping_splits": ("folder dataset whose splits/train.txt and val.txt both list b", overlapping_splits),
    "duplicated_split_id": ("folder dataset whose splits/train.txt lists a on lines 1 and 3", duplicated_split_id),
    "infinite_fps": ("folder dataset whose meta.json says {\"fps\": Infinity}", infinite_fps),
    "string_npy": ("folder dataset whose motions/b.npy is an array of strings", string_npy),
    "malformed_bvh": ("BVH folder whose run.bvh has a frame line with 2 values missing", malformed_bvh),
    "kit_joints": ("joint-position folder (motions/*.npy + captions.csv) of KIT-ML 21-joint positions (T, 21, 3)",
                   kit_joints),
    "raw_features": ("a valid folder dataset of 30 motions with 7 unnamed feature columns (joints unknown)",
                     raw_features),
    "gar_missing_part": ("folder dataset of GAR records (caption + part_descriptions); line 2 lacks 'torso'",
                         gar_missing_part),
    "hml263": ("a valid HumanML3D folder of 5 motions (new_joint_vecs/*.npy of 263-d features, texts/, train/val "
               "split files)", hml263),
    "empty_dir": ("an empty folder", empty_dir),
    "not_a_dir": ("a plain file", not_a_dir),
    "no_trials": ("experiment folder whose experiment_state lists no trial", experiment_without_trials),
    "no_checkpoints": ("experiment with one ERROR trial that never reported an epoch", experiment_without_checkpoints),
    "two_trials": ("experiment with 2 TERMINATED trials, each with a checkpoint", two_finished_trials),
    "stored": ("storage with experiment 'stored': search_args.json but no Tune state", stored_search),
    "stored_torn_state": ("storage with experiment 'stored' whose experiment_state-*.json is cut off, no copy kept",
                          stored_torn_state),
    "stored_damaged_args": ("storage with experiment 'stored' whose search_args.json is cut off after 40 characters",
                            stored_damaged_args),
    "stored_future_args": ("storage with experiment 'stored' whose search_args.json has an extra key future_flag",
                           stored_future_args),
    "closed_port": ("a free loopback port (nothing listens)", closed_port),
    "code_checkpoint": ("checkpoint folder whose checkpoint.pt runs code when unpickled", code_checkpoint),
    "torn_checkpoint": ("checkpoint folder whose checkpoint.pt is cut in half", torn_checkpoint),
    "finished_run": ("core.train output folder of a finished 2-epoch run (best R@1 33.3)", finished_run),
    "storage_with_a_file": ("--storage folder in which the name 'taken' is a plain file", storage_with_a_file),
    **DAMAGED_FIXTURES,
    **RETRIEVAL_FIXTURES,
    "checkpoint": ("a real checkpoint of `python -m core.train --smoke-test --epochs 1` (hidden_dim 64)", None),
}
