"""Joint positions (HumanML3D ``new_joints/``, AMASS / dance exports) -> invariant joint features.

Two layouts (the first one present is used):

    <root>/motions/<id>.npy + captions.csv | captions.jsonl (+ splits/, meta.json)   as folder.py
    <root>/new_joints/<id>.npy + texts/<id>.txt (+ train/val/test.txt)             as humanml3d.py

Every .npy holds (T, 22, 3) joint positions of one person, or (T, 2, 22, 3) of two people
((T, 1, 22, 3) counts as one), joints in SMPL order (``skeleton.JOINT_NAMES``; the first 22 joints
of SMPL / SMPL-H / SMPL-X).  One file -> features: scale to metres, rotate the up axis to +Y,
resample ``fps`` -> ``target_fps`` (linear), then ``features.joints_to_features`` (T', 137),
``JOINTS22_LAYOUT``, or ``features.pair_features`` (T', 278), ``JOINTS22_PAIR_LAYOUT``.

Options:
  fps         frame rate of the stored positions (folder layout: meta.json "fps", else 20;
              new_joints: 20, HumanML3D's rate).  Unlike the ``bvh`` format, whose files carry their
              own rate and whose ``fps`` is the target, a .npy has no rate: ``fps`` is the source's.
  target_fps  frame rate of the features, i.e. of the corpus (default 20, the rate the bvh format
              resamples to, so joint and BVH corpora agree); equal rates mean no resampling.
  unit        'm' | 'cm' | 'mm' (default: guessed per file from the bone lengths, as the bvh format)
  up_axis     'y' | 'z' | '-z' | 'x' | ... (default 'y', HumanML3D's; AMASS world coordinates are
              'z').  Without the option, a dataset whose motions mostly stand along another axis
              is an error that names it (the head is above the feet in nearly every clip).
  max_motions, workers   as the other loaders.

HumanML3D caption spans (seconds) crop the features at ``target_fps``, after conversion (the
velocities at a crop's last frame see the next frame; the floor is the whole motion's).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .. import skeleton
from ..errors import DataError
from ..features import JOINTS22_LAYOUT, JOINTS22_PAIR_LAYOUT, joints_to_features, pair_features, resample_linear
from ..types import MotionItem, RawCorpus
from .bvh import TARGET_FPS
from .folder import read_fps, read_folder_index
from .humanml3d import FPS, item_splits, load_npy, motion_items, read_captions, source_ids
from .orient import UP_AXES, body_path_length, guess_up_key, unit_from_body_length, unit_scale, up_key
from .parallel import convert_files

MIN_FRAMES = 2                     # velocities (and so every feature block) need two frames
LAYOUTS = {1: JOINTS22_LAYOUT, 2: JOINTS22_PAIR_LAYOUT}
_SAVE_FIX = "save (frames, 22, 3) joint positions (or (frames, 2, 22, 3) for two people) with numpy.save."


def _checked_shape(x: np.ndarray, path: str) -> np.ndarray:
    """(T, 22, 3) or (T, 2, 22, 3) -> (T, P, 22, 3) with P in {1, 2}, or one DataError naming the shape."""
    shape = tuple(x.shape)
    if x.ndim == 2:
        hint = (f" If they are flattened joints, save motion.reshape({shape[0]}, 22, 3)." if shape[1] == 66 else "")
        raise DataError(f"the motion has shape {shape}: (frames, features), not joint positions.", where=path,
                        fix="load (T, D) feature arrays with --format folder; for this format " + _SAVE_FIX + hint)
    if x.ndim == 4 and shape[1] not in (1, 2):
        raise DataError(f"the motion has shape {shape}: {shape[1]} people; one or two are supported.", where=path,
                        fix="split the scene into files of one or two people.")
    if x.ndim not in (3, 4):
        raise DataError(f"the motion has shape {shape}; expected (frames, 22, 3) or (frames, 2, 22, 3).",
                        where=path, fix=_SAVE_FIX)
    if shape[-1] != 3:
        raise DataError(f"the motion has shape {shape}: {shape[-1]} coordinates per joint; expected 3 (x, y, z).",
                        where=path, fix=_SAVE_FIX)
    if shape[-2] == 21:
        raise DataError(f"the motion has shape {shape}: KIT-ML 21-joint positions are not supported (the features "
                        "need the SMPL 22-joint body, whose collars and three spine joints the KIT skeleton lacks).",
                        where=path, fix="load KIT-ML from its features: --format kitml on the folder holding "
                                        "new_joint_vecs/ (T, 251) and texts/.")
    if shape[-2] != skeleton.NUM_JOINTS:
        raise DataError(f"the motion has shape {shape}: {shape[-2]} joints; expected the 22 SMPL body joints.",
                        where=path, fix="save the 22 body joints in SMPL order; for SMPL / SMPL-H / SMPL-X joints "
                                        "(24 / 52 / 55) keep the first 22: joints[..., :22, :].")
    if shape[0] < MIN_FRAMES:
        raise DataError(f"the motion has shape {shape}: {shape[0]} frame(s); at least {MIN_FRAMES} are needed "
                        "(velocities compare consecutive frames).", where=path, fix="remove the file or re-export it.")
    joints = x.reshape(shape[0], -1, skeleton.NUM_JOINTS, 3)
    if not np.isfinite(joints).all():
        frame, person, joint, _ = np.argwhere(~np.isfinite(joints))[0]
        who = f"person {person}, " if joints.shape[1] == 2 else ""
        raise DataError(f"the motion (shape {shape}) contains NaN/inf (first at frame {frame}, {who}joint {joint} "
                        f"{skeleton.JOINT_NAMES[joint]}).", where=path,
                        fix="fill the gap (e.g. interpolate the missing frames) or drop the motion.")
    return joints


def convert_joints_file(path: str, options: dict) -> tuple[np.ndarray, dict]:
    """One joint .npy -> ((T', 137 or 278) float32 features at options['target_fps'], facts).

    facts: source_frames, people, unit (given or guessed), up (the axis the head is above the feet
    along in the file, for the loader's up-axis check).  Options: fps (source), target_fps, unit,
    up_axis (see the module docstring; fps / target_fps default 20, up_axis 'y').
    """
    loaded = load_npy(Path(path))
    x_shape = tuple(loaded.shape)
    joints = _checked_shape(loaded, path).astype(np.float64)       # (T, P, 22, 3)
    T, people = joints.shape[:2]
    flat = joints.reshape(T * people, skeleton.NUM_JOINTS, 3)   # (T*P, 22, 3): one body per row
    unit = options.get("unit") or unit_from_body_length(body_path_length(flat))
    up = guess_up_key(flat)
    rotation = UP_AXES[up_key(options.get("up_axis") or "y", path)]
    joints = (joints * unit_scale(unit, path)) @ rotation.T
    source_fps, target_fps = float(options.get("fps", TARGET_FPS)), float(options.get("target_fps", TARGET_FPS))
    joints = resample_linear(joints, source_fps, target_fps)
    if len(joints) < MIN_FRAMES:
        raise DataError(f"the motion has shape {x_shape}: {T} frames at {source_fps:g} fps last "
                        f"{(T - 1) / source_fps:.3g} s, less than {MIN_FRAMES} frames at target_fps={target_fps:g}.",
                        where=path, fix="remove the file, or check the options fps / target_fps.")
    features = joints_to_features(joints[:, 0], target_fps) if people == 1 else pair_features(joints, target_fps)
    return features, {"source_frames": T, "people": people, "unit": unit, "up": up}


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"


def _convert_all(paths: list[Path], source_fps: float, options: dict) -> tuple[list[np.ndarray], dict]:
    """Convert every file (a process pool for many); check they agree on the number of people and
    that the files stand along the up axis used.  Returns (features per file, corpus meta)."""
    opts = {k: options[k] for k in ("unit", "up_axis", "target_fps") if k in options}
    opts["fps"] = source_fps
    converted = convert_files(convert_joints_file, paths, opts, options.get("workers"))
    if not converted:
        return [], {}
    people = converted[0][1]["people"]
    for path, (_, facts) in zip(paths, converted):
        if facts["people"] != people:
            raise DataError(f"the motion holds {_people(facts['people'])} but {paths[0].name} holds {_people(people)}; "
                            "one dataset holds one-person or two-person motions, not both.", where=path,
                            fix="keep the one-person and the two-person motions in separate datasets.")
    ups = Counter(facts["up"] for _, facts in converted)
    if "up_axis" not in options and 2 * (len(converted) - ups["y"]) > len(converted):
        axis = max((k for k in ups if k != "y"), key=ups.__getitem__)
        first = next(p for p, (_, facts) in zip(paths, converted) if facts["up"] == axis)
        raise DataError(f"{len(converted) - ups['y']} of {len(converted)} motions do not stand along +Y (the head is "
                        f"above the feet along {axis}): the files look {axis}-up, e.g. {first.name}.",
                        where=first.parent,
                        fix=f"pass the option up_axis={axis} (PATH:up_axis={axis}), or up_axis=y if they really "
                            "lie down.")
    meta = {"people": people, "source_fps": source_fps, "units": dict(Counter(f["unit"] for _, f in converted)),
            "source_frames": int(sum(f["source_frames"] for _, f in converted)),
            "frames": int(sum(len(x) for x, _ in converted))}
    return [x for x, _ in converted], meta


def _check_options(root: Path, options: dict) -> None:
    """unit / up_axis are strings (spec.check_option checks the numbers): check them before converting."""
    if options.get("unit") is not None:
        unit_scale(options["unit"], root)
    if options.get("up_axis") is not None:
        up_key(options["up_axis"], root)


def _load_folder_layout(root: Path, options: dict) -> RawCorpus:
    index = read_folder_index(root)
    source_fps, source_meta = read_fps(root, options)
    ids = index.selected_ids(options)
    paths = [index.motion_files[i] for i in ids]
    features, meta = _convert_all(paths, source_fps, options)
    items = [MotionItem(i, x, index.captions[i], index.groups.get(i), str(p), parts=index.parts.get(i))
             for i, x, p in zip(ids, features, paths)]
    target_fps = float(options.get("target_fps", TARGET_FPS))
    return index.corpus(root, "joints", items, target_fps, LAYOUTS[meta.get("people", 1)],
                        {"layout": "folder", **meta, "source_meta": source_meta})


def _load_humanml3d_layout(root: Path, options: dict) -> RawCorpus:
    joint_dir, text_dir = root / "new_joints", root / "texts"
    if not text_dir.is_dir():
        raise DataError("expected a texts/ folder next to new_joints/.", where=text_dir,
                        fix="add texts/<id>.txt (caption#tokens#start#end per line) for every motion.")
    source_fps = float(options.get("fps", FPS["humanml3d"]))
    ids, splits, split_files = source_ids(root, joint_dir, options)
    captions = {i: read_captions(text_dir / f"{i}.txt", i) for i in ids}   # text errors before the conversion
    paths = [joint_dir / f"{i}.npy" for i in ids]
    features, meta = _convert_all(paths, source_fps, options)
    target_fps = float(options.get("target_fps", TARGET_FPS))
    counters = {"skipped_crops": 0}
    items: list[MotionItem] = []
    derived: dict[str, list[str]] = {}      # source id -> ids of its items (whole + crops)
    for i, x, path in zip(ids, features, paths):
        new = motion_items(i, x, captions[i], target_fps, path, counters)
        items.extend(new)
        derived[i] = [item.id for item in new]
    return RawCorpus(name=root.name, items=items, fps=target_fps, layout=LAYOUTS[meta.get("people", 1)],
                     splits=item_splits(splits, derived),
                     meta={"format": "joints", "layout": "humanml3d", "root": str(root), "source_motions": len(ids),
                           "skipped_crops": counters["skipped_crops"], "split_files": split_files, **meta})


def load_joints(root: Path, options: dict) -> RawCorpus:
    """Options: fps, target_fps, unit, up_axis, max_motions, workers (see the module docstring)."""
    root = Path(root)
    _check_options(root, options)
    if (root / "motions").is_dir():
        return _load_folder_layout(root, options)
    if (root / "new_joints").is_dir():
        return _load_humanml3d_layout(root, options)
    raise DataError("no joint positions found: expected motions/<id>.npy with captions.csv or captions.jsonl, "
                    "or new_joints/<id>.npy with texts/<id>.txt.", where=root,
                    fix="point --data at the folder holding motions/ or new_joints/.")
