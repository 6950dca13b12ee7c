"""HumanML3D and KIT-ML in their released layout (features pass through unnormalized).

    <root>/new_joint_vecs/<id>.npy   (T, 263) HumanML3D at 20 fps / (T, 251) KIT-ML at 12.5 fps
    <root>/texts/<id>.txt            one caption per line: ``caption#tokens#start#end``
    <root>/train.txt, val.txt, test.txt   one id per line (test may be absent; no files = hashed split)
    <root>/Mean.npy, Std.npy         recorded in meta["source_mean"] / ["source_std"] when present

A caption whose start/end (seconds) are not 0/0 (or NaN) describes only that span: it becomes
its own motion item ``"<id>#<start>#<end>"`` holding the cropped frames (captions with the same
span share one item); the split of the source id applies to its crops.  Negative, infinite or
reversed spans are errors (the release's convention has no meaning for them).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..features import HML263_LAYOUT, KIT251_LAYOUT
from ..splits import SPLITS
from ..textfile import read_id_list, read_text_utf8
from ..types import FeatureLayout, MotionItem, RawCorpus

FPS = {"humanml3d": 20.0, "kitml": 12.5}
LAYOUTS = {"humanml3d": HML263_LAYOUT, "kitml": KIT251_LAYOUT}


def read_split_files(root: Path, names=SPLITS) -> tuple[dict[str, list[str]], dict[str, str]]:
    """{split: ids} from <root>/<split>.txt for the files that exist, and {split: file path}."""
    splits, files = {}, {}
    for name in names:
        path = root / f"{name}.txt"
        if path.is_file():
            splits[name] = read_id_list(path)
            files[name] = str(path)
    return splits, files


def load_npy(path: Path) -> np.ndarray:
    """A motion array, or a DataError naming the file when it cannot be read."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"cannot read this .npy motion ({type(e).__name__}: {e}).", where=path,
                        fix="re-save it with numpy.save(path, array) as a (frames, features) float array.") from None
    if not isinstance(loaded, np.ndarray):   # np.load reads by content: an .npz archive under a .npy name
        names = list(loaded.files)
        loaded.close()
        raise DataError(f"this .npy is an .npz archive (arrays {names[:4]}), not one array.", where=path,
                        fix="save the motion alone with numpy.save(path, array) (not numpy.savez).")
    # bool/int/float convert to float32 exactly enough; strings, complex (the imaginary part would be
    # dropped with only a ComplexWarning) and structured arrays do not.
    if loaded.dtype.kind not in "biuf":
        raise DataError(f"this .npy holds {loaded.dtype} values (dtype {loaded.dtype.str!r}); expected a float "
                        "array.", where=path,
                        fix="re-save it with numpy.save(path, array.astype(numpy.float32)).")
    if loaded.dtype.kind == "f" and loaded.dtype.itemsize > 4 and loaded.size:
        # motions are stored as float32: a finite float64 beyond its range would become inf (with numpy's overflow
        # warning) and be reported as NaN/inf the file does not hold
        finite = np.abs(loaded[np.isfinite(loaded)])
        largest = float(finite.max()) if finite.size else 0.0
        if largest > np.finfo(np.float32).max:
            raise DataError(f"this .npy holds values up to {largest:.3g}, beyond float32's range "
                            f"(+-{np.finfo(np.float32).max:.3g}) that motions are stored in.", where=path,
                            fix="check its units or clean the outliers, then re-save it.")
    return loaded


def parse_caption_line(line: str, path: Path, line_no: int) -> tuple[str, float, float]:
    """'a man walks#a/DET man/NOUN walk/VERB#0.0#0.0' -> (caption, start, end); NaN -> 0."""
    parts = line.rstrip("\n").split("#")
    if len(parts) < 4:
        raise DataError(f"line {line_no}: expected 'caption#tokens#start#end' (4 '#'-separated fields), "
                        f"found {len(parts)} field(s): {line.strip()[:80]!r}.", where=path,
                        fix="write each caption as caption#tokens#start#end; use 0.0#0.0 for the whole motion.")
    caption = "#".join(parts[:-3]).strip()
    try:
        start, end = float(parts[-2]), float(parts[-1])
    except ValueError:
        raise DataError(f"line {line_no}: start/end {parts[-2]!r}/{parts[-1]!r} are not numbers (seconds).",
                        where=path, fix="use 0.0#0.0 for the whole motion.") from None
    # HumanML3D's own convention (its text_process code): NaN counts as 0, and 0.0#0.0 is the whole
    # motion.  It gives no meaning to infinite or negative times: int(inf * fps) is a traceback and a
    # negative time slices from the motion's end (a made-up crop), so those are errors, as is an end
    # before the start.  A span that starts past the motion's end stays a counted skip (the release
    # has a few).
    start = 0.0 if math.isnan(start) else start
    end = 0.0 if math.isnan(end) else end
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < 0:
        raise DataError(f"line {line_no}: start/end {parts[-2]!r}/{parts[-1]!r} must be finite seconds >= 0.",
                        where=path, fix="write the span in seconds from the motion's start, or 0.0#0.0 for the "
                                        "whole motion.")
    if end < start:
        raise DataError(f"line {line_no}: the span ends ({end:g} s) before it starts ({start:g} s).", where=path,
                        fix="swap start and end, or write 0.0#0.0 for the whole motion.")
    return caption, start, end


def crop_id(motion_id: str, start: float, end: float) -> str:
    return f"{motion_id}#{start:g}#{end:g}"


# (captions of the whole motion, {(start, end) in seconds: captions of that span})
Captions = tuple[list[str], dict[tuple[float, float], list[str]]]


def read_captions(text_path: Path, motion_id: str) -> Captions:
    """The captions of one motion from texts/<id>.txt: those of the whole motion and those of each span."""
    if not text_path.is_file():
        raise DataError(f"motion {motion_id!r} has no caption file.", where=text_path,
                        fix="add texts/<id>.txt or remove the id from the split files.")
    whole: list[str] = []
    spans: dict[tuple[float, float], list[str]] = {}
    for n, line in enumerate(read_text_utf8(text_path).split("\n"), 1):
        if not line.strip():
            continue
        caption, start, end = parse_caption_line(line, text_path, n)
        if start == 0.0 and end == 0.0:
            whole.append(caption)
        else:
            spans.setdefault((start, end), []).append(caption)
    return whole, spans


def motion_items(motion_id: str, motion: np.ndarray, captions: Captions, fps: float, source: Path,
                 counters: dict) -> list[MotionItem]:
    """The whole-motion item (if any caption covers it) and one item per cropped span of a (T, D)
    motion at ``fps``; every item keeps ``motion_id`` as its split key (crops never straddle splits)."""
    whole, spans = captions
    items = []
    if whole:
        items.append(MotionItem(motion_id, motion, whole))
    for (start, end), texts in spans.items():
        lo, hi = int(start * fps), min(int(end * fps), len(motion))
        if hi - lo < 1:  # a span outside the motion: nothing to describe (the release has a few)
            counters["skipped_crops"] += 1
            continue
        items.append(MotionItem(crop_id(motion_id, start, end), motion[lo:hi], texts))
    for item in items:
        item.features = np.asarray(item.features, dtype=np.float32)
        item.source, item.split_key = str(source), motion_id
    return items


def source_ids(root: Path, motion_dir: Path, options: dict) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """(source ids to load, {split: ids}, {split: file}): the ids in split-file order (every one
    must have <motion_dir>/<id>.npy), or the sorted .npy stems without split files; the first
    options['max_motions'] of them when given."""
    splits, split_files = read_split_files(root)
    if splits:
        ordered = list(dict.fromkeys(i for name in SPLITS for i in splits.get(name, [])))
        for name, ids in splits.items():
            for motion_id in ids:
                if not (motion_dir / f"{motion_id}.npy").is_file():
                    raise DataError(f"split id {motion_id!r} has no motion file {motion_dir.name}/{motion_id}.npy.",
                                    where=split_files[name],
                                    fix="remove the id from the split file or add the motion.")
    else:
        ordered = sorted(p.stem for p in motion_dir.glob("*.npy"))
    if options.get("max_motions"):
        ordered = ordered[: int(options["max_motions"])]
    return ordered, splits, split_files


def item_splits(splits: dict[str, list[str]], derived: dict[str, list[str]]) -> dict[str, list[str]] | None:
    """The split files' source ids -> the ids of the items made from them (whole + crops)."""
    if not splits:
        return None
    return {name: [d for i in ids if i in derived for d in derived[i]] for name, ids in splits.items()}


def load_humanml3d(root: Path, options: dict, variant: str = "humanml3d") -> RawCorpus:
    """Load HumanML3D (variant 'humanml3d') or KIT-ML ('kitml').

    Options: max_motions (first N source motions, in split-file order), fps (override 20 / 12.5).
    """
    root = Path(root)
    vec_dir, text_dir = root / "new_joint_vecs", root / "texts"
    for d in (vec_dir, text_dir):
        if not d.is_dir():
            raise DataError(f"expected a {d.name}/ folder in a {variant} dataset.", where=d,
                            fix="point --data at the folder holding new_joint_vecs/ and texts/.")
    fps = float(options.get("fps", FPS[variant]))   # options are checked in loaders/__init__.load_raw
    ordered, splits, split_files = source_ids(root, vec_dir, options)

    counters = {"skipped_crops": 0}
    items: list[MotionItem] = []
    derived: dict[str, list[str]] = {}        # source id -> ids of its items (whole + crops)
    dim = None                                 # D of the first motion decides the layout
    for motion_id in ordered:
        path = vec_dir / f"{motion_id}.npy"
        motion = load_npy(path)
        if dim is None and motion.ndim == 2:   # validator names any motion that differs
            dim = int(motion.shape[1])
        captions = read_captions(text_dir / f"{motion_id}.txt", motion_id)
        new = motion_items(motion_id, motion, captions, fps, path, counters)
        items.extend(new)
        derived[motion_id] = [it.id for it in new]

    layout = LAYOUTS[variant] if dim == LAYOUTS[variant].dim else FeatureLayout("raw", int(dim or 0))
    meta = {"format": variant, "root": str(root), "source_motions": len(ordered),
            "skipped_crops": counters["skipped_crops"], "split_files": split_files}
    for key, name in (("source_mean", "Mean.npy"), ("source_std", "Std.npy")):
        if (root / name).is_file():
            meta[key] = load_npy(root / name).astype(float).ravel().tolist()
    return RawCorpus(name=root.name, items=items, fps=fps, layout=layout, splits=item_splits(splits, derived),
                     meta=meta)


def load_kitml(root: Path, options: dict) -> RawCorpus:
    return load_humanml3d(root, options, variant="kitml")
