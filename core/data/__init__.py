"""Motion-text datasets: the embedded synthetic corpus, real-format loaders, features and a cache.

    corpus = load_corpus("synthetic")                    # embedded default, offline
    corpus = load_corpus("synthetic:n=3000,people=1")
    corpus = load_corpus("/data/HumanML3D", format="humanml3d")
    corpus = load_corpus("bandai-namco-motiondataset-2.tar.xz")   # format auto-detected
    corpus = load_corpus("/data/bandai.tar.xz:val=0.2,test=0.2")   # split sizes (core/data/splits.py)

The first load parses and validates the source and writes a cache entry; later loads (every Ray
trial) memory-map the entry.  ``python -m core.data --data SPEC`` prints a summary.
"""
from __future__ import annotations

import time
from pathlib import Path

from .build import build_corpus
from .cache import cache_key, code_hash, content_hash, default_cache_dir, load_cached, resolve_cache_dir, save_corpus
from .errors import DataError
from .spec import DataSpec, parse_spec
from .splits import SplitSpec, assign_splits
from .types import FeatureLayout, MotionCorpus, MotionItem, RawCorpus

__all__ = ["load_corpus", "load_raw_spec", "DataError", "MotionCorpus", "MotionItem", "RawCorpus",
           "FeatureLayout", "SplitSpec", "parse_spec", "default_cache_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def load_raw_spec(spec: DataSpec, cache_dir: Path) -> RawCorpus:
    """Run the generator or the loader for a parsed spec (no caching)."""
    if spec.is_synthetic:
        from .synthetic import generate_synthetic

        return generate_synthetic(**spec.options)
    from .loaders import load_raw

    options = dict(spec.options)
    options.setdefault("extract_dir", str(cache_dir / "extracted"))
    return load_raw(spec.path, spec.format, options)


def _key(spec: DataSpec, cache_dir: Path) -> tuple[str, str]:
    if spec.is_synthetic:
        source_hash = "synthetic"
    else:
        source_hash = content_hash(spec.path, memo_dir=cache_dir)
    options = {k: v for k, v in spec.options.items() if k not in ("workers", "extract_dir")}
    parts = {"source": source_hash, "format": spec.format, "options": options,
             "code": code_hash(_PACKAGE_DIR)}
    return cache_key(parts), source_hash


def load_corpus(data: str = "synthetic", format: str | None = None, cache_dir: str | Path | None = None,
                refresh: bool = False, verbose: bool = False) -> MotionCorpus:
    """Load a dataset by spec, from the cache when possible. Bad input raises one ``DataError``."""
    spec = parse_spec(data, format)
    cache = resolve_cache_dir(cache_dir)
    key, source_hash = _key(spec, cache)
    if not refresh:
        cached = load_cached(cache, key)
        if cached is not None:
            if verbose:
                print(f"[data] cache hit {key} ({len(cached)} motions)")
            return with_splits(cached, spec)
    t0 = time.perf_counter()
    raw = load_raw_spec(spec, cache)
    corpus = build_corpus(raw, content_hash=key, split=spec.split, consume=True)
    del raw
    corpus.meta["build_seconds"] = round(time.perf_counter() - t0, 3)
    try:
        save_corpus(corpus, cache, key)
    except OSError as e:  # an unwritable cache must not stop training: warn and go on uncached
        print(f"[data] warning: could not write the dataset cache under {cache}: {e}")
        return corpus
    if verbose:
        print(f"[data] built {len(corpus)} motions in {corpus.meta['build_seconds']} s; cached as {key}")
    cached = load_cached(cache, key)
    return with_splits(cached, spec) if cached is not None else corpus


def with_splits(corpus: MotionCorpus, spec: DataSpec) -> MotionCorpus:
    """The spec's split (not part of the cache key) assigned to a corpus loaded from the cache."""
    corpus.splits = assign_splits(corpus.split_keys, corpus.explicit_splits, spec.split, corpus.name)
    return corpus
