"""Processed-dataset cache: parse once, then every load (every Ray trial) memory-maps the result.

Layout of one entry, ``<cache_dir>/corpus/<key>/``:
  frames.npy   (sum_T, D) float32, all motions concatenated (opened with mmap_mode="r")
  offsets.npy  (N + 1,) int64
  meta.json    ids, captions, groups, splits, fps, layout, loader meta
The key is a content hash of the source (file bytes, or the generator's code for the synthetic
corpus) plus the options, so editing a file or an option never serves stale data.
An entry is written into a temp directory and renamed into place: a crash leaves no half entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .types import FeatureLayout, MotionCorpus

CACHE_FORMAT_VERSION = 2   # 2: split keys + the release's split files (splits assigned at load)
CACHE_ENV = "MOTION_SEARCH_CACHE"
OWN_SUBDIRS = ("corpus", "hash-memo", "text", "extracted")  # what this project writes in a cache dir


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "motion-retrieval-search"


def _hash_file(path: Path, h) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)


def content_hash(path: Path, memo_dir: Path | None = None) -> str:
    """blake2b of every file under ``path`` (relative names + bytes).

    Hashing Bandai's ~500 MB takes ~1 s; a memo keyed by (path, size, mtime) of every file makes
    repeated loads of an unchanged directory skip it.
    """
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if memo_dir is not None:  # a cache that lives inside the data folder must not hash its own entries
        own = [(memo_dir / sub).resolve() for sub in OWN_SUBDIRS]
        files = [p for p in files if not any(o in p.resolve().parents for o in own)]
    stat_key = hashlib.blake2b(digest_size=16)
    for p in files:
        st = p.stat()
        stat_key.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    stat_key = stat_key.hexdigest()
    memo = (memo_dir / "hash-memo" / stat_key) if memo_dir else None
    if memo is not None and memo.exists():
        return memo.read_text().strip()
    h = hashlib.blake2b(digest_size=16)
    for p in files:
        h.update(str(p.relative_to(path) if path.is_dir() else p.name).encode() + b"\0")
        _hash_file(p, h)
    digest = h.hexdigest()
    if memo is not None:
        try:
            atomic_write_text(memo, digest)
        except OSError:   # a read-only cache only costs re-hashing next time
            pass
    return digest


def code_hash(package_dir: Path) -> str:
    """Hash of the data pipeline's own source: a code change invalidates generated/derived entries."""
    h = hashlib.blake2b(digest_size=16)
    for p in sorted(package_dir.rglob("*.py")):
        h.update(p.relative_to(package_dir).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cache_key(parts: dict) -> str:
    blob = json.dumps({"v": CACHE_FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def entry_dir(cache_dir: Path, key: str) -> Path:
    return cache_dir / "corpus" / key


def save_corpus(corpus: MotionCorpus, cache_dir: Path, key: str) -> Path:
    final = entry_dir(cache_dir, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
    try:
        np.save(tmp / "frames.npy", np.ascontiguousarray(corpus.frames, dtype=np.float32))
        np.save(tmp / "offsets.npy", corpus.offsets.astype(np.int64))
        layout = corpus.layout
        meta = {
            "name": corpus.name, "ids": corpus.ids, "captions": corpus.captions, "groups": corpus.groups,
            "splits": {k: v.tolist() for k, v in corpus.splits.items()}, "fps": corpus.fps,
            "layout": {"kind": layout.kind, "dim": layout.dim,
                       "mirror_perm": list(layout.mirror_perm) if layout.mirror_perm else None,
                       "mirror_sign": list(layout.mirror_sign) if layout.mirror_sign else None},
            "meta": corpus.meta, "content_hash": corpus.content_hash,
            "split_keys": corpus.split_keys, "explicit_splits": corpus.explicit_splits,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, default=_json_default))
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process (a parallel trial) finished the same entry first: theirs is identical.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def load_cached(cache_dir: Path, key: str) -> MotionCorpus | None:
    """The cached corpus, frames memory-mapped; None when there is no (complete) entry."""
    d = entry_dir(cache_dir, key)
    if not (d / "meta.json").exists():
        return None
    meta = json.loads((d / "meta.json").read_text())
    lay = meta["layout"]
    layout = FeatureLayout(lay["kind"], lay["dim"],
                           tuple(lay["mirror_perm"]) if lay["mirror_perm"] else None,
                           tuple(lay["mirror_sign"]) if lay["mirror_sign"] else None)
    return MotionCorpus(
        name=meta["name"], ids=meta["ids"], frames=np.load(d / "frames.npy", mmap_mode="r"),
        offsets=np.load(d / "offsets.npy"), captions=meta["captions"], groups=meta["groups"],
        splits={k: np.asarray(v, dtype=np.int64) for k, v in meta["splits"].items()},
        fps=meta["fps"], layout=layout, meta=meta["meta"], content_hash=meta["content_hash"],
        split_keys=meta["split_keys"], explicit_splits=meta["explicit_splits"],
    )
