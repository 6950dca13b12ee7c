"""A motion index: a library encoded once by every model of an experiment (or one checkpoint), kept on disk and
searched in milliseconds (core/index.py: every fusion exact by default; Borda / RRF rank the whole library, or,
with ``candidates``, rerank each model's top C only: faster, approximate, measured in bench/retrieval_index.py).

    python run_ensemble.py EXP --index synthetic:n=10000             # build EXP/index/synthetic_n=10000/
    python run_ensemble.py EXP --index synthetic:n=10000 --query "two people hug"
    index = open_index(resolve_models(EXP), "synthetic:n=10000")   # a name, the spec it was built from, or a folder

``EXP/index/<name>/`` (written in one swap, core/atomic.py):
  index.json      what was encoded (data spec, format, split, content hash, layout, N), by which models (member
                  ids, checkpoints, fingerprints of their checkpoint.pt), when and in how long
  member_<k>.npy  (N, D_k) float32: member k's motion embeddings, as the model gives them (normalized here)
  moments.npz     mean_<k> (D_k,), cov_<k> (D_k, D_k) float64: the library's moments of member k's unit rows
  motions.json    ids (N,), captions (N, lists), groups (N,) of the library, in row order
Each member encodes the library with its own training mean/std (the checkpoint's), as for --eval-data.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core import lockfile
from core.atomic import swap_in_dir
from core.crossdata import EvalData, as_flag, check_same_layout
from core.data import DataError, load_corpus, parse_spec
from core.data.splits import ALL_MOTIONS
from core.index import LibrarySearch, Moments
from core.inference import data_key, encode_motions, load_checkpoint_model, open_data
from core.shared import SharedInputs
from results.ensemble_report import stored_path
from results.errors import ResultsError
from results.retrieval_models import ModelSet, fingerprint

INDEX_DIR = "index"
INDEX_MANIFEST = "index.json"
INDEX_FORMAT = 1
MOTIONS_FILE = "motions.json"
MOMENTS_FILE = "moments.npz"


def index_name(data: str, split: str = ALL_MOTIONS) -> str:
    """The folder name of a library's index: its spec made a plain name (+ '-<split>' for one split)."""
    name = re.sub(r"[^A-Za-z0-9._=,-]+", "_", str(data)).strip("._") or "library"
    return (name[:120] + ("" if split == ALL_MOTIONS else f"-{split}")).replace(",", "_")


def _index_dir(target: Path) -> Path:
    return target / INDEX_DIR


def find_index(models: ModelSet, given: str, split: str = ALL_MOTIONS) -> Path:
    """The folder of an index: a path to one, a name under <target>/index/, or the spec (and split) it was built from."""
    for folder in (Path(given).expanduser(), _index_dir(models.target) / given,
                   _index_dir(models.target) / index_name(given, split)):
        if (folder / INDEX_MANIFEST).is_file():
            return folder.resolve()
    built = sorted(p.parent.name for p in _index_dir(models.target).glob(f"*/{INDEX_MANIFEST}"))
    have = f"; built here: {', '.join(built)}" if built else ""
    raise ResultsError(f"--index {given}: no index of that name, spec or path{have}.", where=_index_dir(models.target),
                       fix=f"build it first: python run_ensemble.py {models.target} --index SPEC (a data spec, e.g. "
                           "synthetic:n=10000, or a dataset folder).")


# ----------------------------------------------------------------------------- build

@dataclass
class BuiltIndex:
    folder: Path
    motions: int
    members: int
    seconds: float
    bytes: int


def build_index(models: ModelSet, data: str, fmt: str | None = None, split: str = ALL_MOTIONS, *, device=None,
                log: Callable[[str], None] = print) -> BuiltIndex:
    """Encode ``split`` of the library ``data`` with every model of ``models`` into <target>/index/<name>/."""
    t0 = time.perf_counter()
    try:
        parse_spec(data, fmt)                             # syntax, options and the path, before any model loads
    except DataError as e:
        raise as_flag(e, data, "--index", "--index-format") from None
    root = _index_dir(models.target)
    if not os.access(models.target, os.W_OK) or (root.exists() and not os.access(root, os.W_OK)):
        raise ResultsError("cannot write the index here (read-only filesystem or no permission).", where=models.target,
                           fix="copy the folder somewhere writable (cp -r) and build the index there.")
    loaded = [load_checkpoint_model(m.checkpoint, device) for m in models.members]
    cache_dir = None
    trained: dict[tuple, SharedInputs] = {}
    for lm in loaded:                                      # one training corpus per data spec: its layout
        if data_key(lm.config) not in trained:
            trained[data_key(lm.config)] = open_data(lm.config, lm.mean, lm.std)
        cache_dir = trained[data_key(lm.config)].cache_dir
    try:
        library = load_corpus(data, fmt, cache_dir)
    except DataError as e:
        raise as_flag(e, data, "--index", "--index-format") from None
    for lm in loaded:
        check_same_layout(trained[data_key(lm.config)].corpus, lm.config.data.data, library,
                          EvalData(data, fmt, ALL_MOTIONS), flag="--index")
    rows = library.scored_split(split)                    # a DataError names a split too small (or unknown)
    name = index_name(data, split)
    root.mkdir(exist_ok=True)
    try:
        with lockfile.held(root / f".{name}.lock"):
            embeddings = []
            for m, lm in zip(models.members, loaded):
                t = time.perf_counter()
                own = SharedInputs(library, lm.mean, lm.std, cache_dir, foreign=True)   # its own normalization
                embeddings.append(encode_motions(lm, own, split))                      # (N, D_k) float32
                log(f"encoded {len(rows)} motions with {m.member_id} in {time.perf_counter() - t:.1f} s")
            manifest = {
                "format": INDEX_FORMAT, "name": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "target": str(models.target),
                "library": {"data": data, "format": fmt, "split": split, "name": library.name,
                            "content_hash": library.content_hash, "motions": len(rows), "layout": library.layout.kind,
                            "dim": library.dim, "fps": library.fps},
                "members": [{"member_id": m.member_id, "label": m.label, "checkpoint": stored_path(m.checkpoint,
                                                                                                 models.target),
                             "fingerprint": fingerprint(m.checkpoint), "dim": int(e.shape[1]), "file": f"member_{k}.npy"}
                            for k, (m, e) in enumerate(zip(models.members, embeddings))],
                "normalization": "each member's own training mean/std (its checkpoint's)",
            }
            folder = _write(root, name, manifest, embeddings, library, rows, t0)
    except lockfile.LockHeld as err:
        raise ResultsError(f"another build is writing index {name!r} ({err.describe()}).", where=root,
                           fix="wait for it to finish, or stop it and run again.") from None
    size = sum(p.stat().st_size for p in folder.iterdir())
    return BuiltIndex(folder, len(rows), len(models.members), time.perf_counter() - t0, size)


def _write(root: Path, name: str, manifest: dict, embeddings: list[np.ndarray], library, rows: np.ndarray,
           t0: float) -> Path:
    """Fill a hidden folder beside the index, then swap it in whole (core/atomic.py)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        os.chmod(tmp, 0o755)   # mkdtemp makes it private; an index is an ordinary shared folder
        moments = {}
        for k, e in enumerate(embeddings):
            np.save(tmp / f"member_{k}.npy", np.ascontiguousarray(e, np.float32))
            mk = Moments.of(e)
            moments.update({f"mean_{k}": mk.mean, f"cov_{k}": mk.cov})
        np.savez(tmp / MOMENTS_FILE, **moments)
        motions = {"ids": [library.ids[i] for i in rows], "captions": [list(library.captions[i]) for i in rows],
                   "groups": [library.groups[i] for i in rows]}
        (tmp / MOTIONS_FILE).write_text(json.dumps(motions), encoding="utf-8")
        manifest["build_seconds"] = round(time.perf_counter() - t0, 3)
        (tmp / INDEX_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        swap_in_dir(tmp, root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root / name


# ----------------------------------------------------------------------------- open

@dataclass
class MotionIndex:
    folder: Path
    manifest: dict[str, Any]
    search: LibrarySearch                # member positions = the index's members
    position: dict[int, int]             # ModelSet member position -> index member position
    ids: list[str]                       # (N,)
    captions: list[list[str]]            # (N,)
    groups: list[str | None]             # (N,)

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    def require(self, models: ModelSet, use: tuple[int, ...]) -> list[int]:
        """The index's member positions of ``models.members[use]``; ResultsError when one is not in it (it was
        built by other models, or before a member was retrained)."""
        absent = [models.members[i].member_id for i in use if i not in self.position]
        if absent:
            manifest = self.manifest
            raise ResultsError(
                f"index {self.name!r} was built by other models: {', '.join(absent)} "
                f"{'is' if len(absent) == 1 else 'are'} not among its {len(manifest['members'])} model(s), whose "
                f"checkpoints it fingerprinted when built from {manifest.get('target')}.", where=self.folder,
                fix=f"build an index with these models: python run_ensemble.py {models.target} --index "
                    f"{manifest['library']['data']}" + ("" if manifest["library"]["split"] == ALL_MOTIONS
                                                        else f" --split {manifest['library']['split']}") + ".")
        return [self.position[i] for i in use]


def _damaged(folder: Path, what: str) -> ResultsError:
    return ResultsError(f"damaged motion index: {what}.", where=folder / INDEX_MANIFEST,
                        fix="build it again: python run_ensemble.py TARGET --index SPEC.")


def open_index(models: ModelSet, given: str, split: str = ALL_MOTIONS, backend: str = "auto") -> MotionIndex:
    """An index, with which of ``models`` it holds (matched by their checkpoints' fingerprints: ``require``)."""
    folder = find_index(models, given, split)
    try:
        manifest = json.loads((folder / INDEX_MANIFEST).read_text(encoding="utf-8"))
        members = manifest["members"]
        n = int(manifest["library"]["motions"])
        by_print = {str(m["fingerprint"]): k for k, m in enumerate(members)}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise _damaged(folder, f"index.json is not readable ({type(e).__name__}: {e})") from None
    if manifest.get("format") != INDEX_FORMAT:
        raise _damaged(folder, f"format {manifest.get('format')!r}, this version reads {INDEX_FORMAT}")
    position = {}
    for i, m in enumerate(models.members):
        k = by_print.get(fingerprint(m.checkpoint))
        if k is not None:
            position[i] = k
    try:
        arrays = [np.load(folder / m["file"], mmap_mode="r", allow_pickle=False) for m in members]
        with np.load(folder / MOMENTS_FILE, allow_pickle=False) as mo:
            moments = [Moments(mo[f"mean_{k}"], mo[f"cov_{k}"]) for k in range(len(members))]
        motions = json.loads((folder / MOTIONS_FILE).read_text(encoding="utf-8"))
        ids, captions, groups = motions["ids"], motions["captions"], motions["groups"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _damaged(folder, f"its files cannot be read ({type(e).__name__}: {e})") from None
    shapes = [(len(a), a.shape[1] if a.ndim == 2 else None) for a in arrays]
    if any(s != (n, int(m["dim"])) for s, m in zip(shapes, members)) or not len(ids) == len(captions) == n:
        raise _damaged(folder, f"{n} motions in index.json, arrays {shapes}, {len(ids)} ids")
    return MotionIndex(folder, manifest, LibrarySearch(arrays, moments, backend), position, ids, captions, groups)
