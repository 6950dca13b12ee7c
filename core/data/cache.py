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
import mmap
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from .types import FeatureLayout, MotionCorpus

CACHE_FORMAT_VERSION = 3   # 2: split keys + the release's split files (splits assigned at load); 3: part texts
CACHE_ENV = "MOTION_SEARCH_CACHE"
OWN_SUBDIRS = ("corpus", "hash-memo", "text", "extracted")  # what this project writes in a cache dir


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return _usable(Path(env).expanduser(), f"{CACHE_ENV}={env}")
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "motion-retrieval-search"


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    """The cache folder to use: ``cache_dir`` (the --cache-dir flag or the cache_dir config key) or the default;
    DataError when it names a plain file (every write into it would fail later, deep inside a load)."""
    if not cache_dir:
        return default_cache_dir()
    return _usable(Path(cache_dir).expanduser(), f"cache_dir {cache_dir}")


def _usable(path: Path, given: str) -> Path:
    if path.exists() and not path.is_dir():
        from .errors import DataError

        raise DataError(f"{given}: is a file, not a folder for the dataset and text-feature cache.",
                        fix="point it at a folder (created if missing), or unset it for the default "
                            "~/.cache/motion-retrieval-search.")
    return path


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
        try:
            digest = memo.read_text().strip()
        except (OSError, UnicodeDecodeError):
            digest = ""
        # a truncated memo must not become the hash (an empty one would be shared by every dataset)
        if len(digest) == 32 and all(c in "0123456789abcdef" for c in digest):
            return digest
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
            "name": corpus.name, "ids": list(corpus.ids), "captions": list(corpus.captions),
            "groups": list(corpus.groups),
            "splits": {k: v.tolist() for k, v in corpus.splits.items()}, "fps": corpus.fps,
            "layout": {"kind": layout.kind, "dim": layout.dim,
                       "mirror_perm": list(layout.mirror_perm) if layout.mirror_perm else None,
                       "mirror_sign": list(layout.mirror_sign) if layout.mirror_sign else None},
            "meta": corpus.meta, "content_hash": corpus.content_hash,
            "split_keys": list(corpus.split_keys), "explicit_splits": corpus.explicit_splits,
            "part_texts": list(corpus.part_texts) if corpus.part_texts is not None else None,
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


def _read_entry(d: Path) -> MotionCorpus:
    meta = json.loads((d / "meta.json").read_text())
    lay = meta["layout"]
    layout = FeatureLayout(lay["kind"], lay["dim"],
                           tuple(lay["mirror_perm"]) if lay["mirror_perm"] else None,
                           tuple(lay["mirror_sign"]) if lay["mirror_sign"] else None)
    frames, offsets = np.load(d / "frames.npy", mmap_mode="r"), np.load(d / "offsets.npy")
    # np.load reads a header only: a cut-off array can still open, so check the sizes agree too
    if (frames.ndim != 2 or offsets.ndim != 1 or len(offsets) != len(meta["ids"]) + 1
            or int(offsets[-1]) != len(frames) or frames.shape[1] != lay["dim"]):
        raise ValueError("frames.npy / offsets.npy / meta.json do not agree in size")
    n = len(meta["ids"])
    per_motion = {"captions": meta["captions"], "groups": meta["groups"], "split_keys": meta["split_keys"],
                  "part_texts": meta.get("part_texts") or [None] * n}
    short = [key for key, values in per_motion.items() if len(values) != n]
    if short:   # a hand edit: an index past the list's end mid-training (IndexError) if it went unseen
        raise ValueError(f"meta.json lists {n} motions but not as many {', '.join(short)}")
    if any(not 0 <= int(i) < n for v in meta["splits"].values() for i in v):
        raise ValueError("meta.json splits name a motion index out of range")
    return MotionCorpus(
        name=meta["name"], ids=meta["ids"], frames=frames,
        offsets=offsets, captions=meta["captions"], groups=meta["groups"],
        splits={k: np.asarray(v, dtype=np.int64) for k, v in meta["splits"].items()},
        fps=meta["fps"], layout=layout, meta=meta["meta"], content_hash=meta["content_hash"],
        split_keys=meta["split_keys"], explicit_splits=meta["explicit_splits"],
        part_texts=[tuple(p) if p is not None else None for p in meta["part_texts"]]
        if meta.get("part_texts") is not None else None,
    )


def release_pages(view: np.ndarray) -> int:
    """Drop this process's resident pages of ``view``, a slice of a memory-mapped file (np.load(mmap_mode="r")):
    they leave its memory (and its PSS) but stay in the page cache, and a later read maps them again. Returns the
    bytes released (0 when ``view`` maps no file). Used once a block of the corpus is in the shared store."""
    mm = view
    while mm is not None and not isinstance(mm, mmap.mmap):
        mm = getattr(mm, "base", None)
    if mm is None or view.nbytes == 0 or not hasattr(mm, "madvise"):
        return 0
    start = view.__array_interface__["data"][0] - np.frombuffer(mm, np.uint8, count=1).__array_interface__["data"][0]
    page = mmap.PAGESIZE
    first, last = -(-start // page) * page, (start + view.nbytes) // page * page   # whole pages inside the view
    if last <= first:
        return 0
    mm.madvise(mmap.MADV_DONTNEED, first, last - first)
    return last - first


def load_cached(cache_dir: Path, key: str) -> MotionCorpus | None:
    """The cached corpus, frames memory-mapped; None when there is no (complete) entry.

    A damaged entry (a disk filled up, a copy cut short, a hand edit) is a cache miss: it is moved
    aside and deleted with one warning line on stderr, so the caller rebuilds it from the source
    instead of failing on data that can always be rebuilt.
    """
    d = entry_dir(cache_dir, key)
    if not (d / "meta.json").exists():
        return None
    try:
        return _read_entry(d)
    except (OSError, ValueError, EOFError, KeyError, TypeError, IndexError, AttributeError) as e:
        reason = (str(e).splitlines() or [""])[0][:200]
        print(f"[data] warning: the dataset cache entry {d} is damaged ({type(e).__name__}: {reason}); "
              "rebuilding it.", file=sys.stderr)
        _discard(d)
        return None


def _discard(d: Path) -> None:
    """Remove a damaged entry; renamed first so a parallel loader never sees it half deleted."""
    aside = d.parent / f".damaged-{d.name}-{os.getpid()}"
    try:
        os.rename(d, aside)
    except OSError:   # already gone (a parallel loader did it) or a read-only cache: nothing to do
        return
    shutil.rmtree(aside, ignore_errors=True)
