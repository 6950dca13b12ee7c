"""TMR's annotation format (HumanML3D / KIT-ML re-packaged by the TMR authors).

    <root>/annotations.json   {keyid: {"path": "KIT/4/Walk01_poses", "duration": 3.78,
                                       "annotations": [{"seg_id", "text", "start", "end"}, ...]}}
    <root>/splits/{train,val,test}.txt   keyids, one per line (other split files are ignored)
    <motions_dir>/<path>.npy  (or <motions_dir>/<keyid>.npy)   (T, D) features, e.g. 263-D at 20 fps

Every annotation's [start, end] (seconds) selects frames int(start*fps):int(end*fps); annotations
with the same span share one motion item: ``keyid`` when the span is the whole motion, else
``"<keyid>#<start>#<end>"``.  Mirrored keyids ("M00001", path "M/...") load like any other.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..features import layout_for_dim
from ..spec import check_option
from ..splits import SPLITS
from ..textfile import read_id_list, read_text_utf8
from ..types import MotionItem, RawCorpus
from .humanml3d import crop_id, load_npy


def _read_annotations(path: Path) -> dict:
    if not path.is_file():
        raise DataError("annotations.json is missing.", where=path,
                        fix="point --data at the TMR annotation folder (holding annotations.json and splits/).")
    try:
        data = json.loads(read_text_utf8(path, "annotations"))
    except json.JSONDecodeError as e:
        raise DataError(f"cannot parse annotations.json ({e}).", where=path) from None
    if not isinstance(data, dict):
        raise DataError("annotations.json must map keyids to {path, duration, annotations}.", where=path)
    return data


def _entry(annotations: dict, keyid: str, path: Path) -> tuple[str, list[tuple[str, float, float]]]:
    """(relative motion path, [(text, start, end)]) of one keyid, checked."""
    entry = annotations[keyid]
    try:
        rel = str(entry["path"])
        segs = [(str(a["text"]), float(a["start"]), float(a["end"])) for a in entry["annotations"]]
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"keyid {keyid!r} must have 'path' and 'annotations' = [{{text, start, end}}] "
                        f"({type(e).__name__}: {e}).", where=path) from None
    if not segs:   # its motion would silently be in no split (a split could end empty, naming neither)
        raise DataError(f"keyid {keyid!r} has no annotation (\"annotations\": []).", where=path,
                        fix="add its descriptions, or remove the keyid from annotations.json and the split files.")
    bad_text = next((a["text"] for a in entry["annotations"] if not isinstance(a["text"], str)), None)
    if bad_text is not None:   # str() made a caption of 7 or None before; the folder loaders refuse it too
        raise DataError(f"keyid {keyid!r}: an annotation's 'text' is {bad_text!r}, not a string.", where=path,
                        fix="write each description as a JSON string.")
    # json.loads accepts NaN/Infinity: int(inf * fps) would be a traceback, and a negative time slices
    # from the motion's end (a made-up crop); a reversed span is as meaningless.
    for text, start, end in segs:
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise DataError(f"keyid {keyid!r}: annotation {text[:40]!r} has start={start!r}, end={end!r}; both must "
                            "be finite seconds with 0 <= start <= end.", where=path,
                            fix="correct this annotation's start/end (seconds from the motion's start).")
    return rel, segs


def _resolve_motion(motions_dir: Path, rel: str, keyid: str) -> Path | None:
    for candidate in (motions_dir / f"{rel}.npy", motions_dir / f"{keyid}.npy"):
        if candidate.is_file():
            return candidate
    return None


def load_tmr(root: Path, options: dict) -> RawCorpus:
    """Load a TMR annotation folder plus its motion features.

    Options: motions_dir (default <root>/motions), fps (default 20), allow_missing (skip keyids
    whose motion file is absent and count them in meta["missing_motions"]; default False),
    max_motions (first N keyids in split order).
    """
    root = Path(root)
    ann_path = root / "annotations.json"
    annotations = _read_annotations(ann_path)
    fps = float(options.get("fps", 20.0))
    allow_missing = check_option("allow_missing", options.get("allow_missing", False))   # "false" is False
    motions_dir = Path(str(options.get("motions_dir") or root / "motions")).expanduser()
    if not motions_dir.is_dir():
        raise DataError("the motion folder does not exist.", where=motions_dir,
                        fix="pass the folder of .npy features as option motions_dir=PATH "
                            "(e.g. TMR's datasets/motions/guoh3dfeats).")

    splits: dict[str, list[str]] = {}
    split_files: dict[str, str] = {}
    for name in SPLITS:
        path = root / "splits" / f"{name}.txt"
        if not path.is_file():
            continue
        ids = read_id_list(path)
        unknown = [i for i in ids if i not in annotations]
        if unknown:
            raise DataError(f"split id {unknown[0]!r} (and {len(unknown) - 1} more) is not in annotations.json.",
                            where=path, fix="use the split files that came with this annotations.json.")
        splits[name], split_files[name] = ids, str(path)
    ordered = list(dict.fromkeys(i for ids in splits.values() for i in ids)) if splits else list(annotations)
    if options.get("max_motions"):
        ordered = ordered[: int(options["max_motions"])]
    split_of = {i: name for name, ids in splits.items() for i in ids}

    items: list[MotionItem] = []
    derived: dict[str, list[str]] = {}
    missing: list[str] = []
    skipped_spans = 0
    for keyid in ordered:
        rel, segs = _entry(annotations, keyid, ann_path)
        motion_path = _resolve_motion(motions_dir, rel, keyid)
        if motion_path is None:
            if allow_missing:
                missing.append(keyid)
                continue
            where = split_files.get(split_of.get(keyid), ann_path)
            raise DataError(f"keyid {keyid!r} has no motion file: looked for {motions_dir / (rel + '.npy')} "
                            f"and {motions_dir / (keyid + '.npy')}.", where=where,
                            fix="point motions_dir at the complete motion folder, or pass allow_missing=true "
                                "to skip motions you do not have.")
        motion = np.asarray(load_npy(motion_path), dtype=np.float32)
        spans: dict[tuple[int, int], tuple[str, list[str]]] = {}
        for text, start, end in segs:
            lo, hi = int(start * fps), min(int(end * fps), len(motion))
            if hi - lo < 1:
                skipped_spans += 1
                continue
            whole = lo == 0 and hi >= len(motion) - 1
            item_id = keyid if whole else crop_id(keyid, start, end)
            spans.setdefault((0, len(motion)) if whole else (lo, hi), (item_id, []))[1].append(text)
        derived[keyid] = []
        for (lo, hi), (item_id, texts) in spans.items():
            items.append(MotionItem(item_id, motion[lo:hi], texts, None, str(motion_path)))
            derived[keyid].append(item_id)

    dims = [it.features.shape[1] for it in items[:1] if it.features.ndim == 2]
    layout = layout_for_dim(dims[0] if dims else 0)
    out_splits = ({name: [d for i in ids if i in derived for d in derived[i]] for name, ids in splits.items()}
                  if splits else None)
    ignored = sorted(p.name for p in (root / "splits").glob("*.txt") if p.stem not in SPLITS) \
        if (root / "splits").is_dir() else []
    meta = {"format": "tmr", "root": str(root), "motions_dir": str(motions_dir), "keyids": len(ordered),
            "missing_motions": len(missing), "missing_examples": missing[:5], "skipped_spans": skipped_spans,
            "split_files": split_files, "ignored_split_files": ignored}
    return RawCorpus(name=root.name, items=items, fps=fps, layout=layout, splits=out_splits, meta=meta)
