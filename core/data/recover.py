"""Features back to world joint positions, for every layout whose columns hold joint positions.

    from core.data.recover import features_to_joints
    joints = features_to_joints(corpus.motion(i), corpus.layout, corpus.fps)   # (T, 22, 3) or (T, 2, 22, 3)

Each layout is inverted from its definition (where it is built is named in brackets):

  joints22 (137; ``features.joints_to_features``: ``--format joints`` with one person, ``bvh``, ``bandai``,
      synthetic people=1).  Yaw_t = sum_{k<t} yaw_velocity_k / fps; root_{t+1} = root_t +
      R_y(yaw_t) (vx, 0, vz)_t / fps (the velocity of row t is a forward difference in frame t's facing);
      joint j = root + R_y(yaw_t) (x, 0, z)_j with its height above the floor as y.  The last row's
      velocities repeat the row before and the local velocities are redundant: neither is read.
  joints22x2 (278; ``features.pair_features``: ``--format joints`` with two people).  Person A as joints22;
      person B is placed per frame from the pair columns (B's root offset and facing in A's facing frame),
      not by integrating B's own velocities, so B never drifts away from A.
  hml263 / kit251 (HumanML3D / KIT-ML ``new_joint_vecs``, ``features.HML263_LAYOUT`` / ``KIT251_LAYOUT``), as
      HumanML3D's ``recover_from_ric``: column 0 holds HALF the per-frame yaw step (arcsin of the step
      quaternion's y part) with the opposite sign, so yaw_t = -2 sum_{k<t} col0_k; root_t = sum_{k=1..t}
      R_y(yaw_k) (vx, 0, vz)_{k-1} (row k-1's velocity is in frame k's facing), root height = column 3;
      joints 1..J-1 = R_y(yaw_t) ric_t + root (x, z) (ric heights are absolute).  Frame 0's root
      rotation is the identity in this format, so HumanML3D's ``new_joints`` come back as they are
      (measured below).  The 6D rotations, local velocities and contacts are not read.
  interx396 (396; ``synthetic.layout.interaction_features``): the positions are stored in the canonical
      frame (person 0's root at x = z = 0 facing +Z at frame 0): read as they are.

What the features do not hold, and what comes back instead: joints22 / joints22x2 / hml263 / kit251 are
integrated from velocities, so the first frame's ground position and heading are not in them: the recovered
motion starts with its root at x = z = 0 facing +Z (hml263 / kit251: as HumanML3D's processing put it).
Heights: joints22 / joints22x2 store heights above the clip's floor, which comes back as y = 0.  Units are
those the features were written in (metres for every layout here except KIT-ML's release, which is not in
metres).  Features read back from a trained model or a batch that was normalized must be unnormalized first:
pass ``mean`` / ``std`` (the loaders store raw features; HumanML3D's Mean.npy / Std.npy are recorded in
``RawCorpus.meta["source_mean"]`` / ``["source_std"]``).

Round trips measured (tests/core/data/test_recover.py; tolerance there 1e-4 in feature units, 1e-5 m), max abs:
  joints22, 4 Bandai BVH clips:     features -> joints -> features 2.4e-6 (feature units: m, m/s, rad/s);
                                    joints vs the clip's BVH joints (moved to the recovered start) 8e-8 m
  joints22, 40 synthetic motions:   features 4.6e-6; joints vs the generator's 1.2e-7 m
  joints22x2, 30 synthetic scenes:  features 9.4e-6; joints 2.5e-7 m
  kit251, a 21-joint synthetic walk in mm encoded HumanML3D's way (no KIT-ML clip is shared), float32:
                                    joints 6e-5 mm
  interx396, 30 synthetic scenes:   features 1.2e-7 (positions + the 6D columns decoded); joints 4.8e-7 m
                                    (the float32 positions as stored)
  hml263, HumanML3D sample 012314:  joints vs its new_joints 2.1e-7 m; features 3.1e-7 for every column but the
                                    126 6D rotations, which joint positions cannot give back (HumanML3D's IK, bone
                                    twist), re-encoded from the joints plus the frame after the last (rebuilt from
                                    the last row's joint velocities: without it the sigma-20 facing smoothing
                                    differs near the end, 6.8e-3)
"""
from __future__ import annotations

import numbers

import numpy as np

from . import features as F
from .errors import DataError
from .types import FeatureLayout

# KIT-ML's 21 joints (HumanML3D's kinematic chains): spine 0-1-2-3-4, arms 3-5-6-7 / 3-8-9-10,
# legs 0-11..15 / 0-16..20.  Index -> parent (-1 for the root).
KIT_PARENTS = (-1, 0, 1, 2, 3, 3, 5, 6, 3, 8, 9, 0, 11, 12, 13, 14, 0, 16, 17, 18, 19)

# Layout kind -> (feature dim, people, joints per person): the layouts whose columns hold joint positions.
JOINT_LAYOUTS = {
    "joints22": (F.FEATURE_DIM, 1, 22),
    "joints22x2": (F.PAIR_FEATURE_DIM, 2, 22),
    "hml263": (263, 1, 22),
    "kit251": (251, 1, 21),
    "interx396": (396, 2, 22),
}
_KNOWN = ", ".join(f"{kind} ({dim})" for kind, (dim, _, _) in JOINT_LAYOUTS.items())


def rotate_y(vectors: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotate vectors (T, ..., 3) about +Y by yaw (T,) radians, +Z turning towards +X.

    For a body heading ``yaw`` (angle from +Z towards +X, as ``features.facing_directions``) this takes
    vectors from its facing frame (x = left, z = forward) to the world; ``rotate_y(v, -yaw)`` goes back.
    """
    shape = (len(yaw),) + (1,) * (vectors.ndim - 2)
    c, s = np.cos(yaw).reshape(shape), np.sin(yaw).reshape(shape)
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


def _place(block: np.ndarray, yaw: np.ndarray, root_xz: np.ndarray) -> np.ndarray:
    """One person's joints22 block (T, 137) + heading (T,) + root ground position (T, 2) -> (T, 22, 3).

    Joints 1..21 are stored relative to the root in the facing frame, with heights above the floor.
    """
    T = len(block)
    local = block[:, F.LOCAL_POSITIONS].reshape(T, 21, 3)
    body = rotate_y(local, yaw)                                       # y stays the height above the floor
    body[..., [0, 2]] += root_xz[:, None, :]
    root = np.stack([root_xz[:, 0], block[:, F.ROOT_HEIGHT.start], root_xz[:, 1]], axis=-1)   # (T, 3)
    return np.concatenate([root[:, None, :], body], axis=1)


def _integrate_joints22(block: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """One person's joints22 block (T, 137) -> (heading yaw (T,), root ground position (T, 2)), starting
    at yaw 0 (facing +Z) and x = z = 0."""
    T = len(block)
    yaw = np.concatenate([[0.0], np.cumsum(block[:-1, F.YAW_VELOCITY.start]) / fps])
    step = np.zeros((T - 1, 3))
    step[:, [0, 2]] = block[:-1, F.ROOT_VELOCITY] / fps               # facing frame of the step's first frame
    root_xz = np.zeros((T, 2))
    root_xz[1:] = np.cumsum(rotate_y(step, yaw[:-1]), axis=0)[:, [0, 2]]
    return yaw, root_xz


def _joints22(f: np.ndarray, fps: float) -> np.ndarray:
    """(T, 137) -> (T, 22, 3)."""
    yaw, root_xz = _integrate_joints22(f, fps)
    return _place(f, yaw, root_xz)


def _joints22_pair(f: np.ndarray, fps: float) -> np.ndarray:
    """(T, 278) -> (T, 2, 22, 3): A integrated, B placed per frame relative to A."""
    a = f[:, :F.FEATURE_DIM]
    yaw_a, root_a = _integrate_joints22(a, fps)
    offset = np.zeros((len(f), 3))
    offset[:, [0, 2]] = f[:, F.PAIR_RELATIVE_POSITION]                # B's root - A's root, A's facing frame
    root_b = root_a + rotate_y(offset, yaw_a)[:, [0, 2]]
    facing = f[:, F.PAIR_RELATIVE_FACING]                             # B's forward (x, z) in A's facing frame
    yaw_b = yaw_a + np.arctan2(facing[:, 0], facing[:, 1])
    return np.stack([_place(a, yaw_a, root_a), _place(f[:, F.PAIR_B], yaw_b, root_b)], axis=1)


def _ric(f: np.ndarray, n_joints: int) -> np.ndarray:
    """HumanML3D-style (T, 4 + ...) -> (T, n_joints, 3); see the module docstring for the column facts."""
    T = len(f)
    yaw = -2.0 * np.concatenate([[0.0], np.cumsum(f[:-1, 0])])       # column 0 = -(half the yaw step)
    step = np.zeros((T - 1, 3))
    step[:, [0, 2]] = f[:-1, 1:3]                                     # per frame, in the NEXT frame's facing
    root = np.zeros((T, 3))
    root[1:] = np.cumsum(rotate_y(step, yaw[1:]), axis=0)
    root[:, 1] = f[:, 3]
    ric = f[:, 4:4 + 3 * (n_joints - 1)].reshape(T, n_joints - 1, 3)
    body = rotate_y(ric, yaw)
    body[..., [0, 2]] += root[:, None, [0, 2]]
    return np.concatenate([root[:, None, :], body], axis=1)


def _interx396(f: np.ndarray) -> np.ndarray:
    """(T, 396) -> (T, 2, 22, 3): each person's first 66 columns (see ``synthetic/layout.py``)."""
    T = len(f)
    per_person = f.reshape(T, 2, 396 // 2)
    return per_person[:, :, :66].reshape(T, 2, 22, 3).copy()


def layout_kind(layout: FeatureLayout | str) -> str:
    """The kind of a FeatureLayout or a layout name, checked to be one whose columns hold joint positions."""
    kind = layout.kind if isinstance(layout, FeatureLayout) else str(layout)
    if kind not in JOINT_LAYOUTS:
        dim = f" (D={layout.dim})" if isinstance(layout, FeatureLayout) else ""
        what = ("its columns are arbitrary features" if kind == "raw"
                else "it is not a layout this project defines")
        raise DataError(f"feature layout {kind!r}{dim} holds no joint positions to recover: {what}.",
                        fix=f"use features of a layout with joint positions: {_KNOWN} (load joint sources with "
                            "--format joints / bvh / bandai, HumanML3D with --format humanml3d), and pass its "
                            "FeatureLayout (corpus.layout) or its name.")
    return kind


def features_to_joints(features: np.ndarray, layout: FeatureLayout | str, fps: float, *,
                       mean: np.ndarray | None = None, std: np.ndarray | None = None) -> np.ndarray:
    """World joint positions of the features (T, D) of one motion.

    layout: a FeatureLayout (``corpus.layout``) or its kind: joints22, joints22x2, hml263, kit251, interx396.
    fps: the features' frame rate (``corpus.fps``); joints22 / joints22x2 velocities are per second.
    mean, std: (D,) to undo a normalization first (features * std + mean); None for raw features, which is
    what the loaders and the cache hold.

    Returns float64 (T, J, 3) for one person (J = 22, or 21 for kit251) or (T, 2, 22, 3) for two, +Y up,
    starting at x = z = 0 facing +Z where the layout integrates velocities (see the module docstring).
    Raises DataError (a ValueError) for a layout without joint positions or features of the wrong shape.
    """
    kind = layout_kind(layout)
    dim = JOINT_LAYOUTS[kind][0]
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != dim or len(f) < 1:
        raise DataError(f"features of shape {f.shape} do not fit layout {kind!r}: expected (frames >= 1, {dim}).",
                        fix="pass one motion's (T, D) features with the layout they were made with.")
    if (mean is None) != (std is None):
        raise DataError("only one of mean / std was given: unnormalizing needs both.",
                        fix="pass both (each of shape (D,)), or neither for raw features.")
    if mean is not None:
        mean, std = np.asarray(mean, np.float64).ravel(), np.asarray(std, np.float64).ravel()
        if mean.shape != (dim,) or std.shape != (dim,):
            raise DataError(f"mean {mean.shape} / std {std.shape} do not fit layout {kind!r} (D={dim}).",
                            fix="pass the per-column statistics the features were normalized with.")
        f = f * std + mean
    if not np.isfinite(f).all():
        raise DataError("the features contain NaN or inf; no joints can be recovered from them.",
                        fix="check the motion (and mean / std) for missing values.")
    if kind in ("joints22", "joints22x2"):
        if isinstance(fps, bool) or not (isinstance(fps, numbers.Real) and 0 < fps < float("inf")):
            raise DataError(f"fps={fps!r} is not a positive frame rate; {kind} velocities are per second.",
                            fix="pass the corpus's frame rate (corpus.fps, 20 for the loaders' default).")
        return _joints22(f, float(fps)) if kind == "joints22" else _joints22_pair(f, float(fps))
    if kind in ("hml263", "kit251"):
        return _ric(f, JOINT_LAYOUTS[kind][2])
    return _interx396(f)
