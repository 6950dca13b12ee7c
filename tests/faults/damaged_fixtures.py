"""More things the bad-input table breaks: splits too small to score, and files damaged or written by something else
(issue 23's families 2 and 3). Same contract as bad_input_fixtures.py: ``build(root) -> path`` into the case's own
temp folder; bad_input_fixtures.FIXTURES includes these.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Callable

import numpy as np


def _split_folder(root: Path, name: str, val: int, test: int = 5) -> Path:
    """30 motions of 7 feature columns with split files: ``val`` and ``test`` motions held out, the rest train."""
    data = root / name
    (data / "motions").mkdir(parents=True)
    (data / "splits").mkdir()
    rng = np.random.default_rng(4)
    ids = [f"m{i:02d}" for i in range(30)]
    for i, motion_id in enumerate(ids):
        np.save(data / "motions" / f"{motion_id}.npy", rng.normal(size=(16, 7)).astype(np.float32))
    (data / "captions.csv").write_text("id,text\n" + "".join(f"{m},motion number {i}\n" for i, m in enumerate(ids)))
    parts = {"val": ids[:val], "test": ids[val:val + test], "train": ids[val + test:]}
    for split, members in parts.items():
        (data / "splits" / f"{split}.txt").write_text("".join(f"{m}\n" for m in members))
    return data


def tiny_folder(root: Path) -> Path:
    """5 motions, no split files: the hashed split leaves 1 for val and none for test."""
    data = root / "tiny_folder"
    (data / "motions").mkdir(parents=True)
    rng = np.random.default_rng(5)
    for i in range(5):
        np.save(data / "motions" / f"m{i}.npy", rng.normal(size=(16, 7)).astype(np.float32))
    (data / "captions.csv").write_text("id,text\n" + "".join(f"m{i},motion number {i}\n" for i in range(5)))
    return data


def one_motion_val(root: Path) -> Path:
    return _split_folder(root, "one_motion_val", val=1)


def one_motion_test(root: Path) -> Path:
    return _split_folder(root, "one_motion_test", val=5, test=1)


def one_motion_train(root: Path) -> Path:
    return _split_folder(root, "one_motion_train", val=24, test=5)


def repeated_header(root: Path) -> Path:
    """captions.csv whose header names 'text' twice: csv.DictReader would take every caption from the second."""
    from tests.faults.bad_input_fixtures import _folder

    data = _folder(root, "repeated_header")
    (data / "captions.csv").write_text("id,text,text\na,a person walks,label0\nb,a person runs,label1\n"
                                       "c,a person jumps,label2\n")
    return data


def empty_val_file(root: Path) -> Path:
    data = _split_folder(root, "empty_val_file", val=5)
    (data / "splits" / "val.txt").write_text("")
    return data


def misnamed_split_file(root: Path) -> Path:
    data = _split_folder(root, "misnamed_split_file", val=5)
    (data / "splits" / "val.txt").rename(data / "splits" / "valid.txt")
    return data


def huge_npy(root: Path) -> Path:
    data = _split_folder(root, "huge_npy", val=5)
    np.save(data / "motions" / "m10.npy", np.full((16, 7), 1e300))   # finite float64, not representable in float32
    return data


def _stored(root: Path, **changes) -> Path:
    """Storage holding experiment 'stored' whose search_args.json has ``changes`` over what a search writes."""
    from tests.faults.bad_input_fixtures import stored_search

    storage = stored_search(root)
    args_file = storage / "stored" / "search_args.json"
    args_file.write_text(json.dumps({**json.loads(args_file.read_text()), **changes}))
    return storage


def stored_string_numbers(root: Path) -> Path:
    return _stored(root, num_samples="6")


def stored_zero_epochs(root: Path) -> Path:
    return _stored(root, max_epochs=0)


def stored_bool_seed(root: Path) -> Path:
    return _stored(root, seed=True)


def stored_bad_overrides(root: Path) -> Path:
    return _stored(root, overrides={"lr": 0.001})


def stored_optuna_garbage(root: Path) -> Path:
    storage = _stored(root)
    (storage / "stored" / "optuna.db").write_bytes(bytes(range(256)) * 32)   # 8 KB that are not SQLite
    return storage


def stored_optuna_empty(root: Path) -> Path:
    """After Tune's first save (tuner.pkl and a state): an empty optuna.db there lost the study. Before it, an
    empty one is what a driver killed while creating the study leaves, and --resume creates the study."""
    storage = _stored(root)
    (storage / "stored" / "tuner.pkl").write_bytes(pickle.dumps({}))
    (storage / "stored" / "experiment_state-2026-01-01_00-00-00.json").write_text(
        json.dumps({"trial_data": [], "runner_data": {}, "stats": {"start_time": 0.0}}))
    (storage / "stored" / "optuna.db").write_bytes(b"")
    return storage


def _manifest(root: Path, name: str, member: dict, method: object = "mean_sim") -> Path:
    """An experiment folder holding only ensemble/manifest.json (what --query reads first) with one member."""
    exp = root / name
    (exp / "ensemble").mkdir(parents=True)
    (exp / "ensemble" / "manifest.json").write_text(json.dumps({"format": 2, "method": method, "members": [member]}))
    return exp


MEMBER = {"rank": 1, "member_id": "t1", "checkpoint": "trial_t1/checkpoint_000000", "selected": True, "weight": 1.0}


def manifest_without_selected(root: Path) -> Path:
    return _manifest(root, "manifest_without_selected", {k: v for k, v in MEMBER.items() if k != "selected"})


def manifest_string_weight(root: Path) -> Path:
    return _manifest(root, "manifest_string_weight", {**MEMBER, "weight": "1.0"})


def manifest_nothing_selected(root: Path) -> Path:
    return _manifest(root, "manifest_nothing_selected", {**MEMBER, "selected": False})


def manifest_member_list(root: Path) -> Path:
    return _manifest(root, "manifest_member_list", ["trial_t1", 1.0])   # type: ignore[arg-type]


def manifest_method_number(root: Path) -> Path:
    return _manifest(root, "manifest_method_number", MEMBER, method=3)


def cache_file(root: Path) -> Path:
    """A plain file where a cache folder is expected."""
    path = root / "cache_file"
    path.write_text("not a folder\n")
    return path


FIXTURES: dict[str, tuple[str, Callable[[Path], Path | str]]] = {
    "tiny_folder": ("folder dataset of 5 motions without split files (hashed: 4 train, 1 val, 0 test)", tiny_folder),
    "one_motion_val": ("folder dataset of 30 motions whose splits/val.txt lists one motion", one_motion_val),
    "one_motion_test": ("folder dataset of 30 motions whose splits/test.txt lists one motion", one_motion_test),
    "one_motion_train": ("folder dataset of 30 motions whose splits/train.txt lists one motion", one_motion_train),
    "repeated_header": ("folder dataset whose captions.csv header is id,text,text (a label in the 3rd column)",
                        repeated_header),
    "empty_val_file": ("folder dataset of 30 motions whose splits/val.txt is empty", empty_val_file),
    "misnamed_split_file": ("folder dataset of 30 motions whose val ids are in splits/valid.txt", misnamed_split_file),
    "huge_npy": ("folder dataset of 30 motions whose motions/m10.npy is float64 filled with 1e300", huge_npy),
    "stored_string_numbers": ("storage with experiment 'stored' whose search_args.json says \"num_samples\": \"6\"",
                              stored_string_numbers),
    "stored_zero_epochs": ("storage with experiment 'stored' whose search_args.json says \"max_epochs\": 0",
                           stored_zero_epochs),
    "stored_bool_seed": ("storage with experiment 'stored' whose search_args.json says \"seed\": true",
                         stored_bool_seed),
    "stored_bad_overrides": ("storage with experiment 'stored' whose search_args.json has overrides as an object",
                             stored_bad_overrides),
    "stored_optuna_garbage": ("storage with experiment 'stored' whose optuna.db is 8 KB of bytes that are not a "
                              "database", stored_optuna_garbage),
    "stored_optuna_empty": ("storage with experiment 'stored' that Tune had saved (tuner.pkl, a state) whose "
                            "optuna.db is empty (0 bytes)", stored_optuna_empty),
    "manifest_without_selected": ("experiment whose ensemble/manifest.json member lacks 'selected'",
                                  manifest_without_selected),
    "manifest_string_weight": ("experiment whose ensemble/manifest.json member has \"weight\": \"1.0\"",
                               manifest_string_weight),
    "manifest_nothing_selected": ("experiment whose ensemble/manifest.json selects no member",
                                  manifest_nothing_selected),
    "manifest_member_list": ("experiment whose ensemble/manifest.json member is a list, not an object",
                             manifest_member_list),
    "manifest_method_number": ("experiment whose ensemble/manifest.json says \"method\": 3", manifest_method_number),
    "cache_file": ("a plain file where the dataset cache folder is expected", cache_file),
}
