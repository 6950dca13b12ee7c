"""Fabricated datasets for the loader tests, one builder per format, written into a tmp folder.

``fabricated_motion`` makes (T, 22, 3) joint positions of a walking, turning body (SMPL joint order).

The BVH writer produces a small human skeleton in several naming conventions (mixamo, Bandai),
units and up axes, walking forward (+Z in its own Y-up frame) and swinging its legs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.data import skeleton

# role, parent role, rest offset in metres (Y up, facing +Z, left = +X)
_BODY = [
    ("pelvis", None, (0.0, 0.93, 0.0)),
    ("spine_a", "pelvis", (0.0, 0.12, 0.0)),
    ("spine_b", "spine_a", (0.0, 0.13, 0.0)),
    ("spine_c", "spine_b", (0.0, 0.06, 0.01)),
    ("neck", "spine_c", (0.0, 0.21, -0.01)),
    ("head", "neck", (0.0, 0.10, 0.03)),
]
for _s, _x in (("l", 1.0), ("r", -1.0)):
    _BODY += [
        (f"{_s}_collar", "spine_c", (0.07 * _x, 0.14, 0.0)),
        (f"{_s}_shoulder", f"{_s}_collar", (0.10 * _x, 0.02, 0.0)),
        (f"{_s}_elbow", f"{_s}_shoulder", (0.03 * _x, -0.28, 0.0)),
        (f"{_s}_wrist", f"{_s}_elbow", (0.02 * _x, -0.25, 0.02)),
        (f"{_s}_hip", "pelvis", (0.08 * _x, -0.08, 0.0)),
        (f"{_s}_knee", f"{_s}_hip", (0.01 * _x, -0.35, 0.01)),
        (f"{_s}_ankle", f"{_s}_knee", (0.0, -0.41, -0.03)),
        (f"{_s}_toe", f"{_s}_ankle", (0.01 * _x, -0.07, 0.12)),
    ]

NAMES = {
    "mixamo": {"pelvis": "mixamorig:Hips", "spine_a": "mixamorig:Spine", "spine_b": "mixamorig:Spine1",
               "spine_c": "mixamorig:Spine2", "neck": "mixamorig:Neck", "head": "mixamorig:Head",
               **{f"{s}_{r}": f"mixamorig:{side}{n}" for s, side in (("l", "Left"), ("r", "Right"))
                  for r, n in (("collar", "Shoulder"), ("shoulder", "Arm"), ("elbow", "ForeArm"),
                               ("wrist", "Hand"), ("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"),
                               ("toe", "ToeBase"))}},
    "bandai": {"pelvis": "Hips", "spine_a": "Spine", "spine_b": "Chest", "neck": "Neck", "head": "Head",
               **{f"{s}_{r}": f"{n}_{s.upper()}" for s in ("l", "r")
                  for r, n in (("collar", "Shoulder"), ("shoulder", "UpperArm"), ("elbow", "LowerArm"),
                               ("wrist", "Hand"), ("hip", "UpperLeg"), ("knee", "LowerLeg"), ("ankle", "Foot"),
                               ("toe", "Toes"))}},
}
UNIT_SCALE = {"m": 1.0, "cm": 100.0, "mm": 1000.0}
# Y-up -> Z-up is a rotation about X by +90 deg: (x, y, z) -> (x, -z, y); a rotation about Y by a
# becomes one about -Z, about Z becomes about Y, so "Z X Y" angles (a, b, c) become "Y X Z" (-a, b, c).
_Q = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def body_roles(style: str) -> list[tuple[str, str | None, tuple]]:
    names = NAMES[style]
    out = []
    for role, parent, off in _BODY:
        if role not in names:           # bandai-style has one spine joint fewer: re-parent and merge
            continue
        if parent is not None and parent not in names:
            grand = next(p for r, p, _ in _BODY if r == parent)
            merged = np.add(off, next(o for r, _, o in _BODY if r == parent))
            out.append((role, grand, tuple(merged)))
        else:
            out.append((role, parent, off))
    return out


def make_bvh_text(style: str = "mixamo", unit: str = "cm", up: str = "y", frames: int = 31, fps: float = 30.0,
                  speed: float = 1.0, static_root: bool = False, raise_hand: str | None = None) -> str:
    """A walking clip as BVH text."""
    scale = UNIT_SCALE[unit]
    names = NAMES[style]
    roles = body_roles(style)
    children: dict[str | None, list] = {}
    for role, parent, off in roles:
        children.setdefault(parent, []).append((role, off))
    t = np.arange(frames) / fps
    swing = 25.0 * np.sin(2 * np.pi * 1.0 * t)
    angles = {"l_hip": swing, "r_hip": -swing, "l_knee": np.abs(swing), "r_knee": np.abs(swing)}
    if raise_hand:   # rotate the shoulder about the forward axis so the arm lifts sideways
        s = "l" if raise_hand == "left" else "r"
        angles[f"{s}_shoulder"] = (1 if s == "l" else -1) * np.linspace(0, 150, frames)
    z_up = up == "z"

    def vec(v) -> np.ndarray:
        v = np.asarray(v, dtype=float) * scale
        return _Q @ v if z_up else v

    rot_channels = "Yrotation Xrotation Zrotation" if z_up else "Zrotation Xrotation Yrotation"
    lines = ["HIERARCHY"]
    columns: list[np.ndarray] = []

    def rot_columns(role: str) -> list[np.ndarray]:
        # hips/knees bend about X (sagittal); shoulders about Z (frontal)
        a = np.zeros(frames)
        b = np.zeros(frames)
        if role.endswith(("hip", "knee")):
            b = angles.get(role, b)
        else:
            a = angles.get(role, a)
        return [-a if z_up else a, b, np.zeros(frames)]

    def emit(role: str, off, depth: int, keyword: str) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{keyword} {names[role]}")
        lines.append(f"{pad}{{")
        o = vec(off)
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if role == "pelvis" or static_root:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {rot_channels}")
            if role == "pelvis":
                path = np.stack([np.zeros(frames), np.full(frames, 0.93), speed * t], axis=1) * scale
                path = path @ _Q.T if z_up else path
                columns.extend(path.T)
            else:
                columns.extend(np.repeat(o[None], frames, 0).T)
        else:
            lines.append(f"{pad}  CHANNELS 3 {rot_channels}")
        columns.extend(rot_columns(role))
        for child, child_off in children.get(role, []):
            emit(child, child_off, depth + 1, "JOINT")
        if role in ("head", "l_toe", "r_toe"):
            e = vec((0.0, 0.05, 0.0))
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {e[0]:.6f} {e[1]:.6f} {e[2]:.6f}",
                          f"{pad}  }}"])
        lines.append(f"{pad}}}")

    if static_root:   # Bandai: a static joint_Root above Hips, 6 channels everywhere
        lines += ["ROOT joint_Root", "{", "  OFFSET 0 0 0",
                  f"  CHANNELS 6 Xposition Yposition Zposition {rot_channels}"]
        columns.extend([np.zeros(frames)] * 6)
        emit("pelvis", (0.0, 0.0, 0.0), 1, "JOINT")
        lines.append("}")
    else:
        emit("pelvis", (0.0, 0.0, 0.0), 0, "ROOT")
    data = np.stack(columns, axis=1)
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1.0 / fps:.7f}"]
    lines += [" ".join(f"{v:.6f}" for v in row) for row in data]
    return "\n".join(lines) + "\n"


def write_bvh(path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(make_bvh_text(**kwargs))
    return path


TINY_BVH = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.033333
0 90 0 0 0 0 0 0 0
0 90 1 0 0 0 0 0 0
"""


# ---- joint positions (SMPL 22-joint order) ----------------------------------------------------------

# A standing adult in SMPL joint order: metres, +Y up, facing +Z, so the left side is +X.
REST_POSE = np.array([
    [0.00, 0.93, 0.00], [0.08, 0.85, 0.00], [-0.08, 0.85, 0.00], [0.00, 1.05, 0.00],
    [0.09, 0.50, 0.01], [-0.09, 0.50, 0.01], [0.00, 1.18, 0.00], [0.09, 0.09, -0.02],
    [-0.09, 0.09, -0.02], [0.00, 1.24, 0.01], [0.10, 0.02, 0.10], [-0.10, 0.02, 0.10],
    [0.00, 1.45, 0.00], [0.07, 1.38, 0.00], [-0.07, 1.38, 0.00], [0.00, 1.55, 0.03],
    [0.17, 1.40, 0.00], [-0.17, 1.40, 0.00], [0.20, 1.12, 0.00], [-0.20, 1.12, 0.00],
    [0.22, 0.87, 0.02], [-0.22, 0.87, 0.02],
])


def yaw_matrix(angle: float) -> np.ndarray:
    """Rotation about +Y taking +Z towards +X by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def fabricated_motion(T: int = 60, fps: float = 20.0, speed: float = 1.0, turn_rate: float = 0.0,
                      seed: int = 0, wiggle: float = 0.03) -> np.ndarray:
    """(T, 22, 3): the rest pose with smooth asymmetric joint wiggles, walking forward at ``speed``
    m/s along its facing, which turns at ``turn_rate`` rad/s (positive = towards its left)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    phase = rng.uniform(0, 2 * np.pi, size=(22, 3))
    freq = rng.uniform(0.5, 2.0, size=(22, 3))
    body = REST_POSE[None] + wiggle * np.sin(2 * np.pi * freq[None] * t[:, None, None] + phase[None])
    body[:, :, 1] -= body[:, list(skeleton.FOOT_JOINTS), 1].min() - REST_POSE[list(skeleton.FOOT_JOINTS), 1].min()
    yaw = turn_rate * t
    out = np.empty_like(body)
    root = np.zeros(3)
    for k in range(T):
        out[k] = body[k] @ yaw_matrix(yaw[k]).T + root
        root = root + yaw_matrix(yaw[k]) @ np.array([0.0, 0.0, speed / fps])
    return out


def fabricated_pair(T: int = 50, fps: float = 20.0, seed: int = 0, gap: float = 1.5,
                    wiggle: float = 0.03) -> np.ndarray:
    """(T, 2, 22, 3): person A walking and turning, person B ``gap`` m in front of A's start, facing
    A (turned by pi) and stepping sideways; both wiggle asymmetrically."""
    a = fabricated_motion(T=T, fps=fps, speed=0.6, turn_rate=0.4, seed=seed, wiggle=wiggle)
    b = fabricated_motion(T=T, fps=fps, speed=0.0, seed=seed + 1, wiggle=wiggle) @ yaw_matrix(np.pi).T
    b += np.array([0.0, 0.0, gap]) + np.linspace(0, 0.5, T)[:, None, None] * np.array([1.0, 0.0, 0.0])
    return np.stack([a, b], axis=1)


# ---- dataset folders -------------------------------------------------------------------------------

def make_humanml3d(root: Path, dim: int = 263, lengths=(40, 60, 50, 50, 45)) -> Path:
    rng = np.random.default_rng(0)
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    ids = [f"00000{i + 1}" for i in range(len(lengths))]
    for motion_id, T in zip(ids, lengths):
        np.save(root / "new_joint_vecs" / f"{motion_id}.npy", rng.normal(size=(T, dim)).astype(np.float32))
    texts = {
        "000001": "a person walks.#a/DET person/NOUN walk/VERB#0.0#0.0\nthe man walks forward#x#0.0#0.0\n",
        "000002": "whole motion#x#0.0#0.0\njumps twice#x#0.5#1.5\nhops#x#0.5#1.5\nspins#x#nan#nan\n",
        "000003": "\nonly a part#x#1.0#2.0\n",
        "000004": "outside the motion#x#5.0#9.0\n",
        "000005": "a caption with # inside#x#0.0#0.0\n",
    }
    for motion_id in ids:
        (root / "texts" / f"{motion_id}.txt").write_text(texts[motion_id])
    (root / "train.txt").write_text("000001\n000002\n000003\n")
    (root / "val.txt").write_text("000004\n000005\n")
    np.save(root / "Mean.npy", np.zeros(dim, np.float32))
    np.save(root / "Std.npy", np.ones(dim, np.float32))
    return root


def make_tmr(root: Path) -> Path:
    rng = np.random.default_rng(1)
    ann = {
        "00001": {"path": "KIT/1/walk_poses", "duration": 2.0,
                  "annotations": [{"seg_id": "00001_0", "text": "a person walks", "start": 0.0, "end": 2.0}]},
        "M00001": {"path": "M/KIT/1/walk_poses", "duration": 2.0,
                   "annotations": [{"seg_id": "M00001_0", "text": "a person walks", "start": 0.0, "end": 2.0}]},
        "00002": {"path": "KIT/2/jump_poses", "duration": 3.0,
                  "annotations": [{"seg_id": "00002_0", "text": "jumps", "start": 0.0, "end": 3.0},
                                  {"seg_id": "00002_1", "text": "lands", "start": 1.5, "end": 3.0},
                                  {"seg_id": "00002_2", "text": "lands softly", "start": 1.5, "end": 3.0}]},
        "00003": {"path": "KIT/3/wave_poses", "duration": 2.5,
                  "annotations": [{"seg_id": "00003_0", "text": "waves", "start": 0.0, "end": 2.5}]},
    }
    (root / "splits").mkdir(parents=True)
    (root / "annotations.json").write_text(json.dumps(ann))
    (root / "splits" / "train.txt").write_text("00001\nM00001\n00002\n")
    (root / "splits" / "val.txt").write_text("00003\n")
    (root / "splits" / "all.txt").write_text("00001\nM00001\n00002\n00003\n")
    motions = root / "motions"
    for rel, T in (("KIT/1/walk_poses", 40), ("M/KIT/1/walk_poses", 40)):
        (motions / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(motions / f"{rel}.npy", rng.normal(size=(T, 263)).astype(np.float32))
    np.save(motions / "00002.npy", rng.normal(size=(60, 263)).astype(np.float32))   # keyid fallback
    np.save(motions / "00003.npy", rng.normal(size=(50, 263)).astype(np.float32))
    return root


def write_captions(root: Path, rows, captions: str = "csv") -> None:
    """rows (id, text, group or None) -> captions.csv (id,text,group) or captions.jsonl."""
    if captions == "csv":
        lines = ["id,text,group"] + [f'{i},"{t}",{g or ""}' for i, t, g in rows]
        (root / "captions.csv").write_text("\n".join(lines) + "\n")
    else:
        (root / "captions.jsonl").write_text("\n".join(
            json.dumps({"id": i, "text": t, **({"group": g} if g else {})}) for i, t, g in rows) + "\n")


def make_folder(root: Path, dim: int = 6, captions: str = "csv") -> Path:
    rng = np.random.default_rng(2)
    (root / "motions").mkdir(parents=True)
    for motion_id in ("a", "b", "c"):
        np.save(root / "motions" / f"{motion_id}.npy", rng.normal(size=(12, dim)).astype(np.float32))
    rows = [("a", "two people shake hands", "greet"), ("a", "they greet, smiling", "greet"),
            ("b", "one pushes the other", None), ("b", "a push", None), ("c", "they hug", None)]
    write_captions(root, rows, captions)
    return root


def make_bandai(root: Path) -> Path:
    (root / "cfg").mkdir(parents=True)
    (root / "cfg" / "content_label.txt").write_text("dataset-2_walk\ndataset-2_wave-left-hand\ndataset-2_kick-high")
    (root / "cfg" / "style_label.txt").write_text("dataset-2_normal\ndataset-2_elderly")
    for name, content, style, kw in (("dataset-2_walk_normal_001", 0, 0, {"speed": 1.2}),
                                     ("dataset-2_wave-left-hand_elderly_001", 1, 1, {"raise_hand": "left"}),
                                     ("dataset-2_kick-high_normal_001", 2, 0, {})):
        write_bvh(root / "data" / f"{name}.bvh", style="bandai", static_root=True, **kw)
        (root / "data" / f"{name}.json").write_text(json.dumps({"content": content, "style": style}))
    return root


def make_joints_folder(root: Path, people: int = 1, lengths=(40, 30, 25), captions: str = "csv",
                       scale: float = 1.0, z_up: bool = False) -> Path:
    """The folder layout with joint positions: motions/<id>.npy (T, 22, 3) or (T, 2, 22, 3) +
    captions (csv / jsonl); ``scale`` 100 writes centimetres, ``z_up`` Z-up coordinates."""
    (root / "motions").mkdir(parents=True)
    ids = ["a", "b", "c"][: len(lengths)]
    for k, (motion_id, T) in enumerate(zip(ids, lengths)):
        x = fabricated_pair(T=T, seed=k) if people == 2 else fabricated_motion(T=T, turn_rate=0.3, seed=k)
        x = x * scale
        if z_up:                                   # Y-up -> Z-up: (x, y, z) -> (x, -z, y)
            x = x @ _Q.T
        np.save(root / "motions" / f"{motion_id}.npy", x.astype(np.float32))
    rows = [r for r in (("a", "a person walks and turns left", "walk"), ("a", "someone strolls, turning", "walk"),
                        ("b", "a person walks", None), ("c", "a person turns", None)) if r[0] in ids]
    write_captions(root, rows, captions)
    return root


def make_joints_humanml3d(root: Path, lengths=(60, 40, 50)) -> Path:
    """HumanML3D's joint layout: new_joints/<id>.npy (T, 22, 3) + texts/<id>.txt (one span crop) +
    train/val split files."""
    (root / "new_joints").mkdir(parents=True)
    (root / "texts").mkdir()
    ids = [f"00000{i + 1}" for i in range(len(lengths))]
    for k, (motion_id, T) in enumerate(zip(ids, lengths)):
        np.save(root / "new_joints" / f"{motion_id}.npy", fabricated_motion(T=T, seed=k).astype(np.float32))
        (root / "texts" / f"{motion_id}.txt").write_text(f"a person walks {k}#a/DET person/NOUN walk/VERB#0.0#0.0\n")
    with open(root / "texts" / f"{ids[0]}.txt", "a") as fh:
        fh.write("the person steps#x#1.0#2.0\n")
    (root / "train.txt").write_text("\n".join(ids[:-1]) + "\n")
    (root / "val.txt").write_text(ids[-1] + "\n")
    return root
