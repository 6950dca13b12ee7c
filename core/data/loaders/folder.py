"""A plain folder of feature arrays + captions (the format of the seed project's interaction data).

    <root>/motions/<id>.npy          (T, D) float features, any D (396 = the two-person layout; 263 / 251 / 137 =
                                     HumanML3D / KIT-ML / our joints22 features, which can be mirrored)
    <root>/captions.csv              header ``id,text`` (optional ``group`` column), one row per caption
      or <root>/captions.jsonl       ``{"id": ..., "text": ..., "group": optional}`` per line, or GAR records
                                     ``{"id": ..., "caption": ..., "part_descriptions": {"torso": ..., "left_arm":
                                     ..., "right_arm": ..., "left_leg": ..., "right_leg": ...}}`` (part texts for
                                     the part-level model; a motion takes the first record's)
    <root>/splits/{train,val,test}.txt   optional, one id per line (absent = hashed split)
    <root>/meta.json                 optional, e.g. ``{"fps": 30}``

Every motion needs at least one caption and every caption a motion.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..features import layout_for_dim
from ..parts import check_part_descriptions
from ..splits import SPLITS
from ..textfile import read_id_list, read_text_utf8
from ..types import FeatureLayout, MotionItem, RawCorpus
from .humanml3d import load_npy


def _interaction_layout() -> FeatureLayout:
    # Imported lazily: the synthetic package is written independently of the loaders.
    from ..synthetic.layout import INTERACTION396_LAYOUT

    return INTERACTION396_LAYOUT


def _read_csv(path: Path) -> list[tuple[str, str, str | None, int, None]]:
    reader = csv.DictReader(io.StringIO(read_text_utf8(path), newline=""))
    if reader.fieldnames is None or not {"id", "text"} <= set(reader.fieldnames):
        raise DataError(f"the header must name the columns 'id' and 'text' (found {reader.fieldnames}).",
                        where=path, fix="write a first line 'id,text' and one row per caption.")
    repeated = sorted({name for name in reader.fieldnames if reader.fieldnames.count(name) > 1})
    if repeated:   # DictReader keeps the LAST column of a repeated name: every caption would silently be another one
        raise DataError(f"the header names the column(s) {repeated} more than once ({reader.fieldnames}); which one "
                        "holds the captions is ambiguous.", where=path,
                        fix="name each column once: 'id,text' (plus 'group' if used).")
    rows = []
    for row in reader:
        if row["id"] is None or row["text"] is None:
            raise DataError(f"line {reader.line_num}: the row has fewer columns than the header.",
                            where=path, fix="quote captions that contain commas.")
        if None in row:   # DictReader's restkey: the row had more fields than the header
            raise DataError(f"line {reader.line_num}: the row has more columns than the header (an unquoted comma "
                            f"in the caption {row['text']!r}...?); the caption would be cut there.", where=path,
                            fix='quote captions that contain commas: a1,"a person walks, then turns".')
        rows.append((row["id"].strip(), row["text"].strip(), (row.get("group") or None), reader.line_num, None))
    return rows


def _read_jsonl(path: Path) -> list[tuple[str, str, str | None, int]]:
    """Rows (id, text, group, line, part texts or None); a GAR record names its text 'caption' and may carry
    'part_descriptions' (core/data/parts.py)."""
    rows = []
    for n, line in enumerate(read_text_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            motion_id, text = str(obj["id"]).strip(), obj["text"] if "text" in obj else obj["caption"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(f"line {n}: expected {{\"id\": ..., \"text\": ...}} or a GAR record {{\"id\": ..., "
                            f"\"caption\": ..., \"part_descriptions\": {{...}}}} ({type(e).__name__}: {e}).",
                            where=path) from None
        if not isinstance(text, str):
            raise DataError(f"line {n}: 'text' must be a string, got {type(text).__name__}.", where=path)
        group = obj.get("group")
        parts = check_part_descriptions(obj.get("part_descriptions"), where=path, what=f"line {n}: part_descriptions")
        rows.append((motion_id, text.strip(), str(group) if group is not None else None, n, parts))
    return rows


def read_fps(root: Path, options: dict) -> tuple[float, dict]:
    """(frame rate: option fps, else meta.json's "fps", else 20; meta.json's content or {})."""
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


@dataclass
class FolderIndex:
    """What a folder-format dataset holds, checked: every motion has a caption and every caption,
    split id a motion.  Shared by the feature folder (here) and the joint-position folder (joints.py)."""
    motion_files: dict[str, Path]               # id -> motions/<id>.npy
    captions: dict[str, list[str]]
    groups: dict[str, str | None]
    caption_path: Path
    splits: dict[str, list[str]]                # from splits/<name>.txt; {} = hashed split
    split_files: dict[str, str]
    parts: dict[str, tuple[str, ...]]           # id -> 5 part texts (GAR records; the first a motion has)

    def selected_ids(self, options: dict) -> list[str]:
        """Sorted ids, the first options['max_motions'] of them when given."""
        ordered = sorted(self.motion_files)
        return ordered[: int(options["max_motions"])] if options.get("max_motions") else ordered

    def corpus(self, root: Path, fmt: str, items: list[MotionItem], fps: float, layout: FeatureLayout,
               meta: dict) -> RawCorpus:
        """The RawCorpus of ``items`` (a subset of the ids), with the split files narrowed to them."""
        kept = {item.id for item in items}
        out_splits = {k: [i for i in v if i in kept] for k, v in self.splits.items()} if self.splits else None
        return RawCorpus(name=root.name, items=items, fps=fps, layout=layout, splits=out_splits,
                         meta={"format": fmt, "root": str(root), "caption_file": str(self.caption_path),
                               "split_files": self.split_files, **meta})


def read_caption_rows(root: Path) -> tuple[Path, list[tuple[str, str, str | None, int]]]:
    """(caption file, its rows (id, text, group, line)) from captions.csv or captions.jsonl."""
    csv_path, jsonl_path = root / "captions.csv", root / "captions.jsonl"
    if csv_path.is_file() and jsonl_path.is_file():
        raise DataError("both captions.csv and captions.jsonl exist; it is unclear which one to use.",
                        where=root, fix="keep only one caption file.")
    if csv_path.is_file():
        return csv_path, _read_csv(csv_path)
    if jsonl_path.is_file():
        return jsonl_path, _read_jsonl(jsonl_path)
    raise DataError("no captions.csv or captions.jsonl.", where=root,
                    fix="add captions.csv (columns id,text) or captions.jsonl ({\"id\", \"text\"} per line).")


def read_folder_index(root: Path) -> FolderIndex:
    """motions/, the caption file and splits/ of a folder-format dataset (see the module docstring)."""
    motion_dir = root / "motions"
    if not motion_dir.is_dir():
        raise DataError("expected a motions/ folder of <id>.npy files.", where=motion_dir)
    caption_path, rows = read_caption_rows(root)
    motion_files = {p.stem: p for p in motion_dir.glob("*.npy")}
    captions: dict[str, list[str]] = {}
    groups: dict[str, str | None] = {}
    parts: dict[str, tuple[str, ...]] = {}
    for motion_id, text, group, line, part_texts in rows:
        if motion_id not in motion_files:
            raise DataError(f"line {line}: caption for id {motion_id!r} but there is no motions/{motion_id}.npy.",
                            where=caption_path, fix="remove the caption or add the motion.")
        captions.setdefault(motion_id, []).append(text)
        if group is not None:
            groups[motion_id] = group
        if part_texts is not None:
            parts.setdefault(motion_id, part_texts)
    uncaptioned = sorted(set(motion_files) - set(captions))
    if uncaptioned:
        raise DataError(f"{len(uncaptioned)} motion(s) have no caption in {caption_path.name}, e.g. "
                        f"{uncaptioned[:3]}.", where=motion_files[uncaptioned[0]],
                        fix=f"add rows for them to {caption_path.name} or remove the files.")

    splits: dict[str, list[str]] = {}
    split_files: dict[str, str] = {}
    for path in sorted((root / "splits").glob("*.txt")) if (root / "splits").is_dir() else ():
        if path.stem not in SPLITS or not path.is_file():   # its ids would silently be in no split
            raise DataError(f"{'a folder' if path.is_dir() else 'a split file'} this loader does not read: split "
                            f"files are named {', '.join(f'{s}.txt' for s in SPLITS)}.", where=path,
                            fix="rename it (valid.txt -> val.txt), or move it out of splits/.")
    for name in SPLITS:
        path = root / "splits" / f"{name}.txt"
        if path.is_file():
            ids = read_id_list(path)
            if not ids:   # read as "no file" before: val was carved from train without a word
                raise DataError("the split file lists no id.", where=path,
                                fix=f"list the {name} ids one per line, or delete the file"
                                    + (" (val is then carved from train, 10 %)." if name == "val" else "."))
            absent = [i for i in ids if i not in motion_files]
            if absent:
                raise DataError(f"split id {absent[0]!r} has no motions/{absent[0]}.npy "
                                f"({len(absent)} such id(s)).", where=path,
                                fix="remove the id from the split file or add the motion.")
            splits[name], split_files[name] = ids, str(path)
    return FolderIndex(motion_files, captions, groups, caption_path, splits, split_files, parts)


def load_folder(root: Path, options: dict) -> RawCorpus:
    """Options: fps (overrides meta.json; default 20), max_motions (first N ids, sorted)."""
    root = Path(root)
    index = read_folder_index(root)
    fps, source_meta = read_fps(root, options)
    items = [MotionItem(i, np.asarray(load_npy(index.motion_files[i]), dtype=np.float32), index.captions[i],
                        index.groups.get(i), str(index.motion_files[i]), parts=index.parts.get(i))
             for i in index.selected_ids(options)]
    dim = items[0].features.shape[-1] if items and items[0].features.ndim == 2 else 0
    # A width we know is that layout (mirror augmentation, the part model); any other is "raw" features.
    layout = _interaction_layout() if dim == 396 else layout_for_dim(int(dim))
    return index.corpus(root, "folder", items, fps, layout, {"source_meta": source_meta})
