"""A plain folder of feature arrays + captions (the format of the seed project's interaction data).

    <root>/motions/<id>.npy          (T, D) float features, any D (396 = the two-person layout)
    <root>/captions.csv              header ``id,text`` (optional ``group`` column), one row per caption
      or <root>/captions.jsonl       ``{"id": ..., "text": ..., "group": optional}`` per line
    <root>/splits/{train,val,test}.txt   optional, one id per line (absent = hashed split)
    <root>/meta.json                 optional, e.g. ``{"fps": 30}``

Every motion needs at least one caption and every caption a motion.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..splits import SPLITS
from ..textfile import read_id_list, read_text_utf8
from ..types import FeatureLayout, MotionItem, RawCorpus
from .humanml3d import load_npy


def _interaction_layout() -> FeatureLayout:
    # Imported lazily: the synthetic package is written independently of the loaders.
    from ..synthetic.layout import INTERACTION396_LAYOUT

    return INTERACTION396_LAYOUT


def _read_csv(path: Path) -> list[tuple[str, str, str | None, int]]:
    reader = csv.DictReader(io.StringIO(read_text_utf8(path), newline=""))
    if reader.fieldnames is None or not {"id", "text"} <= set(reader.fieldnames):
        raise DataError(f"the header must name the columns 'id' and 'text' (found {reader.fieldnames}).",
                        where=path, fix="write a first line 'id,text' and one row per caption.")
    rows = []
    for row in reader:
        if row["id"] is None or row["text"] is None:
            raise DataError(f"line {reader.line_num}: the row has fewer columns than the header.",
                            where=path, fix="quote captions that contain commas.")
        if None in row:   # DictReader's restkey: the row had more fields than the header
            raise DataError(f"line {reader.line_num}: the row has more columns than the header (an unquoted comma "
                            f"in the caption {row['text']!r}...?); the caption would be cut there.", where=path,
                            fix='quote captions that contain commas: a1,"a person walks, then turns".')
        rows.append((row["id"].strip(), row["text"].strip(), (row.get("group") or None), reader.line_num))
    return rows


def _read_jsonl(path: Path) -> list[tuple[str, str, str | None, int]]:
    rows = []
    for n, line in enumerate(read_text_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            motion_id, text = str(obj["id"]).strip(), obj["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(f"line {n}: expected {{\"id\": ..., \"text\": ...}} ({type(e).__name__}: {e}).",
                            where=path) from None
        if not isinstance(text, str):
            raise DataError(f"line {n}: 'text' must be a string, got {type(text).__name__}.", where=path)
        group = obj.get("group")
        rows.append((motion_id, text.strip(), str(group) if group is not None else None, n))
    return rows


def _fps(root: Path, options: dict) -> tuple[float, dict]:
    meta_path = root / "meta.json"
    source_meta = {}
    if meta_path.is_file():
        try:
            source_meta = json.loads(read_text_utf8(meta_path, "meta.json"))
        except json.JSONDecodeError as e:
            raise DataError(f"meta.json is not valid JSON ({e}).", where=meta_path) from None
        if not isinstance(source_meta, dict):
            raise DataError("meta.json must be a JSON object such as {\"fps\": 20}.", where=meta_path)
    if "fps" in options:   # already type/range-checked in loaders/__init__.load_raw
        return float(options["fps"]), source_meta
    fps = source_meta.get("fps", 20.0)
    try:   # a quoted number ("30") has always been accepted
        value = float(fps) if isinstance(fps, (int, float, str)) and not isinstance(fps, bool) else math.nan
    except ValueError:
        value = math.nan
    # json.loads accepts Infinity/NaN: an infinite fps makes every motion last 0 s without a word.
    ok = math.isfinite(value) and value > 0
    if not ok:
        raise DataError(f"fps={fps!r} is invalid; it must be a finite number > 0.", where=meta_path,
                        fix='write e.g. {"fps": 20} in meta.json, or pass the option fps=20.')
    return value, source_meta


def load_folder(root: Path, options: dict) -> RawCorpus:
    """Options: fps (overrides meta.json; default 20), max_motions (first N ids, sorted)."""
    root = Path(root)
    motion_dir = root / "motions"
    if not motion_dir.is_dir():
        raise DataError("expected a motions/ folder of <id>.npy files.", where=motion_dir)
    csv_path, jsonl_path = root / "captions.csv", root / "captions.jsonl"
    if csv_path.is_file() and jsonl_path.is_file():
        raise DataError("both captions.csv and captions.jsonl exist; it is unclear which one to use.",
                        where=root, fix="keep only one caption file.")
    if csv_path.is_file():
        caption_path, rows = csv_path, _read_csv(csv_path)
    elif jsonl_path.is_file():
        caption_path, rows = jsonl_path, _read_jsonl(jsonl_path)
    else:
        raise DataError("no captions.csv or captions.jsonl.", where=root,
                        fix="add captions.csv (columns id,text) or captions.jsonl ({\"id\", \"text\"} per line).")
    fps, source_meta = _fps(root, options)

    motion_files = {p.stem: p for p in motion_dir.glob("*.npy")}
    captions: dict[str, list[str]] = {}
    groups: dict[str, str | None] = {}
    for motion_id, text, group, line in rows:
        if motion_id not in motion_files:
            raise DataError(f"line {line}: caption for id {motion_id!r} but there is no motions/{motion_id}.npy.",
                            where=caption_path, fix="remove the caption or add the motion.")
        captions.setdefault(motion_id, []).append(text)
        if group is not None:
            groups[motion_id] = group
    uncaptioned = sorted(set(motion_files) - set(captions))
    if uncaptioned:
        raise DataError(f"{len(uncaptioned)} motion(s) have no caption in {caption_path.name}, e.g. "
                        f"{uncaptioned[:3]}.", where=motion_files[uncaptioned[0]],
                        fix=f"add rows for them to {caption_path.name} or remove the files.")

    splits: dict[str, list[str]] = {}
    split_files: dict[str, str] = {}
    for name in SPLITS:
        path = root / "splits" / f"{name}.txt"
        if path.is_file():
            ids = read_id_list(path)
            absent = [i for i in ids if i not in motion_files]
            if absent:
                raise DataError(f"split id {absent[0]!r} has no motions/{absent[0]}.npy "
                                f"({len(absent)} such id(s)).", where=path,
                                fix="remove the id from the split file or add the motion.")
            splits[name], split_files[name] = ids, str(path)

    ordered = sorted(motion_files)
    if options.get("max_motions"):
        ordered = ordered[: int(options["max_motions"])]
    items = [MotionItem(i, np.asarray(load_npy(motion_files[i]), dtype=np.float32), captions[i], groups.get(i),
                        str(motion_files[i])) for i in ordered]
    dim = items[0].features.shape[-1] if items and items[0].features.ndim == 2 else 0
    layout = _interaction_layout() if dim == 396 else FeatureLayout("raw", int(dim))
    kept = set(ordered)
    out_splits = {k: [i for i in v if i in kept] for k, v in splits.items()} if splits else None
    return RawCorpus(name=root.name, items=items, fps=fps, layout=layout, splits=out_splits,
                     meta={"format": "folder", "root": str(root), "caption_file": str(caption_path),
                           "split_files": split_files, "source_meta": source_meta})
