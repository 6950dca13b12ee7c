"""Stick-figure pictures (results/render.py), read back with Pillow: frame count, size, timing, the two
people's colours, the filmstrip's panels, and clear errors.  Few small frames keep each test well under 2 s."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.features import joints_to_features
from core.data.recover import features_to_joints
from core.data.synthetic import Action, Interaction, motion_rng, render
from core.errors import ClearError
from results.render import PERSON_COLORS, render_filmstrip, render_gif

FPS = 20.0


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    """(12, 2, 22, 3): a handshake, every 8th frame (the two stand apart, both in view)."""
    return render(Interaction("handshake", approach=True), np.random.default_rng(2)).joints[::8][:12]


@pytest.fixture(scope="module")
def walker() -> np.ndarray:
    """(T, 22, 3): a walk, taken through its features and back (what a corpus gives to draw)."""
    m = render(Action("walk", speed="normal"), motion_rng(0, 1, 1))
    return features_to_joints(joints_to_features(m.joints, FPS), "joints22", FPS)


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _count(image: Image.Image, hex_color: str, tolerance: float = 40.0) -> int:
    """Pixels within ``tolerance`` (RGB distance) of a colour (GIF palettes shift colours a little)."""
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    return int((np.linalg.norm(pixels - _rgb(hex_color), axis=-1) < tolerance).sum())


def _frames(path) -> list[Image.Image]:
    with Image.open(path) as gif:
        out = []
        for k in range(gif.n_frames):
            gif.seek(k)
            out.append(gif.convert("RGB"))
        return out


def test_gif_frames_size_timing_and_two_colours(scene, tmp_path):
    path = render_gif(scene, tmp_path / "scene.gif", FPS / 8, size=120)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.size == (120, 120)
        assert gif.n_frames == len(scene) == 12
        assert gif.info["duration"] == 400                            # 2.5 fps: real time
    frames = _frames(path)
    for frame in frames:
        blue, orange = _count(frame, PERSON_COLORS[0]), _count(frame, PERSON_COLORS[1])
        assert blue > 20 and orange > 20, (blue, orange)
    assert not np.array_equal(np.asarray(frames[0]), np.asarray(frames[-1]))   # they walked up to each other
    assert [p.name for p in tmp_path.iterdir()] == ["scene.gif"]                # no temp file left


def test_one_person_is_one_colour_and_long_motions_are_thinned(walker, tmp_path):
    path = render_gif(walker[:30], tmp_path / "walk.gif", FPS, size=80, max_frames=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 10 and gif.size == (80, 80)
        assert gif.info["duration"] == 150                            # every 3rd frame at 20/3 fps
    frame = _frames(path)[0]
    assert _count(frame, PERSON_COLORS[0]) > 20 and _count(frame, PERSON_COLORS[1]) == 0


def test_filmstrip_panels_and_colours(scene, walker, tmp_path):
    path = render_filmstrip(scene, tmp_path / "scene.png", n_frames=5, fps=FPS / 8, panel=100, title="handshake")
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size == (500, 120)         # 5 panels of 100 px + a 20 px title
        image = png.convert("RGB")
    assert _count(image, PERSON_COLORS[0], 30) > 50 and _count(image, PERSON_COLORS[1], 30) > 50
    ink = (np.asarray(image, dtype=float).min(axis=-1) < 200).mean()
    assert 0.01 < ink < 0.5, ink                                      # drawn on, but not a blot
    # one person; more panels asked for than frames exist: one panel per frame
    path = render_filmstrip(walker[:3], tmp_path / "walk.png", n_frames=8, panel=60)
    with Image.open(path) as png:
        assert png.size == (180, 60)


def test_kit_skeleton_draws(tmp_path):
    kit = np.zeros((2, 21, 3))
    kit[:, :, 1] = np.linspace(0, 1700, 21)                           # millimetres: scale-free drawing
    kit[:, :, 0] = np.sin(np.arange(21))[None] * 200
    render_filmstrip(kit, tmp_path / "kit.png", n_frames=2, panel=60)
    assert (tmp_path / "kit.png").stat().st_size > 500


@pytest.mark.parametrize("joints, name, fps, words", [
    (np.zeros((4, 23, 3)), "x.gif", FPS, ["(4, 23, 3)", "cannot be drawn"]),
    (np.zeros((4, 5, 22, 3)), "x.gif", FPS, ["5 people"]),
    (np.full((4, 22, 3), np.nan), "x.gif", FPS, ["NaN"]),
    (np.zeros((4, 22, 3)), "x.png", FPS, ["not a .gif", "render_filmstrip"]),
    (np.zeros((4, 22, 3)), "x.gif", 0, ["fps=0"]),
])
def test_clear_errors_and_nothing_written(joints, name, fps, words, tmp_path):
    with pytest.raises(ClearError) as info:
        render_gif(joints, tmp_path / name, fps)
    assert "Fix:" in str(info.value) and all(w in str(info.value) for w in words)
    assert list(tmp_path.iterdir()) == []
