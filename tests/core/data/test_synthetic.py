"""The embedded synthetic corpus: determinism, shapes, caption <-> motion consistency, the 396 layout.

Consistency checks read the *raw world joints* (not our own channels), with body axes taken from
the hips and shoulders, so they test what a viewer of the motion would see.
"""
import re

import numpy as np
import pytest

from core.data import skeleton
from core.data.errors import DataError
from core.data.features import FEATURE_DIM, JOINTS22_LAYOUT
from core.data.synthetic import (INTERACTION396_LAYOUT, Action, Followup, Interaction, generate_motion,
                                 generate_synthetic, interaction_features, motion_rng, prepare, render)
from core.data.synthetic.body import make_body, mirror_channels
from core.data.synthetic.corpus import finish_all, sample_spec
from core.data.synthetic.kinematics import pose_batch, rot_y
from core.data.synthetic.layout import rot6d
from core.data.types import RawCorpus

J = skeleton.JOINT_INDEX
FPS = 20.0


# ---- helpers reading raw joints -------------------------------------------------------------------

def body_axes(joints):
    """(T, 22, 3) -> (forward, left) unit ground-plane axes per frame, from hips + shoulders."""
    across = (joints[:, J["right_hip"]] - joints[:, J["left_hip"]]
              + joints[:, J["right_shoulder"]] - joints[:, J["left_shoulder"]])
    across[:, 1] = 0.0
    left = -across / np.linalg.norm(across, axis=1, keepdims=True)      # right - left points right
    forward = np.stack([-left[:, 2], np.zeros(len(left)), left[:, 0]], axis=1)   # left=+X -> forward=+Z
    return forward, left


def count_peaks(x, prominence):
    """Interior local maxima standing at least ``prominence`` above the signal on both sides
    (down to the next higher sample or the end)."""
    n = 0
    for i in range(1, len(x) - 1):
        if not (x[i] > x[i - 1] and x[i] >= x[i + 1]):
            continue
        lo = i - 1
        while lo > 0 and x[lo - 1] <= x[i]:
            lo -= 1
        hi = i + 1
        while hi < len(x) - 1 and x[hi + 1] <= x[i]:
            hi += 1
        if min(x[i] - x[lo:i].min(), x[i] - x[i + 1:hi + 1].min()) >= prominence:
            n += 1
    return n


def longest_run(mask):
    best, start, cur = (0, 0), 0, 0
    for i, m in enumerate(mask):
        cur = cur + 1 if m else 0
        if cur == 1:
            start = i
        if cur > best[1] - best[0]:
            best = (start, i + 1)
    return slice(*best)


def wave_count(joints, side):
    """Out-and-back sways of the forearm (tilt away from vertical) while the hand is up."""
    w, e = joints[:, J[f"{side}_wrist"]], joints[:, J[f"{side}_elbow"]]
    _, left = body_axes(joints)
    outward = (1.0 if side == "left" else -1.0) * ((w - e) * left).sum(1)
    up = (w - e)[:, 1]
    run = longest_run(up > 0.08)
    return count_peaks(np.arctan2(outward, up)[run], 0.2)


def forward_reach(joints, side):
    fwd, _ = body_axes(joints)
    return ((joints[:, J[f"{side}_wrist"]] - joints[:, J[f"{side}_shoulder"]]) * fwd).sum(1)


def yaw_of(joints):
    fwd, _ = body_axes(joints)
    return np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))     # positive = turned towards +X = left


COUNT_WORDS = {1: ("once", "one time", "a single"), 2: ("twice", "two"), 3: ("three", "3"), 4: ("four", "4")}


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


# ---- two people -----------------------------------------------------------------------------------

def _people(kind, seed=0, **kw):
    m = render(Interaction(kind, **kw), np.random.default_rng(seed))
    return m.joints, m.captions, m.group


def test_contact_interactions_bring_hands_together():
    for seed in range(3):
        for kind, kw in (("handshake", {}), ("high_five", {"side": "right"}),
                         ("handshake", {"approach": True})):
            joints, _, _ = _people(kind, seed, **kw)
            d = np.linalg.norm(joints[:, 0, J["right_wrist"]] - joints[:, 1, J["right_wrist"]], axis=1)
            assert d.min() < 0.2, (kind, d.min())
            assert d[0] > 0.4, "hands are apart at the start"
        joints, _, _ = _people("high_five", seed, side="both")
        d = np.linalg.norm(joints[:, 0, J["right_wrist"]] - joints[:, 1, J["left_wrist"]], axis=1)
        assert d.min() < 0.25      # facing each other, right hand meets the other's left


@pytest.mark.parametrize("initiator", [0, 1])
def test_roles_approach_walk_away_push(initiator):
    other = 1 - initiator

    def root_dist(j):
        return np.linalg.norm(j[:, 0, 0, [0, 2]] - j[:, 1, 0, [0, 2]], axis=1)

    def moved(j, p):
        return np.linalg.norm(j[-1, p, 0, [0, 2]] - j[0, p, 0, [0, 2]])

    gait = ("walk", "run")[initiator]
    joints, captions, group = _people("approach", initiator=initiator, variant=gait)
    assert group == f"approach|by={initiator}|{gait}"
    assert all(gait in c.lower() for c in captions)
    assert root_dist(joints)[-1] < root_dist(joints)[0] - 1.5
    assert moved(joints, initiator) > 1.5 and moved(joints, other) < 0.3
    joints, _, _ = _people("walk_away", initiator=initiator)
    assert root_dist(joints)[-1] > root_dist(joints)[0] + 1.5 and moved(joints, other) < 0.3
    names = {0: ("first", "one", "person a"), 1: ("second", "two", "person b")}
    for seed in range(4):
        joints, captions, _ = _people("push", seed, initiator=initiator, side="both")
        chest = joints[:, other, J["spine3"]]
        hands = joints[:, initiator, [J["left_wrist"], J["right_wrist"]]].mean(1)
        assert np.linalg.norm(hands - chest, axis=1).min() < 0.3
        assert moved(joints, other) > 0.4, "the pushed person staggers away"
        for c in (c.lower() for c in captions):
            if " is pushed " in c:                                       # passive voice
                actor = c.split(" by ", 1)[1].split(",")[0]
            else:
                actor = re.split(r"\b(?:pushes|shoves|uses)\b", c)[0]
            assert any(n in actor for n in names[initiator]) and not any(n in actor for n in names[other]), c


def test_follow_and_pass_by():
    joints, _, _ = _people("follow", initiator=0, variant="walk")
    lead, follow = joints[-1, :, 0] - joints[0, :, 0]
    assert np.dot(lead[[0, 2]], follow[[0, 2]]) > 0 and np.linalg.norm(follow) > 2.0
    joints, _, _ = _people("pass_by")
    d = np.linalg.norm(joints[:, 0, 0, [0, 2]] - joints[:, 1, 0, [0, 2]], axis=1)
    assert d.argmin() not in (0, len(d) - 1) and d[0] > 4 and d[-1] > 1.0


def test_interaction_features_canonical_frame_and_rot6d_columns():
    m = render(Interaction("handover", initiator=1, side="left"), np.random.default_rng(4))
    f = interaction_features(m.joints, m.rotations)
    assert f.shape == (len(m.joints), 396) and f.dtype == np.float32
    assert abs(f[0, 0]) < 1e-5 and abs(f[0, 2]) < 1e-5 and f[0, 1] > 0.5      # person 0's root at x=z=0
    root6 = f[0, 66:72]                                                        # person 0 root rot6d
    col0, col1 = root6[:3], root6[3:]
    third = np.cross(col0, col1)                                               # R's 3rd column = its +Z axis
    assert abs(third[0]) < 1e-5 and third[2] > 0.9                            # faces +Z
    # rot6d = first two COLUMNS of R (acting on column vectors)
    r = rot_y(np.array([0.3]))[0]
    np.testing.assert_allclose(rot6d(r), [np.cos(0.3), 0, -np.sin(0.3), 0, 1, 0], atol=1e-12)
    # person blocks: positions of person 1 are its joints in the same canonical frame
    p0 = f[:, :66].reshape(-1, 22, 3)
    p1 = f[:, 198:264].reshape(-1, 22, 3)
    np.testing.assert_allclose(np.linalg.norm(p0[:, 0] - p1[:, 0], axis=1),
                               np.linalg.norm(m.joints[:, 0, 0] - m.joints[:, 1, 0], axis=1), atol=1e-4)


@pytest.mark.parametrize("kind,kw", [("handover", {"initiator": 0, "side": "left"}),
                                     ("wave_each_other", {"initiator": 1, "side": "right"}),
                                     ("kick", {"initiator": 0, "side": "right"})])
def test_396_mirror_permutation_equals_features_of_mirrored_scene(kind, kw):
    m = render(Interaction(kind, **kw), np.random.default_rng(7))
    f = interaction_features(m.joints, m.rotations)
    # mirror the raw scene independently: twins swapped, x negated, R -> M R M (persons kept)
    twins = list(skeleton.MIRROR_JOINTS)
    M = np.diag([-1.0, 1.0, 1.0])
    joints_m = skeleton.mirror_joints(m.joints)
    rot_m = M @ m.rotations[:, :, twins] @ M
    f_m = interaction_features(joints_m, rot_m)
    np.testing.assert_allclose(INTERACTION396_LAYOUT.mirror(f), f_m, atol=1e-5)
    np.testing.assert_allclose(INTERACTION396_LAYOUT.mirror(INTERACTION396_LAYOUT.mirror(f)), f, atol=0)
    assert not np.allclose(INTERACTION396_LAYOUT.mirror(f), f, atol=1e-3)


def test_generate_motion_batch_matches_single_render():
    rngs = [motion_rng(0, 2, i) for i in range(3)]
    drafts = [prepare(sample_spec(r, 2), r) for r in rngs]
    batch = finish_all(drafts, FPS)
    for i, m in enumerate(batch):
        r = motion_rng(0, 2, i)
        single = render(sample_spec(r, 2), r)
        assert single.captions == m.captions
        np.testing.assert_allclose(single.joints, m.joints, atol=1e-9)


def test_interaction_attributes_show_in_the_motion():
    for count in (1, 2):
        m = render(Interaction("punch", initiator=1, side="left", count=count), np.random.default_rng(count))
        assert count_peaks(forward_reach(m.joints[:, 1], "left"), 0.12) == count
        head = m.joints[:, 0, J["head"]]
        assert np.linalg.norm(m.joints[:, 1, J["left_wrist"]] - head, axis=1).min() < 0.25
    drop = {}
    for depth in ("slight", "deep"):
        m = render(Interaction("bow_each_other", initiator=0, variant=depth), np.random.default_rng(0))
        head_y = m.joints[:, :, J["head"], 1]
        drop[depth] = head_y[0] - head_y.min(0)                       # (2,) per person
        assert all(depth in c.lower() or (depth == "slight" and "small" in c.lower()) for c in m.captions)
    assert (drop["deep"] > drop["slight"] + 0.15).all()


def test_followup_action_happens_after_the_interaction_by_the_named_person():
    spec = (Interaction("handshake"), Followup(1, Action("wave", side="left", count=2)))
    m = render(spec, np.random.default_rng(2))
    assert m.group == "handshake > p1:wave|left|x2"
    d = np.linalg.norm(m.joints[:, 0, J["right_wrist"]] - m.joints[:, 1, J["right_wrist"]], axis=1)
    lifted = m.joints[:, 1, J["left_wrist"], 1] - m.joints[:, 1, J["left_shoulder"], 1]
    assert d.argmin() < lifted.argmax(), "the handshake comes before the wave"
    assert wave_count(m.joints[:, 1], "left") == 2
    assert (m.joints[:, 0, J["left_wrist"], 1] < m.joints[:, 0, J["left_shoulder"], 1]).all()
    for c in (c.lower() for c in m.captions):
        tail = c[c.index("shake") if "shake" in c else c.index("handshake"):]
        assert "left" in tail and any(n in tail for n in ("second", "two", "person b")), c


def test_bad_options_raise_one_clear_error():
    for kwargs in ({"people": 3}, {"n": 0}, {"fps": 0.0}):
        with pytest.raises(DataError, match="synthetic option"):
            generate_synthetic(**{"n": 2, **kwargs})
