"""BVH motions -> the 22-joint layout -> invariant features; and the generic BVH-folder loader.

Conversion of one file (``bvh_to_joints`` / ``convert_bvh``): parse + forward kinematics
(``bvh_parse``), map joint names to the 22 SMPL-order joints, convert units to metres (guessed
from the skeleton's size), rotate so +Y is up (guessed from where the head is), resample to
20 fps (linear), then ``features.joints_to_features``.

Generic folder layout: ``**/*.bvh``, each with an optional caption sidecar next to it:
``<name>.json`` = ``{"captions": [...]}`` or ``{"text": "..."}`` (optional ``"group"``: label
group for equivalence-aware evaluation) or ``<name>.txt`` = one caption per non-empty line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .. import skeleton
from ..errors import DataError
from ..features import JOINTS22_LAYOUT, joints_to_features, resample_linear
from ..textfile import read_text_utf8
from ..types import MotionItem, RawCorpus
from .bvh_parse import BvhClip, parse_bvh, world_positions
from .orient import unit_from_body_length, unit_scale, up_rotation
from .parallel import convert_files

TARGET_FPS = 20.0
_SPINE_FRACTIONS = (0.26, 0.50, 0.56)   # SMPL spine1/2/3 as fractions of the pelvis->neck length

# Body part words (side words removed, lower case, joined) -> role.  "shoulder" and "leg" are
# ambiguous across exporters and are resolved in _assign_roles.
_PART_ROLES = {
    "hips": "pelvis", "pelvis": "pelvis", "root": "root",
    "neck": "neck", "neck1": "neck", "head": "head",
    "spine": "spine", "spine1": "spine", "spine2": "spine", "spine3": "spine", "spine4": "spine",
    "chest": "spine", "chest1": "spine", "chest2": "spine", "upperchest": "spine", "abdomen": "spine",
    "torso": "spine", "lowerback": "spine", "upperback": "spine", "back": "spine",
    "clavicle": "collar", "collar": "collar", "collarbone": "collar", "shoulder": "shoulder?",
    "upperarm": "shoulder", "arm": "shoulder", "shldr": "shoulder", "humerus": "shoulder",
    "lowerarm": "elbow", "forearm": "elbow", "elbow": "elbow",
    "hand": "wrist", "wrist": "wrist",
    "upperleg": "hip", "upleg": "hip", "thigh": "hip", "hip": "hip", "femur": "hip",
    "lowerleg": "knee", "leg": "knee", "shin": "knee", "knee": "knee", "calf": "knee", "tibia": "knee",
    "foot": "ankle", "ankle": "ankle",
    "toes": "toe", "toe": "toe", "toebase": "toe", "ball": "toe",
}
_SIDED_ROLES = ("collar", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "toe")


def _name_words(name: str) -> tuple[str | None, str]:
    """'mixamorig:LeftUpLeg' -> ('left', 'upleg'); 'Shoulder_L' -> ('left', 'shoulder')."""
    base = re.split(r"[:|]", name)[-1]
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", base)]
    side = None
    rest = []
    for w in words:
        if w in ("left", "l") and side is None:
            side = "left"
        elif w in ("right", "r") and side is None:
            side = "right"
        else:
            rest.append(w)
    return side, "".join(rest)


def _assign_roles(clip: BvhClip) -> dict[str, int]:
    """Role (e.g. 'left_wrist', 'pelvis', 'neck') -> joint index; the shallowest joint wins."""
    found: dict[str, list[int]] = {}
    for j, joint in enumerate(clip.joints):
        side, part = _name_words(joint.name)
        role = _PART_ROLES.get(part)
        if role is None:
            continue
        if role == "hip" and side is None:
            role = "pelvis"                       # "Hip" without a side is the pelvis
        if role.rstrip("?") in _SIDED_ROLES:
            if side is None:
                continue
            role = f"{side}_{role}"
        found.setdefault(role, []).append(j)
    for side in ("left", "right"):
        # "Shoulder" is the clavicle when a separate upper-arm joint exists (Bandai, mixamo, CMU),
        # else it is the upper arm itself.
        ambiguous = found.pop(f"{side}_shoulder?", [])
        if ambiguous:
            target = f"{side}_collar" if f"{side}_shoulder" in found else f"{side}_shoulder"
            found.setdefault(target, []).extend(ambiguous)
    if "pelvis" not in found and "root" in found:
        found["pelvis"] = found["root"]
    depth = [j.depth for j in clip.joints]
    return {role: min(idx, key=lambda k: depth[k]) for role, idx in found.items()}


def _chain_to(clip: BvhClip, start: int, ancestor: int) -> list[int] | None:
    """Joint indices from ancestor to start (inclusive), or None if ancestor is not above start."""
    chain = [start]
    while chain[-1] != ancestor:
        parent = clip.joints[chain[-1]].parent
        if parent < 0:
            return None
        chain.append(parent)
    return chain[::-1]


def _interpolate_spine(clip: BvhClip, pos: np.ndarray, chain: list[int]) -> np.ndarray:
    """(T, 3, 3) spine1..3 on the pelvis->neck polyline, at fixed fractions of its rest length."""
    if len(chain) == 5:                                 # exactly three joints in between: use them
        return pos[:, chain[1:4]]
    seg = np.array([np.linalg.norm(clip.joints[j].offset) for j in chain[1:]])  # rest bone lengths
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    cum = cum / cum[-1] if cum[-1] > 0 else np.linspace(0, 1, len(cum))
    out = []
    for f in _SPINE_FRACTIONS:
        k = int(np.clip(np.searchsorted(cum, f, side="right") - 1, 0, len(seg) - 1))
        w = (f - cum[k]) / max(cum[k + 1] - cum[k], 1e-9)
        out.append(pos[:, chain[k]] * (1 - w) + pos[:, chain[k + 1]] * w)
    return np.stack(out, axis=1)


def bvh_to_smpl22(clip: BvhClip, pos: np.ndarray, ends: np.ndarray,
                  roles: dict[str, int] | None = None) -> np.ndarray:
    """World positions of the file's joints (T, J, 3) -> (T, 22, 3) in SMPL joint order."""
    roles = roles if roles is not None else _assign_roles(clip)
    required = ["pelvis", "neck"] + [f"{s}_{r}" for s in ("left", "right")
                                     for r in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]
    missing = [r for r in required if r not in roles]
    if missing:
        raise DataError(f"cannot map the skeleton to the 22-joint body: no joint found for {missing} "
                        f"(joints in the file: {', '.join(clip.names)}).", where=clip.path,
                        fix="rename the joints to common names (Hips, Spine, Neck, Head, LeftUpLeg, "
                            "LeftLeg, LeftFoot, LeftToeBase, LeftShoulder, LeftArm, LeftForeArm, LeftHand, ...).")
    T = len(pos)
    out = np.zeros((T, skeleton.NUM_JOINTS, 3))
    J = skeleton.JOINT_INDEX
    for role, j in roles.items():
        name = role.replace("_toe", "_foot")          # SMPL calls the toe joint "foot"
        if name in J:
            out[:, J[name]] = pos[:, j]
    out[:, J["pelvis"]] = pos[:, roles["pelvis"]]
    chain = _chain_to(clip, roles["neck"], roles["pelvis"])
    if chain is None or len(chain) < 2:
        raise DataError(f"the neck joint {clip.names[roles['neck']]!r} is not below the pelvis "
                        f"{clip.names[roles['pelvis']]!r} in the hierarchy.", where=clip.path)
    out[:, [J["spine1"], J["spine2"], J["spine3"]]] = _interpolate_spine(clip, pos, chain)
    neck = pos[:, roles["neck"]]
    # head / toes / collars the file lacks: End Sites, else a point on the body that is close.
    if "head" not in roles:
        end = ends[:, roles["neck"]]
        out[:, J["head"]] = end if np.isfinite(end).all() else neck
    for side in ("left", "right"):
        ankle = roles[f"{side}_ankle"]
        if f"{side}_toe" not in roles:
            end = ends[:, ankle]
            out[:, J[f"{side}_foot"]] = end if np.isfinite(end).all() else pos[:, ankle]
        if f"{side}_collar" not in roles:
            base = 0.5 * (out[:, J["spine3"]] + neck)
            out[:, J[f"{side}_collar"]] = base + 0.5 * (pos[:, roles[f"{side}_shoulder"]] - base)
    return out


def _unit_scale(clip: BvhClip, roles: dict[str, int], unit: str | None) -> float:
    """Metres per file unit: from the option, else from the rest-pose head->ankle bone-path length
    (pose independent; ~1.5 m for an adult): nearest of m / cm / mm on a log scale (orient.py)."""
    if unit is not None:
        return unit_scale(unit, clip.path)
    top = roles.get("head", roles["neck"])
    path = set(_chain_to(clip, top, roles["pelvis"]) or []) | set(
        _chain_to(clip, roles["left_ankle"], roles["pelvis"]) or [])
    length = sum(np.linalg.norm(clip.joints[j].offset) for j in path if j != roles["pelvis"])
    return unit_scale(unit_from_body_length(length))


def bvh_to_joints(path: str | Path, options: dict | None = None) -> tuple[np.ndarray, int]:
    """One BVH file -> ((T', 22, 3) metres, +Y up, at options['fps'] (default 20), source frame count).

    Options: unit ('m'|'cm'|'mm', default guessed), up_axis ('y', 'z', '-z', ..., default guessed),
    fps (target frame rate, default 20).
    """
    options = options or {}
    clip = parse_bvh(path)
    pos, ends = world_positions(clip)
    roles = _assign_roles(clip)
    joints = bvh_to_smpl22(clip, pos, ends, roles)
    joints = joints * _unit_scale(clip, roles, options.get("unit"))
    joints = joints @ up_rotation(joints, options.get("up_axis"), clip.path).T
    src_fps = clip.fps
    if abs(src_fps - round(src_fps)) < 1e-3 * src_fps:  # "Frame Time: 0.0333333" means 30 fps
        src_fps = float(round(src_fps))
    return resample_linear(joints, src_fps, float(options.get("fps", TARGET_FPS))), len(clip.motion)


def convert_bvh(path: str | Path, options: dict | None = None) -> tuple[np.ndarray, int]:
    """One BVH file -> ((T', 137) float32 features at options['fps'], source frame count)."""
    options = options or {}
    joints, n_source = bvh_to_joints(path, options)
    return joints_to_features(joints, float(options.get("fps", TARGET_FPS))), n_source


def convert_many(paths: list[Path], options: dict) -> list[tuple[np.ndarray, int]]:
    """``convert_bvh`` on many files, in a process pool when that helps (option workers, default
    all CPUs of this process); results in the order of paths."""
    opts = {k: v for k, v in options.items() if k in ("unit", "up_axis", "fps")}
    return convert_files(convert_bvh, paths, opts, options.get("workers"))


def _sidecar(bvh: Path) -> tuple[list[str], str | None]:
    """Captions and group of one BVH file from <name>.json or <name>.txt next to it."""
    js, txt = bvh.with_suffix(".json"), bvh.with_suffix(".txt")
    if js.exists():
        try:
            meta = json.loads(read_text_utf8(js))
        except json.JSONDecodeError as e:
            raise DataError(f"caption sidecar is not valid JSON ({e}).", where=js) from None
        if not isinstance(meta, dict):
            raise DataError("caption sidecar must be a JSON object.", where=js,
                            fix='write {"captions": ["a person walks", ...]} or {"text": "..."}.')
        caps = meta.get("captions", meta.get("text"))
        caps = [caps] if isinstance(caps, str) else caps
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise DataError('caption sidecar needs "captions" (a list of strings) or "text" (a string).',
                            where=js, fix='write {"captions": ["a person walks", ...]}.')
        group = meta.get("group")
        return [c.strip() for c in caps], (str(group) if group is not None else None)
    if txt.exists():
        return [line.strip() for line in read_text_utf8(txt).split("\n") if line.strip()], None
    raise DataError("this BVH file has no captions.", where=bvh,
                    fix=f"add {txt.name} (one caption per line) or {js.name} "
                        '({"captions": [...], "group": optional label}).')


def load_bvh_folder(root: Path, options: dict) -> RawCorpus:
    """Every ``*.bvh`` under root (recursively) with its caption sidecar.

    Options: max_motions (first N files in sorted order), workers, unit, up_axis, fps (see
    ``bvh_to_joints``).  Ids are the file paths relative to root without ``.bvh``.
    """
    root = Path(root)
    files = sorted(root.rglob("*.bvh"))
    if not files:
        raise DataError("no .bvh files found.", where=root, fix="point --data at the folder holding the BVH files.")
    if options.get("max_motions"):
        files = files[: int(options["max_motions"])]
    sidecars = [_sidecar(f) for f in files]
    converted = convert_many(files, options)
    items = [MotionItem(f.relative_to(root).with_suffix("").as_posix(), x, caps, group, str(f))
             for f, (x, _), (caps, group) in zip(files, converted, sidecars)]
    return RawCorpus(name=root.name, items=items, fps=float(options.get("fps", TARGET_FPS)),
                     layout=JOINTS22_LAYOUT, splits=None,
                     meta={"format": "bvh", "root": str(root), "files": len(files),
                           "source_frames": int(sum(n for _, n in converted)),
                           "frames": int(sum(len(x) for x, _ in converted))})
