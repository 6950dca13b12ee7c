"""Answer text queries with an experiment's models, over a split of their data or a built motion index: what
``run_ensemble.py --query`` prints and the retrieval page (results/page.py) shows.

    r = Retriever("experiments/my_search")              # or a checkpoint dir; models load on first use
    answer = r.search("two people hug", r.split("test"), model="ensemble", k=10)
    answer = r.search("two people hug", r.index("synthetic:n=10000"), model="1b08b467")
    answer.hits[0].motion_id, .captions, .score; answer.exact, answer.encode_ms, answer.search_ms

A split is ranked exactly as the ensemble was evaluated: the (1, N) similarity row of every model, fused by
core.ensemble over the whole split.  An index ranks with core/index.py (exact, unless Borda / RRF are asked to
rerank each model's top ``candidates`` only: ``answer.exact`` says which).  A query typed for a split is looked up in
the frozen-text cache when it is one of the corpus's captions (as in training); for an index it always goes
through the text model (any sentence).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.data import MotionCorpus, load_corpus
from core.data.cache import resolve_cache_dir
from core.data.splits import ALL_MOTIONS
from core.ensemble import make_combiner, top_candidates
from core.inference import LoadedModel, data_key, encode_motions, encode_queries, load_checkpoint_model, open_data
from core.metrics import similarity_matrix
from core.protocols import identity
from core.shared import SharedInputs
from results.errors import ResultsError
from results.motion_index import MotionIndex, open_index
from results.retrieval_models import ENSEMBLE, Choice, ModelSet, resolve_models

SPLITS = ("train", "val", "test")
WARM_UP_TEXT = "a person walks"


@dataclass
class Hit:
    rank: int
    row: int                     # position in the source (its GIF's address)
    motion_id: str
    captions: list[str]
    group: str | None
    score: float                 # cosine (one model), or the fusion's score (Borda points, RRF, mean z-score)


@dataclass
class Answer:
    text: str
    source: str                  # Source.key
    model: str                   # Choice.label
    method: str | None
    exact: bool                  # the fusion's top k over the whole source (False: reranked candidates)
    pooled: int                  # motions the fusion ranked per query
    hits: list[Hit]
    encode_ms: float             # text -> embeddings (every model used)
    search_ms: float             # ranking


@dataclass
class Source:
    """Motions a query ranks: ``key`` 'split:<name>' or 'index:<name>'."""
    key: str
    title: str
    ids: list[str]
    captions: list[list[str]]
    groups: list[str | None]
    corpus: MotionCorpus | None = None       # loaded when a motion is drawn
    rows: np.ndarray | None = None           # source position -> corpus index
    index: MotionIndex | None = None
    embeddings: dict[int, np.ndarray] = field(default_factory=dict)   # split: member -> (N, D) motions

    def __len__(self) -> int:
        return len(self.ids)


class Retriever:
    """Loads each model and data set once (thread-safe: the page serves requests from several threads)."""

    def __init__(self, target: str | Path, device=None, backend: str = "auto"):
        self.models: ModelSet = resolve_models(target)
        self.device, self.backend = device, backend
        self._loaded: dict[int, LoadedModel] = {}
        self._data: dict[tuple, SharedInputs] = {}
        self._sources: dict[str, Source] = {}
        self._warm: set[int] = set()
        self._lock = threading.RLock()

    def loaded(self, i: int) -> LoadedModel:
        with self._lock:
            if i not in self._loaded:
                self._loaded[i] = load_checkpoint_model(self.models.members[i].checkpoint, self.device)
            return self._loaded[i]

    def warm(self, i: int) -> None:
        """Load member i and its text model (the first text encoded loads it) before a query is timed."""
        with self._lock:
            if i not in self._warm:
                encode_queries(self.loaded(i), [WARM_UP_TEXT])
                self._warm.add(i)

    def data(self, i: int) -> SharedInputs:
        """Member i's training corpus (shared by the members of one data spec)."""
        lm = self.loaded(i)
        with self._lock:
            if data_key(lm.config) not in self._data:
                self._data[data_key(lm.config)] = open_data(lm.config, lm.mean, lm.std)
            return self._data[data_key(lm.config)]

    def split(self, name: str) -> Source:
        """A split of the models' data (its motions encoded by a member when first ranked by it)."""
        if name not in SPLITS:
            raise ResultsError(f"split {name!r} is unknown.", fix=f"use one of {', '.join(SPLITS)}.")
        with self._lock:
            key = f"split:{name}"
            if key not in self._sources:
                corpus = self.data(self.models.choose().use[0]).corpus
                rows = corpus.scored_split(name)
                self._sources[key] = Source(key, f"{name} split of {self.loaded(0).config.data.data} ({len(rows)} "
                                            "motions)", [corpus.ids[i] for i in rows],
                                            [list(corpus.captions[i]) for i in rows],
                                            [corpus.groups[i] for i in rows], corpus, rows)
            return self._sources[key]

    def index(self, given: str, split: str = ALL_MOTIONS) -> Source:
        """A built index (a name, the spec it was built from, or its folder)."""
        with self._lock:
            found = open_index(self.models, given, split, self.backend)
            key = f"index:{found.name}"
            if key not in self._sources:
                lib = found.manifest["library"]
                self._sources[key] = Source(key, f"index {found.name}: {lib['motions']} motions of {lib['data']}"
                                            f"{'' if lib['split'] == ALL_MOTIONS else ' ' + lib['split']}",
                                            found.ids, found.captions, found.groups, index=found)
            return self._sources[key]

    def motion(self, source: Source, row: int) -> tuple[np.ndarray, Any, float]:
        """(raw features (T, D), layout, fps) of a source's motion, to draw it."""
        with self._lock:
            if source.corpus is None:   # an index: its library, from the dataset cache
                lib = source.index.manifest["library"]
                corpus = load_corpus(lib["data"], lib["format"], resolve_cache_dir(self.loaded(0).config.data.cache_dir))
                source.corpus, source.rows = corpus, corpus.split(lib["split"])
                if len(source.rows) != len(source.ids) or corpus.ids[int(source.rows[0])] != source.ids[0]:
                    raise ResultsError(f"the library {lib['data']!r} no longer loads as it was indexed (its motions "
                                       "differ).", where=source.index.folder, fix="build the index again.")
        corpus = source.corpus
        i = int(source.rows[row])
        return corpus.motion(i), corpus.layout, corpus.fps

    def _motions(self, source: Source, i: int) -> np.ndarray:
        """(N, D) member i's embeddings of a split's motions (encoded once)."""
        with self._lock:
            if i not in source.embeddings:
                data, split = self.data(i), source.key.split(":", 1)[1]
                if data.corpus is not source.corpus and [data.corpus.ids[j] for j in data.corpus.split(split)] != source.ids:
                    raise ResultsError(f"ensemble members disagree on the {split} split (different datasets).",
                                       where=self.models.members[i].checkpoint)
                source.embeddings[i] = encode_motions(self.loaded(i), data, split)
            return source.embeddings[i]

    def search(self, text: str, source: Source, model: str = ENSEMBLE, k: int = 10,
               candidates: int | None = None) -> Answer:
        """Top k of ``source`` for ``text`` by the ensemble or one member (``model``: 'ensemble' or a member id).
        ``candidates``: Borda / RRF over an index rerank each model's top C only (None: the whole library, exact)."""
        if not text or not text.strip():
            raise ResultsError("the query is empty.", fix="type the words to search for, e.g. 'a person waves'.")
        choice: Choice = self.models.choose(model)
        for_split = source.index is None
        positions = None if for_split else source.index.require(self.models, choice.use)   # built by these models?
        for i in choice.use:    # loading is not the query's time: models, text model, a split's motions, once
            self.warm(i)
            if for_split:
                self._motions(source, i)
        t0 = time.perf_counter()
        queries = [encode_queries(self.loaded(i), [text], self.data(i) if for_split else None) for i in choice.use]
        t1 = time.perf_counter()
        if for_split:
            rows = [similarity_matrix(q, self._motions(source, i)) for q, i in zip(queries, choice.use)]   # (1, N)
            combiner = identity if choice.method is None else make_combiner(choice.method, list(choice.weights))
            order, values = top_candidates(combiner(rows), k)
            ids, scores, exact, pooled = order[0], values[0], True, len(source)
        else:
            ranked = source.index.search.search(queries, positions, choice.method, list(choice.weights), k=k,
                                                candidates=candidates)
            ids, scores, exact, pooled = ranked.ids[0], ranked.scores[0], ranked.exact, ranked.pooled
        t2 = time.perf_counter()
        hits = [Hit(r + 1, int(j), source.ids[j], source.captions[j], source.groups[j], float(v))
                for r, (j, v) in enumerate(zip(ids, scores))]
        return Answer(text, source.key, choice.label, choice.method, exact, pooled, hits, (t1 - t0) * 1e3,
                      (t2 - t1) * 1e3)
