"""The loaders on the real files in <repo>/../shared/data (each test skips cleanly when absent).

- HumanML3D sample: loads as (170, 263); the HML263 mirror table is checked against the sample's
  own joints (root + ric, local velocities, 6D rotations all decode to the mirrored skeleton).
- TMR KIT-ML annotations: load with fabricated motions for a subset of the split ids.
- Bandai-Namco dataset 2: the archive is extracted, all 2,902 clips load, walks go forward,
  the waving hand is the labelled one, and the mirror swaps it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from core.data import skeleton
from core.data.errors import DataError
from core.data.features import HML263_LAYOUT, JOINTS22_LAYOUT, joints_to_features
from core.data.loaders import load_raw

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
HML = SHARED / "humanml3d-sample"
TMR = SHARED / "tmr-kitml-annotations"
BANDAI = SHARED / "bandai-namco-motiondataset-2.tar.xz"
J = skeleton.JOINT_INDEX


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


# ---- HumanML3D sample -----------------------------------------------------------------------------

def test_humanml3d_sample_loads(tmp_path):
    need(HML / "new_joint_vecs" / "012314.npy")
    root = tmp_path / "HumanML3D"           # the sample ships without texts: add one caption file
    (root / "texts").mkdir(parents=True)
    (root / "new_joint_vecs").symlink_to((HML / "new_joint_vecs").resolve())
    for name in ("Mean.npy", "Std.npy"):
        (root / name).symlink_to((HML / name).resolve())
    (root / "texts" / "012314.txt").write_text("a person moves#a/DET person/NOUN move/VERB#0.0#0.0\n"
                                               "the person turns#x#2.0#4.0\n")
    raw = load_raw(root, None, {})
    whole = {it.id: it for it in raw.items}["012314"]
    assert whole.features.shape == (170, 263) and raw.layout is HML263_LAYOUT
    assert {it.id: it for it in raw.items}["012314#2#4"].features.shape == (40, 263)
    assert len(raw.meta["source_mean"]) == len(raw.meta["source_std"]) == 263


def _qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4) = (w, x, y, z)."""
    u = q[..., 1:]
    t = 2 * np.cross(u, v)
    return v + q[..., :1] * t + np.cross(u, t)


def _root_quaternions(f: np.ndarray) -> np.ndarray:
    """HumanML3D stores the per-frame change of half the root yaw: integrate it into (T, 4)."""
    half = np.concatenate([[0.0], np.cumsum(f[:-1, 0])])
    q = np.zeros((len(f), 4))
    q[:, 0], q[:, 2] = np.cos(half), np.sin(half)
    return q


def _decode_positions(f: np.ndarray) -> np.ndarray:
    """(T, 263) -> (T, 22, 3) world joints from root velocity/height and the ric block."""
    T = len(f)
    q_inv = _root_quaternions(f) * np.array([1, -1, -1, -1])
    root = np.zeros((T, 3))
    root[1:, [0, 2]] = f[:-1, 1:3]
    root = np.cumsum(_qrot(q_inv, root), axis=0)
    root[:, 1] = f[:, 3]
    ric = _qrot(np.repeat(q_inv[:, None], 21, 1), f[:, 4:67].reshape(T, 21, 3))
    ric[..., [0, 2]] += root[:, None, [0, 2]]
    return np.concatenate([root[:, None], ric], axis=1)


def _bone_directions_from_rot6d(f: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """World bone directions rebuilt from the root yaw and the 6D local rotations (columns 0, 1 of
    each matrix) applied along each kinematic chain to HumanML3D's unit rest directions."""
    chains = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15], [9, 14, 17, 19, 21], [9, 13, 16, 18, 20]]
    rest = {1: (1, 0, 0), 2: (-1, 0, 0), 13: (1, 0, 0), 14: (-1, 0, 0), 10: (0, 0, 1), 11: (0, 0, 1),
            15: (0, 0, 1), 3: (0, 1, 0), 6: (0, 1, 0), 9: (0, 1, 0), 12: (0, 1, 0)}
    T = len(f)
    six = f[:, 67:193].reshape(T, 21, 6)
    a = six[..., :3] / np.linalg.norm(six[..., :3], axis=-1, keepdims=True)
    b = six[..., 3:] - (a * six[..., 3:]).sum(-1, keepdims=True) * a
    b /= np.linalg.norm(b, axis=-1, keepdims=True)
    local = np.stack([a, b, np.cross(a, b)], axis=-1)                      # (T, 21, 3, 3)
    w, x, y, z = _root_quaternions(f).T
    root = np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
                     np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
                     np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)
    out = {}
    for chain in chains:
        R = root
        for parent, child in zip(chain[:-1], chain[1:]):
            R = R @ local[:, child - 1]
            out[(parent, child)] = R @ np.asarray(rest.get(child, (0, -1, 0)), dtype=float)
    return out


def test_hml263_mirror_matches_the_mirrored_skeleton():
    vecs = np.load(need(HML / "new_joint_vecs" / "012314.npy")).astype(np.float64)
    joints = np.load(need(HML / "new_joints" / "012314.npy")).astype(np.float64)
    mirrored_vecs = HML263_LAYOUT.mirror(vecs)
    mirrored_joints = skeleton.mirror_joints(joints)
    # root + ric: the features decode to the sample's joints, and the mirrored features to the mirror
    np.testing.assert_allclose(_decode_positions(vecs), joints, atol=1e-5)
    np.testing.assert_allclose(_decode_positions(mirrored_vecs), mirrored_joints, atol=1e-5)
    # local velocities = frame t's root rotation applied to joints[t+1] - joints[t]
    for f, j in ((vecs, joints), (mirrored_vecs, mirrored_joints)):
        q = np.repeat(_root_quaternions(f)[:-1, None], 22, 1)
        np.testing.assert_allclose(_qrot(q, j[1:] - j[:-1]).reshape(-1, 66), f[:-1, 193:259], atol=1e-5)
    # 6D rotations: chained along the skeleton they point every bone where the joints say
    for f, j in ((vecs, joints), (mirrored_vecs, mirrored_joints)):
        for (parent, child), direction in _bone_directions_from_rot6d(f).items():
            bone = j[:, child] - j[:, parent]
            bone /= np.linalg.norm(bone, axis=-1, keepdims=True)
            np.testing.assert_allclose(direction[:-1], bone[:-1], atol=1e-4)
    # contacts: (l_ankle, l_foot, r_ankle, r_foot) swap
    np.testing.assert_array_equal(mirrored_vecs[:, 259:261], vecs[:, 261:263])


def test_our_features_agree_with_humanml3d_on_its_joints():
    vecs = np.load(need(HML / "new_joint_vecs" / "012314.npy"))
    joints = np.load(need(HML / "new_joints" / "012314.npy"))
    ours = joints_to_features(joints, 20.0)
    assert (ours[:, 133:137] == vecs[:, 259:263]).mean() > 0.95             # same foot contacts
    np.testing.assert_allclose(ours[:, 0], vecs[:, 3], atol=1e-4)          # the floor is already at y = 0
    mirrored = joints_to_features(skeleton.mirror_joints(joints), 20.0)
    np.testing.assert_allclose(JOINTS22_LAYOUT.mirror(ours), mirrored, atol=1e-4)


# ---- TMR KIT-ML annotations -------------------------------------------------------------------------

def test_tmr_kitml_annotations_with_fabricated_motions(tmp_path):
    annotations = json.loads(need(TMR / "annotations.json").read_text())
    split_ids = {s: (TMR / "splits" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    # the first 50 ids of each split plus 5 mirrored ("M...") ones, which TMR lists like any other
    subset = {s: ids[:50] + [i for i in ids[50:] if i.startswith("M")][:5] for s, ids in split_ids.items()}
    rng = np.random.default_rng(0)
    motions = tmp_path / "guoh3dfeats"
    for ids in subset.values():
        for keyid in ids:
            path = motions / f"{annotations[keyid]['path']}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            T = max(2, int(round(annotations[keyid]["duration"] * 20)))
            np.save(path, rng.normal(size=(T, 263)).astype(np.float32))
    with pytest.raises(DataError, match=rf"train\.txt: keyid '{split_ids['train'][50]}' has no motion file"):
        load_raw(TMR, "tmr", {"motions_dir": str(motions)})
    raw = load_raw(TMR, None, {"motions_dir": str(motions), "allow_missing": True})
    loaded = {it.id.split("#")[0] for it in raw.items}
    wanted = {k for ids in subset.values() for k in ids}
    assert loaded == wanted and any(k.startswith("M") for k in loaded)
    all_ids = {k for ids in split_ids.values() for k in ids}
    assert raw.meta["missing_motions"] == len(all_ids) - len(wanted)
    assert raw.meta["ignored_split_files"] == ["all.txt", "nsim_test.txt"]
    assert {s: len(v) for s, v in raw.splits.items()} == {s: 55 for s in subset}  # KIT: whole-motion texts
    item = {it.id: it for it in raw.items}[subset["train"][3]]
    assert item.captions == [a["text"] for a in annotations[subset["train"][3]]["annotations"]]
    assert raw.layout is HML263_LAYOUT


# ---- Bandai-Namco -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bandai(tmp_path_factory):
    """Extract the archive and load every clip once (auto-detected from the archive)."""
    need(BANDAI)
    t0 = time.perf_counter()
    raw = load_raw(BANDAI, None, {"extract_dir": str(tmp_path_factory.mktemp("extracted"))})
    raw.meta["test_load_seconds"] = time.perf_counter() - t0
    return raw


def _height(features: np.ndarray, joint: str) -> np.ndarray:
    return features[:, 4 + 3 * (J[joint] - 1) + 1]


def _clips(raw, content: str) -> list:
    return [it for it in raw.items if it.group.split("|")[0] == content]


def test_bandai_all_clips_load(bandai):
    assert bandai.meta["format"] == "bandai" and len(bandai.items) == 2902
    assert bandai.meta["source_frames"] == 384_931                      # the dataset README's frame count
    assert len({it.group for it in bandai.items}) == 70                 # 10 contents x 7 styles
    assert bandai.layout is JOINTS22_LAYOUT and bandai.fps == 20.0
    for it in bandai.items:
        assert it.features.dtype == np.float32 and it.features.shape[1] == 137 and len(it.captions) == 3
    assert all(np.isfinite(it.features).all() for it in bandai.items)
    print(f"\n[bandai] {len(bandai.items)} clips, {bandai.meta['frames']} frames at 20 fps "
          f"(mean {bandai.meta['mean_length_frames']}), conversion {bandai.meta['convert_seconds']} s "
          f"= {bandai.meta['clips_per_second']} clips/s with {bandai.meta['workers']} workers; "
          f"extract + load {bandai.meta['test_load_seconds']:.1f} s")


def test_bandai_walks_and_runs_travel_forward(bandai):
    for content in ("walk", "run"):
        for it in _clips(bandai, content):
            forward = it.features[:, 2].sum() / bandai.fps              # metres along the facing direction
            lateral = it.features[:, 1].sum() / bandai.fps
            assert forward > 1.0 and abs(lateral) < 0.3 * forward, it.id


def test_bandai_turns_turn_the_labelled_way(bandai):
    left = np.array([it.features[:, 3].sum() / bandai.fps for it in _clips(bandai, "walk-turn-left")])
    right = np.array([it.features[:, 3].sum() / bandai.fps for it in _clips(bandai, "walk-turn-right")])
    # yaw is positive towards the subject's left; a few clips in the release turn the other way
    assert np.median(left) > 1.0 and (left > 0).mean() > 0.95
    assert np.median(right) < -1.0 and (right < 0).mean() > 0.95


def test_bandai_waving_hand_is_the_labelled_one_and_mirror_swaps_it(bandai):
    def lift(features: np.ndarray, side: str) -> float:
        return float(_height(features, f"{side}_wrist").max() - _height(features, f"{side}_shoulder").max())

    for content, up, down in (("wave-right-hand", "right", "left"), ("wave-left-hand", "left", "right")):
        clips = _clips(bandai, content)
        for it in clips:
            assert _height(it.features, f"{up}_wrist").max() > _height(it.features, f"{down}_wrist").max() + 0.3
            assert lift(it.features, down) < 0, it.id                   # the other hand stays low
        # most styles wave above the shoulder (the "feminine" style waves at chest height)
        assert np.mean([lift(it.features, up) > 0 for it in clips]) > 0.8
    for it in _clips(bandai, "wave-right-hand"):
        mirrored = JOINTS22_LAYOUT.mirror(it.features)                  # should look like wave-left-hand
        assert _height(mirrored, "left_wrist").max() > _height(mirrored, "right_wrist").max() + 0.3
        assert lift(mirrored, "right") < 0
        np.testing.assert_allclose(_height(mirrored, "left_wrist"), _height(it.features, "right_wrist"))
