"""The part-level model: body-part column maps, part texts, the soft part loss and the parts encoder."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.config import LossConfig, ModelConfig
from core.data.errors import DataError
from core.data.features import HML263_LAYOUT, JOINTS22_LAYOUT, JOINTS22_PAIR_LAYOUT, KIT251_LAYOUT
from core.data.parts import PART_NAMES, check_part_descriptions, mirror_parts, part_columns
from core.data.synthetic.corpus import ACTION_DOMAINS
from core.data.synthetic.interactions import Followup, Interaction
from core.data.synthetic.layout import INTERACTION396_LAYOUT
from core.data.synthetic.part_texts import IDLE, part_descriptions
from core.data.synthetic.primitives import Action
from core.losses import build_loss, part_contrastive
from core.motion import build_motion_encoder

LAYOUTS = [JOINTS22_LAYOUT, HML263_LAYOUT, KIT251_LAYOUT, INTERACTION396_LAYOUT, JOINTS22_PAIR_LAYOUT]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.kind)
def test_parts_cover_every_column_once_and_agree_with_the_mirror_table(layout):
    cols = part_columns(layout.kind, layout.dim)
    everything = np.sort(np.concatenate(cols))
    assert np.array_equal(everything, np.arange(layout.dim))            # a partition of the columns
    # The mirror tables were written independently (core/data/features.py, synthetic/layout.py): mirroring
    # must map the torso onto itself and each left limb's columns exactly onto its right twin's.
    perm = np.asarray(layout.mirror_perm)
    for part, twin in [(0, 0), (1, 2), (3, 4)]:
        assert set(perm[cols[part]]) == set(cols[twin]), (layout.kind, PART_NAMES[part])


def test_joints22_columns_name_the_right_joints():
    cols = dict(zip(PART_NAMES, part_columns("joints22", 137)))
    # local position of joint j (1..21) sits at 4 + 3 (j - 1); left_wrist = 20, right_knee = 5
    assert {4 + 3 * 19 + k for k in range(3)} <= set(cols["left_arm"])
    assert {4 + 3 * 4 + k for k in range(3)} <= set(cols["right_leg"])
    assert set(range(4)) <= set(cols["torso"]) and {133, 134} <= set(cols["left_leg"])


def test_unknown_layout_is_refused_with_a_fix():
    with pytest.raises(DataError, match="cannot be split into body parts"):
        part_columns("raw", 50)


SIDED = [k for k, dom in ACTION_DOMAINS.items() if "side" in dom]


@pytest.mark.parametrize("kind", SIDED)
def test_mirrored_part_texts_of_a_left_action_are_those_of_the_right_one(kind):
    extra = {name: values[0] for name, values in ACTION_DOMAINS[kind].items() if name != "side"}
    left = part_descriptions((Action(kind, side="left", **extra),))
    right = part_descriptions((Action(kind, side="right", **extra),))
    assert left != right and mirror_parts(left) == right and mirror_parts(right) == left


def test_part_texts_say_which_limb_acts():
    texts = dict(zip(PART_NAMES, part_descriptions((Action("wave", side="right", count=2), Action("jog")))))
    assert texts["right_arm"] == "the right arm waves twice, then swings with the steps"
    assert texts["left_arm"] == "the left arm swings with the steps"          # idle, then jogging
    assert texts["left_leg"] == "the left leg jogs forward"
    two = dict(zip(PART_NAMES, part_descriptions((Interaction("handover", initiator=1, side="left"),
                                                  Followup(0, Action("clap", count=2))))))
    # person 1 starts it: the data's first person is the receiver, who then claps
    assert two["right_arm"] == ("the first person's right arm reaches out to take the object, then claps twice; "
                                "the second person's right arm hangs relaxed")
    assert two["left_arm"].endswith("the second person's left arm hands over an object")
    assert IDLE["left_leg"] in two["left_leg"]


def test_gar_part_descriptions_are_checked():
    good = {"right_arm": "waves", "left_arm": "rests", "right_leg": "still", "left_leg": "still", "torso": "upright"}
    assert check_part_descriptions(good) == ("upright", "rests", "waves", "still", "still")
    assert check_part_descriptions(None) is None
    with pytest.raises(DataError, match="missing: \\['torso'\\]"):
        check_part_descriptions({k: v for k, v in good.items() if k != "torso"})
    with pytest.raises(DataError, match="non-empty string"):
        check_part_descriptions({**good, "left_leg": " "})


def _brute_part_loss(m, t, s, tau):
    b, p, _ = m.shape
    total = 0.0
    for k in range(p):
        sn = F.normalize(s[:, k], dim=-1)
        for i in range(b):
            weights = torch.tensor([float(torch.exp(sn[i] @ sn[j] / tau)) for j in range(b)], dtype=torch.float64)
            q = weights / weights.sum()
            m2t = torch.tensor([float(m[i, k] @ t[j, k] / tau) for j in range(b)], dtype=torch.float64)
            t2m = torch.tensor([float(t[i, k] @ m[j, k] / tau) for j in range(b)], dtype=torch.float64)
            total += -(q * torch.log_softmax(m2t, 0)).sum() * 0.5 - (q * torch.log_softmax(t2m, 0)).sum() * 0.5
    return total / (b * p)


def test_part_loss_matches_a_brute_force_reference():
    torch.manual_seed(0)
    m, t = (F.normalize(torch.randn(5, 3, 8, dtype=torch.float64), dim=-1) for _ in range(2))
    s = torch.randn(5, 3, 6, dtype=torch.float64)
    s[3] = s[1] * 2.0                       # identical texts (any scale): equal soft targets
    got = part_contrastive(m, t, s, temperature=0.2)
    assert torch.allclose(got, _brute_part_loss(m, t, s, 0.2).to(got.dtype), atol=1e-10)


def test_retrieval_loss_adds_the_weighted_part_term_only_when_asked():
    torch.manual_seed(1)
    text, motion = (F.normalize(torch.randn(4, 8), dim=-1) for _ in range(2))
    parts = (F.normalize(torch.randn(4, 5, 8), dim=-1), F.normalize(torch.randn(4, 5, 8), dim=-1), torch.randn(4, 5, 6))
    base = build_loss(LossConfig())(text, motion)
    with_parts = build_loss(LossConfig(part_weight=0.5, part_temperature=0.2))(text, motion, parts=parts)
    assert torch.allclose(with_parts["total"], base["total"] + 0.5 * with_parts["part"])
    off = build_loss(LossConfig(part_weight=0.0))(text, motion, parts=parts)
    assert "part" not in off and torch.allclose(off["total"], base["total"])


def test_parts_encoder_outputs_and_padding_hygiene():
    torch.manual_seed(0)
    cfg = ModelConfig(motion_encoder="parts", hidden_dim=32, latent_dim=16, num_layers=1, num_heads=2, dropout=0.0)
    encoder = build_motion_encoder(cfg, 137).eval()
    x = torch.randn(2, 10, 137)
    mask = torch.arange(10).unsqueeze(0) < torch.tensor([[10], [6]])
    out = encoder(x, mask)
    assert out["embedding"].shape == (2, 16) and out["parts"].shape == (2, 5, 16)
    assert torch.allclose(out["parts"].norm(dim=-1), torch.ones(2, 5), atol=1e-5)
    noisy = x.clone()
    noisy[1, 6:] = 1e3                       # values in padded frames cannot change anything
    again = encoder(noisy, mask)
    assert torch.allclose(out["embedding"], again["embedding"], atol=1e-5)
    assert torch.allclose(out["parts"], again["parts"], atol=1e-5)
    # with the VAE head (the temos loss) it gives mu/logvar from [CLS]
    vae = build_motion_encoder(ModelConfig(motion_encoder="parts", hidden_dim=32, latent_dim=16, num_layers=1,
                                           num_heads=2, vae=True), 263).eval()
    assert {"mu", "logvar", "parts"} <= set(vae(torch.randn(2, 10, 263), mask))
