import numpy as np

from core.config import AugmentConfig
from core.data.augment import choose_window
from core.data.mirror_text import mirror_caption
from core.data.batching import BatchBuilder
from core.data.build import build_corpus

from .helpers import toy_raw


def test_mirror_caption_swaps_and_keeps_case():
    assert mirror_caption("Left hand up, then the right.") == "Right hand up, then the left."
    assert mirror_caption("turns clockwise") == "turns counterclockwise"
    assert mirror_caption("bright lefty") == "bright lefty"  # only whole words


def test_eval_window_centred_and_train_window_bounded():
    assert choose_window(100, 40, None, None) == (30, 70)
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(aug_crop=1.0, aug_shift=0.2)
    for _ in range(200):
        s, e = choose_window(100, 40, cfg, rng)
        assert 0 <= s < e <= 100 and 4 <= e - s <= 40


def _builder(aug=None, max_frames=16):
    c = build_corpus(toy_raw(30))
    mean, std = c.mean_std()
    return c, BatchBuilder(c, mean, std, max_frames, aug)


def test_padding_mask_and_normalization():
    c, b = _builder()
    idx = np.array([0, 1, 2, 3])
    batch = b.build(idx)
    lens = [min(len(c.motion(i)), 16) for i in idx]
    assert batch.motion.shape == (4, max(lens), c.dim)
    assert batch.mask.sum(1).tolist() == lens
    assert (batch.motion[~batch.mask] == 0).all()
    assert batch.texts == [c.captions[i][0] for i in idx]
    i0 = int(idx[0])
    start = max(0, (len(c.motion(i0)) - 16) // 2)
    expect = (c.motion(i0)[start:start + lens[0]] - b.mean) * b.inv_std
    np.testing.assert_allclose(batch.motion[0, :lens[0]].numpy(), expect, atol=1e-5)


def test_mirror_augmentation_mirrors_motion_and_caption():
    c, b = _builder(AugmentConfig(aug_mirror=1.0), max_frames=1000)
    batch = b.build(np.array([5]), np.random.default_rng(0))
    assert "right" in batch.texts[0] and "left" not in batch.texts[0]
    raw = c.motion(5)
    expect = (c.layout.mirror(np.asarray(raw)) - b.mean) * b.inv_std
    np.testing.assert_allclose(batch.motion[0].numpy(), expect, atol=1e-5)


def test_noise_and_time_mask_change_train_batches_only():
    c, b = _builder(AugmentConfig(aug_noise=0.5, aug_time_mask=1.0), max_frames=1000)
    idx = np.array([7, 8])
    ev1, ev2 = b.build(idx), b.build(idx)
    assert (ev1.motion == ev2.motion).all()
    tr = b.build(idx, np.random.default_rng(1))
    assert not np.allclose(tr.motion.numpy(), ev1.motion.numpy())


def test_epoch_batches_cover_split_without_repeats():
    c, b = _builder()
    idx = c.splits["train"]
    batches = list(b.epoch_batches(idx, 4, np.random.default_rng(0)))
    flat = np.concatenate(batches)
    assert len(flat) == len(idx) - len(idx) % 4 and len(set(flat.tolist())) == len(flat)
    small = list(b.epoch_batches(idx[:3], 8, np.random.default_rng(0)))
    assert len(small) == 1 and len(small[0]) == 3


def test_length_bucketing_reduces_padding_and_keeps_coverage():
    c, b = _builder(max_frames=1000)
    idx = np.arange(len(c))
    plain = list(b.epoch_batches(idx, 2, np.random.default_rng(3)))
    bucketed = list(b.epoch_batches(idx, 2, np.random.default_rng(3), bucket=True))
    assert sorted(np.concatenate(bucketed).tolist()) == sorted(np.concatenate(plain).tolist())
    lens = c.lengths()

    def padded(batches):
        return sum(len(x) * lens[x].max() for x in batches)
    assert padded(bucketed) < padded(plain)
