"""Cross-dataset evaluation (TMR's generalisation protocol): train and select on ``--data``, report the test
metrics on another dataset: ``--eval-data SPEC [--eval-format F] [--eval-data-split test|val|all]``.

    ev = EvalData.parse("/data/bvh_folder", "bvh")              # the spec checked like --data (one DataError)
    train = load_shared(config)                                   # the training corpus and ITS train mean/std
    other = open_eval_data(ev, train, config["data"])             # refuses another feature layout, before training
    report = evaluate_checkpoint("runs/x/best", train, other, ev)  # {"test": {...}, "eval_data": {...}}

* Split: the other dataset's ``test`` split by default (the TMR protocol); its spec's ``val=``/``test=``/
  ``split=`` options size it exactly as for ``--data``.  ``--eval-data-split all`` takes every motion (a dataset
  the model never trained on need hold nothing back: more queries, tighter CIs), ``val`` its val split.
* Normalization: the TRAINING corpus's train-split mean/std (what the model learned on, stored in every
  checkpoint), never the other corpus's own.
* Layout: its ``FeatureLayout`` (kind and D) and frame rate must equal the training corpus's; checked as soon
  as both are loaded, before any training (``check_same_layout``).
* Captions: frozen text features through ``SharedInputs.frozen_features`` (the same on-disk cache as the
  training captions); mirrored captions are not needed (the corpus is never augmented).
* The search never sees it: trials do not get it.  It is encoded after training (core.train), after a search
  (search/post.py: the best checkpoint; results/ensemble.py: every member and fusion), never chosen on.

Reports name it ``eval_data`` (a block beside ``test``): the spec, format, split, corpus name, motion count,
layout, the normalization used, and the metrics of core/evaluate.py (``recall_at_1`` with ``_lo``/``_hi`` CIs).
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .data import MotionCorpus, load_corpus, parse_spec
from .data.errors import DataError
from .data.splits import ALL_MOTIONS, MIN_SCORED_SPLIT

if TYPE_CHECKING:   # torch-heavy: imported where used, so the CLIs parse their flags first
    from .inference import LoadedModel
    from .shared import SharedInputs

EVAL_KEY = "eval_data"          # the block (and ensemble split) holding the other dataset's metrics
EVAL_SPLITS = {"test": "its test split (default: the TMR protocol)", "val": "its val split",
               ALL_MOTIONS: "every motion of it (it was never trained on)"}
TEST = "test"


def add_eval_data_flags(ap, what: str) -> None:
    """--eval-data / --eval-format / --eval-data-split on an argparse parser; ``what`` says what is scored."""
    ap.add_argument("--eval-data", default=None, metavar="SPEC", help=f"cross-dataset evaluation: {what}")
    ap.add_argument("--eval-format", default=None, help="loader of --eval-data (default: auto-detect)")
    ap.add_argument("--eval-data-split", default=None, choices=list(EVAL_SPLITS),
                    help="which motions of --eval-data: " + "; ".join(f"{k} = {v}" for k, v in EVAL_SPLITS.items()))


def as_flag(e: DataError, spec: str, flag: str = "--eval-data", format_flag: str = "--eval-format") -> DataError:
    """A --data/--format error of the loaders, re-worded for the flags that named this dataset (--eval-data and
    --eval-format; run_ensemble.py's --index and --index-format)."""
    def reword(text: str | None) -> str | None:
        return re.sub(r"--(data|format)\b", lambda m: flag if m.group(1) == "data" else format_flag,
                      text) if text else text
    return DataError(f"{flag} {spec}: {reword(e.problem)}", where=e.where, fix=reword(e.fix))


@dataclass(frozen=True)
class EvalData:
    """The other dataset: a spec as for --data (core/data/spec.py), its loader and the split reported."""
    data: str
    format: str | None = None
    split: str = TEST

    @classmethod
    def parse(cls, data: str, format: str | None = None, split: str | None = None, *,
              check_spec: bool = True) -> "EvalData":
        """``check_spec=False`` leaves the spec (and its path) to loading, as run_search.py does for --data: the
        dataset may exist only where the search runs (a cluster's head)."""
        split = split or TEST
        if split not in EVAL_SPLITS:
            raise DataError(f"--eval-data-split {split!r} is unknown.",
                            fix="use " + "; ".join(f"{k} = {v}" for k, v in EVAL_SPLITS.items()) + ".")
        if check_spec:
            try:
                parse_spec(data, format)          # syntax, options and the path, as for --data
            except DataError as e:
                raise as_flag(e, data) from None
        return cls(str(data), format, split)

    @classmethod
    def from_flags(cls, data: str | None, format: str | None = None, split: str | None = None, *,
                   check_spec: bool = True) -> "EvalData | None":
        """None without --eval-data; its companion flags alone are an error, not silently ignored."""
        if data is None:
            if format is not None or split is not None:
                flag = "--eval-format" if format is not None else "--eval-data-split"
                raise DataError(f"{flag} is given without --eval-data.",
                                fix="add --eval-data SPEC (the dataset to evaluate on), or drop it.")
            return None
        return cls.parse(data, format, split, check_spec=check_spec)

    def describe(self) -> str:
        fmt = f" (format {self.format})" if self.format else ""
        return f"{self.data}{fmt}, {'every motion' if self.split == ALL_MOTIONS else f'{self.split} split'}"

    def to_json(self) -> dict:
        return asdict(self)


# flag naming the other dataset -> (what is done with it, as in "can only be ... features", and the verb of the fix)
LAYOUT_USES = {"--eval-data": ("evaluated on", "evaluate on"), "--index": ("indexed from", "index")}


def check_same_layout(train: MotionCorpus, train_spec: str, other: MotionCorpus, ev: EvalData, *,
                      flag: str = "--eval-data") -> None:
    """The model reads features as laid out in training: the other corpus must share kind, D and fps (``flag``:
    the flag that named it, a LAYOUT_USES key)."""
    done, verb = LAYOUT_USES[flag]
    if (train.layout.kind, train.dim) != (other.layout.kind, other.dim):
        raise DataError(
            f"{flag} {ev.data}: its motions have the {other.layout.kind!r} feature layout ({other.dim}-d), but "
            f"the model trains on {train.layout.kind!r} ({train.dim}-d) from --data {train_spec}; a model can only be "
            f"{done} features laid out as in training.",
            fix=f"{verb} a dataset in the training layout (BVH folders and Bandai-Namco give joints22, HumanML3D "
                "hml263, KIT-ML kit251, synthetic people=1 joints22 and people=2 interx396), or train on one in the "
                f"layout of {flag}'s dataset.")
    if not math.isclose(train.fps, other.fps, rel_tol=1e-6):
        raise DataError(
            f"{flag} {ev.data}: its motions are at {other.fps:g} fps but --data {train_spec} is at "
            f"{train.fps:g} fps; the velocity features would be scaled by the ratio.",
            fix=f"resample it with the spec option fps={train.fps:g} (bvh, bandai), or {verb} data at "
                f"{train.fps:g} fps.")


def open_eval_data(ev: EvalData, train: SharedInputs, train_spec: str) -> SharedInputs:
    """The other corpus (from the dataset cache when possible), checked against the training corpus, carrying
    the TRAINING normalization; its frozen text features are computed (or read from the cache) when asked."""
    from .shared import SharedInputs

    try:
        corpus = load_corpus(ev.data, ev.format, train.cache_dir)
    except DataError as e:
        raise as_flag(e, ev.data) from None
    check_same_layout(train.corpus, train_spec, corpus, ev)
    n = len(corpus.split(ev.split))
    if n < MIN_SCORED_SPLIT:
        raise DataError(f"--eval-data {ev.data}: its {ev.split!r} split holds {n} motion(s) of {len(corpus)}; "
                        f"retrieval needs at least {MIN_SCORED_SPLIT} to rank.",
                        fix="size it in the spec (e.g. :test=0.5) or pass --eval-data-split all.")
    return SharedInputs(corpus, train.mean, train.std, train.cache_dir, foreign=True)


def describe_eval(ev: EvalData, other: SharedInputs, loaded: LoadedModel) -> dict:
    """What an ``eval_data`` block says besides its metrics: which data, which motions, which normalization."""
    corpus = other.corpus
    return {**ev.to_json(), "name": corpus.name, "motions": int(len(corpus.split(ev.split))),
            "layout": corpus.layout.kind, "dim": corpus.dim, "fps": corpus.fps, "content_hash": corpus.content_hash,
            "normalization": {"data": loaded.config.data.data, "split": "train", "corpus_hash": loaded.corpus_hash,
                              "what": "the training corpus's train-split mean/std stored in the checkpoint"}}


def split_metrics(loaded: LoadedModel, data: SharedInputs, split: str) -> dict | None:
    """core/evaluate.py's metrics (with CIs) of one split encoded by the checkpoint; None when it is empty."""
    from .evaluate import evaluate_split
    from .inference import encode_split

    if len(data.corpus.split(split)) == 0:
        return None
    emb = encode_split(loaded, data, split)
    return evaluate_split(emb.text, emb.motion, emb.captions, emb.groups, loaded.config.runtime).metrics


def evaluate_checkpoint(directory: str | Path, train: SharedInputs | None = None, other: SharedInputs | None = None,
                        ev: EvalData | None = None, device=None) -> dict:
    """{"checkpoint", "epoch", "data", "test": in-domain test metrics, "eval_data": {... "metrics"}} of one
    checkpoint (``train``/``other`` are opened from its config and ``ev`` when not given)."""
    from .inference import load_checkpoint_model, open_data

    loaded = load_checkpoint_model(directory, device)
    train = train if train is not None else open_data(loaded.config, loaded.mean, loaded.std)
    report = {"checkpoint": str(directory), "epoch": loaded.epoch, "data": loaded.config.data.data,
              TEST: split_metrics(loaded, train, TEST)}
    if ev is not None:
        other = other if other is not None else open_eval_data(ev, train, loaded.config.data.data)
        report[EVAL_KEY] = {**describe_eval(ev, other, loaded), "metrics": split_metrics(loaded, other, ev.split)}
    return report


def r1_text(metrics: dict | None) -> str:
    """'R@1 41.20 [36.9, 45.6], full-split R@1 12.30[, equivalent R@1 ...]' (the official protocol's R@1 with its
    95 % CI; the label/caption-equivalent view when the split has interchangeable motions)."""
    if not metrics:
        return "-"

    def ci(key: str) -> str:
        lo, hi = metrics.get(f"{key}_lo"), metrics.get(f"{key}_hi")
        return f"{metrics[key]:.2f}" + (f" [{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else "")
    eq = f", equivalent R@1 {ci('eq_recall_at_1')}" if "eq_recall_at_1" in metrics else ""
    return f"R@1 {ci('recall_at_1')}, full-split R@1 {metrics['full_t2m_R1']:.2f}{eq}"


def format_report(report: dict) -> str:
    """Two lines: the in-domain test split and the other dataset, each with its R@1 and CI."""
    lines = [f"test ({report['data']}): {r1_text(report.get(TEST))}"]
    block = report.get(EVAL_KEY)
    if block:
        what = "every motion" if block["split"] == ALL_MOTIONS else f"{block['split']} split"
        lines.append(f"eval data {block['data']} ({block['name']}, {what}, {block['motions']} motions, "
                     f"normalized with the training data's mean/std): {r1_text(block['metrics'])}")
    return "\n".join(lines)
