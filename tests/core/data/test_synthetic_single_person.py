"""The embedded synthetic corpus, corpus level and single person: determinism, shapes, ids and
metadata (for 1 and 2 people), caption wording and hard negatives, option errors, and single-person
caption <-> motion consistency (hand side, counts, walking/turning direction, sequences, mirroring).

Consistency checks read the raw world joints via the helpers in ``_synthetic_helpers``.
"""
import re

import numpy as np
import pytest

from core.data import skeleton
from core.data.errors import DataError
from core.data.features import FEATURE_DIM, JOINTS22_LAYOUT
from core.data.synthetic import INTERACTION396_LAYOUT, Action, generate_motion, generate_synthetic, prepare
from core.data.synthetic.body import make_body, mirror_channels
from core.data.synthetic.kinematics import pose_batch
from core.data.types import RawCorpus

from ._synthetic_helpers import COUNT_WORDS, FPS, J, body_axes, count_peaks, forward_reach, wave_count, yaw_of


# ---- corpus level ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus2():
    return generate_synthetic(n=40, people=2, seed=0)


@pytest.fixture(scope="module")
def corpus1():
    return generate_synthetic(n=300, people=1, seed=0)


def test_shapes_dtypes_ids_and_metadata(corpus1, corpus2):
    for raw, people, dim, layout in ((corpus1, 1, FEATURE_DIM, JOINTS22_LAYOUT),
                                     (corpus2, 2, 396, INTERACTION396_LAYOUT)):
        assert isinstance(raw, RawCorpus) and raw.splits is None and raw.fps == FPS
        assert raw.layout is layout and raw.layout.dim == dim
        assert raw.name == f"synthetic(n={len(raw.items)},people={people},seed=0)"
        assert isinstance(raw.meta["generator_version"], int)
        lengths = np.array([len(it.features) for it in raw.items])
        assert lengths.min() >= 40 and lengths.max() <= 200
        assert 3.5 <= lengths.mean() / FPS <= 7.5
        for i, it in enumerate(raw.items):
            assert it.id == f"syn{people}p_{i:05d}" and it.source == "synthetic"
            assert it.features.dtype == np.float32 and it.features.ndim == 2 and it.features.shape[1] == dim
            assert np.isfinite(it.features).all()
            assert 2 <= len(it.captions) <= 4 and len(set(it.captions)) == len(it.captions)
            assert all(isinstance(c, str) and c.strip() for c in it.captions)
            assert isinstance(it.group, str) and it.group


def test_deterministic_by_seed_and_motion_i_independent_of_n():
    a, b = generate_synthetic(n=6, people=2, seed=5), generate_synthetic(n=6, people=2, seed=5)
    c = generate_synthetic(n=6, people=2, seed=6)
    assert all(np.array_equal(x.features, y.features) and x.captions == y.captions and x.group == y.group
               for x, y in zip(a.items, b.items))
    assert not all(x.features.shape == y.features.shape and np.array_equal(x.features, y.features)
                   for x, y in zip(a.items, c.items))
    small = generate_synthetic(n=3, people=2, seed=5)
    for x, y in zip(small.items, a.items):
        assert x.id == y.id and x.captions == y.captions and x.group == y.group
        np.testing.assert_allclose(x.features, y.features, rtol=0, atol=1e-5)
    one_a, one_b = generate_synthetic(n=4, people=1, seed=2), generate_synthetic(n=4, people=1, seed=2)
    assert all(np.array_equal(x.features, y.features) and x.captions == y.captions
               for x, y in zip(one_a.items, one_b.items))


def test_no_global_rng_use():
    np.random.seed(1)
    a = generate_synthetic(n=3, people=1, seed=0)
    np.random.seed(2)
    b = generate_synthetic(n=3, people=1, seed=0)
    assert all(np.array_equal(x.features, y.features) for x, y in zip(a.items, b.items))
    np.random.seed(2)
    before = np.random.get_state()[1].copy()
    generate_synthetic(n=2, people=2, seed=0)
    assert np.array_equal(before, np.random.get_state()[1])


def test_captions_state_every_side_and_count_of_their_group(corpus1, corpus2):
    for it in corpus1.items + corpus2.items:
        parts = it.group.split(" > ")
        if len(parts) != 1:
            continue
        fields = parts[0].split("|")
        for side in ("left", "right"):
            if side in fields:
                other = "right" if side == "left" else "left"
                for c in it.captions:
                    assert re.search(rf"\b{side}\b", c.lower()), (it.group, c)
                    assert not re.search(rf"\b{other}\b", c.lower()), (it.group, c)
        counts = [int(f[1:]) for f in fields if re.fullmatch(r"x\d", f)]
        for n in counts:
            for c in it.captions:
                assert any(w in c.lower() for w in COUNT_WORDS[n]), (it.group, c)


def test_hard_negatives_exist(corpus1):
    groups = {it.group for it in corpus1.items}
    singles = {g for g in groups if " > " not in g}
    swapped = {g.replace("left", "@").replace("right", "left").replace("@", "right") for g in singles}
    assert len((singles & swapped) - {g for g in singles if "left" not in g and "right" not in g}) >= 4
    recounted = {re.sub(r"x(\d)", lambda m: f"x{int(m.group(1)) % 3 + 1}", g) for g in singles}
    assert len(singles & recounted - {g for g in singles if "|x" not in g}) >= 4
    sequences = [g.split(" > ") for g in groups if " > " in g]
    assert len(sequences) > 50 and len(groups) > 150


# ---- single person: motion matches captions -------------------------------------------------------

@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("kind", ["wave", "raise"])
def test_hand_side_matches_caption(kind, side):
    other = "right" if side == "left" else "left"
    for seed in range(3):
        rng = np.random.default_rng(seed)
        joints, captions, group = generate_motion(Action(kind, side=side, count=2 if kind == "wave" else None), rng)
        up = joints[:, J[f"{side}_wrist"], 1] - joints[:, J[f"{side}_shoulder"], 1]
        up_other = joints[:, J[f"{other}_wrist"], 1] - joints[:, J[f"{other}_shoulder"], 1]
        assert up.max() > 0.15, "the captioned hand rises above its shoulder"
        assert up_other.max() < -0.2, "the other hand stays low"
        assert all(side in c.lower() and other not in c.lower() for c in captions)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_counts_match_captions(count):
    for seed in range(2):
        rng = np.random.default_rng(10 * count + seed)
        side = ("left", "right")[seed]
        joints, captions, _ = generate_motion(Action("wave", side=side, count=count), rng)
        assert wave_count(joints, side) == count
        assert all(any(w in c.lower() for w in COUNT_WORDS[count]) for c in captions)
        joints, _, _ = generate_motion(Action("punch", side=side, count=count), rng)
        assert count_peaks(forward_reach(joints, side), 0.12) == count
        joints, _, _ = generate_motion(Action("squat", count=count), rng)
        assert count_peaks(-joints[:, 0, 1], 0.15) == count
        joints, _, _ = generate_motion(Action("jump", count=count, variant="in_place"), rng)
        assert count_peaks(joints[:, 0, 1], 0.12) == count
        joints, _, _ = generate_motion(Action("clap", count=count + 1), rng)
        dist = np.linalg.norm(joints[:, J["left_wrist"]] - joints[:, J["right_wrist"]], axis=1)
        assert dist.min() < 0.1 and count_peaks(-dist, 0.12) == count + 1


@pytest.mark.parametrize("kind,sign", [("walk", 1), ("walk_backward", -1)])
def test_walking_direction_follows_facing(kind, sign):
    for seed, speed in enumerate(("slow", "normal")):
        joints, captions, _ = generate_motion(Action(kind, speed=speed), np.random.default_rng(seed))
        fwd, left = body_axes(joints)
        travel = joints[-1, 0] - joints[0, 0]
        along, across = (travel * fwd[0]).sum(), (travel * left[0]).sum()
        assert sign * along > 0.7 and abs(across) < 0.25 * abs(along)
        assert all(("back" in c.lower()) == (sign < 0) for c in captions)


@pytest.mark.parametrize("side,sign", [("left", 1), ("right", -1)])
def test_turns_and_side_steps_go_to_the_captioned_side(side, sign):
    joints, _, _ = generate_motion(Action("turn", side=side, variant="90"), np.random.default_rng(0))
    turned = yaw_of(joints)[-1] - yaw_of(joints)[0]
    assert abs(turned - sign * np.pi / 2) < 0.3
    joints, _, _ = generate_motion(Action("side_step", side=side), np.random.default_rng(1))
    _, left = body_axes(joints)
    assert sign * ((joints[-1, 0] - joints[0, 0]) * left[0]).sum() > 0.5


def _mentions(text, words):
    return any(w in text for w in words)


def test_sequence_order_in_motion_and_captions():
    clap_words, jump_words = ("clap",), ("jump",)
    for seed in range(12):
        rng = np.random.default_rng(seed)
        spec = [Action("clap", count=2), Action("jump", count=1, variant="in_place")]
        joints, captions, group = generate_motion(spec, rng)
        assert group == "clap|x2 > jump|x1|in_place"
        dist = np.linalg.norm(joints[:, J["left_wrist"]] - joints[:, J["right_wrist"]], axis=1)
        assert np.argmin(dist) < np.argmax(joints[:, 0, 1]), "the claps happen before the jump"
        for c in (c.lower() for c in captions):
            if c.startswith("after "):
                first, second = c.split(",", 1)
            elif " after that " in c:
                first, second = c.split(" after that ", 1)
            elif " before " in c:
                first, second = c.split(" before ", 1)
            elif " after " in c:
                second, first = c.split(" after ", 1)
            else:
                first, second = c[:c.index("jump")], c[c.index("jump"):]
            assert _mentions(first, clap_words) and not _mentions(first, jump_words), c
            assert _mentions(second, jump_words), c


def test_single_person_mirror_is_a_valid_mirrored_motion():
    """Mirroring the pose channels of a body (symmetric by construction) mirrors the joints exactly,
    and the rotations obey R' = M R[twin] M: the generator is left/right consistent."""
    body = make_body(1.8, leg=1.03, arm=0.97)
    rng = np.random.default_rng(3)
    draft = prepare([Action("wave", side="left", count=2), Action("turn", side="right", variant="90")], rng)
    ch = draft.clips[0]
    (pos, rot), (pos_m, rot_m) = pose_batch([ch, mirror_channels(ch)], [body, body], FPS, [0.3, -0.3],
                                            [(1.0, 2.0), (-1.0, 2.0)], [0.0, np.pi])  # legs swap: gait phase + pi
    np.testing.assert_allclose(pos_m, skeleton.mirror_joints(pos), atol=1e-9)
    m = np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(rot_m, rot[:, list(skeleton.MIRROR_JOINTS)] * m[:, None] * m[None, :], atol=1e-9)


def test_bad_options_raise_one_clear_error():
    for kwargs in ({"people": 3}, {"n": 0}, {"fps": 0.0}):
        with pytest.raises(DataError, match="synthetic option"):
            generate_synthetic(**{"n": 2, **kwargs})
