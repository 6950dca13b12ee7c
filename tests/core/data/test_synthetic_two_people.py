"""The embedded synthetic corpus, two people: interaction motions match their captions (contact,
roles, approach/push/follow, attributes, follow-up actions), the 396-dim interaction layout
(canonical frame, rot6d columns, mirror permutation) and batched vs single rendering.

Consistency checks read the raw world joints via the helpers in ``_synthetic_helpers``.
"""
import re

import numpy as np
import pytest

from core.data import skeleton
from core.data.synthetic import (INTERACTION396_LAYOUT, Action, Followup, Interaction, interaction_features,
                                 motion_rng, prepare, render)
from core.data.synthetic.corpus import finish_all, sample_spec
from core.data.synthetic.kinematics import rot_y
from core.data.synthetic.layout import rot6d

from ._synthetic_helpers import FPS, J, count_peaks, forward_reach, wave_count


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
