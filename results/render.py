"""Motions as pictures: an animated stick figure (GIF) and a one-image filmstrip.

    from core.data.recover import features_to_joints
    from results.render import render_filmstrip, render_gif
    joints = features_to_joints(corpus.motion(i), corpus.layout, corpus.fps)   # (T, 22, 3) or (T, 2, 22, 3)
    render_gif(joints, "motion.gif", corpus.fps)
    render_filmstrip(joints, "motion.png", n_frames=8, fps=corpus.fps)

Input: world joint positions (T, J, 3) of one person or (T, P, J, 3) of P people, +Y up, in any unit; J = 22
(SMPL order, bones from ``core.data.skeleton.PARENTS``) or 21 (KIT-ML, ``core.data.recover.KIT_PARENTS``).
Person p is drawn in ``PERSON_COLORS[p]`` (blue, orange: told apart with any colour vision), on a grey floor
grid at the lowest joint height, with each person's root path traced faintly on the floor.

Camera: one fixed orthographic view (``azimuth`` degrees about +Y from the +Z axis, ``elevation`` above the
ground), projected here with numpy onto a plain 2D axes: every frame is drawn from the same view at the same
scale, and it is several times faster than mplot3d (tests run on 2 CPU cores).  Matplotlib's object API with
the Agg canvas (no pyplot: the caller's backend is untouched); the GIF goes through
``matplotlib.animation.PillowWriter`` (Pillow comes with matplotlib: no extra dependency).  Files are written
under a temp name and renamed (``core.atomic``), so a reader never sees half a picture.
"""
from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from core.atomic import atomic_path
from core.data import skeleton
from core.data.recover import KIT_PARENTS
from core.errors import ClearError

PERSON_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")   # matplotlib's tab10 blue, orange, green, red
FLOOR_COLOR = "#c8c8c8"
DPI = 80                     # pixel sizes are multiples of 10, so size / DPI * DPI is exact in binary
PARENTS_BY_JOINTS = {22: skeleton.PARENTS, 21: KIT_PARENTS}
HEAD_BY_JOINTS = {22: skeleton.JOINT_INDEX["head"], 21: 4}


def _people(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) or (T, P, J, 3) -> float64 (T, P, J, 3), or a ClearError saying what shape is expected."""
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[-2] not in PARENTS_BY_JOINTS or len(x) < 1:
        raise ClearError(f"joints of shape {np.shape(joints)} cannot be drawn.",
                         fix="pass world joint positions (T, 22, 3) or (T, P, 22, 3) (21 joints for KIT-ML), "
                             "e.g. core.data.recover.features_to_joints(features, layout, fps).")
    if not 1 <= x.shape[1] <= len(PERSON_COLORS):
        raise ClearError(f"{x.shape[1]} people cannot be drawn; 1 to {len(PERSON_COLORS)} can.",
                         fix="draw the people in groups of at most four.")
    if not np.isfinite(x).all():
        raise ClearError("the joints contain NaN or inf.", fix="fill or drop the frames with missing values.")
    return x


def _pixels(size: int) -> int:
    """A pixel size rounded to a multiple of 10 (at least 40): see DPI."""
    return max(40, int(round(size / 10.0)) * 10)


class _Camera:
    """Orthographic projection: world (..., 3) -> screen (..., 2) (x right, y up) and depth (bigger = nearer).

    At azimuth 0 the camera stands on +Z looking back at the origin (a person facing +Z faces it, their
    left (+X) on screen right); a positive azimuth walks it round towards +X; elevation tilts it down.
    """

    def __init__(self, azimuth: float, elevation: float):
        az, el = math.radians(azimuth), math.radians(elevation)
        self.right = np.array([math.cos(az), 0.0, -math.sin(az)])
        self.up = np.array([-math.sin(az) * math.sin(el), math.cos(el), -math.cos(az) * math.sin(el)])
        self.towards = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])

    def screen(self, points: np.ndarray) -> np.ndarray:
        return np.stack([points @ self.right, points @ self.up], axis=-1)

    def depth(self, points: np.ndarray) -> np.ndarray:
        return points @ self.towards


def _grid_spacing(body_height: float) -> float:
    """A 1-2-5 step near a third of the body's height (0.5 for a 1.7 m person, 500 for one in mm)."""
    target = max(body_height, 1e-9) / 3.0
    power = 10.0 ** math.floor(math.log10(target))
    return min((1.0, 2.0, 5.0, 10.0), key=lambda m: abs(math.log(m * power / target))) * power


def _floor_segments(lo: np.ndarray, hi: np.ndarray, floor: float, step: float) -> np.ndarray:
    """World segments (n, 2, 3) of a floor grid at height ``floor`` covering ground (x, z) lo..hi."""
    lo, hi = np.floor(lo / step) * step, np.ceil(hi / step) * step
    xs, zs = np.arange(lo[0], hi[0] + step / 2, step), np.arange(lo[1], hi[1] + step / 2, step)
    along_z = [((x, floor, lo[1]), (x, floor, hi[1])) for x in xs]
    along_x = [((lo[0], floor, z), (hi[0], floor, z)) for z in zs]
    return np.asarray(along_z + along_x, dtype=np.float64).reshape(-1, 2, 3)


class _Scene:
    """The artists of one axes: floor grid, root paths, and per person a bone collection and a head dot."""

    def __init__(self, ax, people: np.ndarray, camera: _Camera, colors, linewidth: float):
        self.people, self.camera, self.ax = people, camera, ax
        J = people.shape[2]
        parents = PARENTS_BY_JOINTS[J]
        self.children = np.array([j for j in range(J) if parents[j] >= 0])
        self.parents = np.array([parents[j] for j in self.children])
        self.head = HEAD_BY_JOINTS[J]
        self.floor = float(people[..., 1].min())
        self.step = _grid_spacing(float(np.ptp(people[0, 0, :, 1])) or 1.0)
        self.grid = LineCollection([], colors=FLOOR_COLOR, linewidths=0.6, zorder=0)
        ax.add_collection(self.grid)
        self.bones, self.heads = [], []
        for p in range(people.shape[1]):
            path = people[:, p, 0] * np.array([1.0, 0.0, 1.0]) + np.array([0.0, self.floor, 0.0])
            ax.plot(*camera.screen(path).T, color=colors[p], alpha=0.25, linewidth=1.0, zorder=1)
            bones = LineCollection([], colors=colors[p], linewidths=linewidth, capstyle="round")
            ax.add_collection(bones)
            self.bones.append(bones)
            self.heads.append(ax.plot([], [], "o", color=colors[p], markersize=linewidth * 2.2)[0])
        ax.set_aspect("equal")
        ax.set_axis_off()

    def set_floor(self, lo: np.ndarray, hi: np.ndarray) -> None:
        segments = _floor_segments(lo, hi, self.floor, self.step)
        self.grid.set_segments(self.camera.screen(segments))

    def draw_frame(self, t: int) -> None:
        pose = self.people[t]                                              # (P, J, 3)
        order = np.argsort(self.camera.depth(pose[:, 0]))                 # the farther person first
        for rank, p in enumerate(order):
            screen = self.camera.screen(pose[p])                          # (J, 2)
            self.bones[p].set_segments(np.stack([screen[self.children], screen[self.parents]], axis=1))
            self.bones[p].set_zorder(2 + 2 * rank)
            self.heads[p].set_data([screen[self.head, 0]], [screen[self.head, 1]])
            self.heads[p].set_zorder(3 + 2 * rank)

    def set_view(self, centre: np.ndarray, half: float) -> None:
        """Screen limits: a square of half-width ``half`` round the screen point ``centre``."""
        self.ax.set_xlim(centre[0] - half, centre[0] + half)
        self.ax.set_ylim(centre[1] - half, centre[1] + half)


def _square_view(points: np.ndarray, camera: _Camera, margin: float = 0.08) -> tuple[np.ndarray, float]:
    """(centre, half-width) of the screen square that holds every point (..., 3) with a margin."""
    screen = camera.screen(points.reshape(-1, 3))
    lo, hi = screen.min(0), screen.max(0)
    return (lo + hi) / 2, float(np.max(hi - lo)) / 2 * (1 + 2 * margin) or 1.0


def render_gif(joints: np.ndarray, path: str | Path, fps: float, *, size: int = 240, max_frames: int = 200,
               azimuth: float = 35.0, elevation: float = 15.0, colors=PERSON_COLORS, linewidth: float = 2.5,
               title: str | None = None) -> Path:
    """Write an animated stick figure of the joints (see the module docstring) as a GIF; returns the path.

    fps: the joints' frame rate; the GIF plays in real time.  size: width = height in pixels (rounded to a
    multiple of 10).  max_frames: longer motions keep every k-th frame (k = ceil(T / max_frames)) and play at
    fps / k.  Every frame is labelled with its time, so no two frames are alike (Pillow merges equal ones).
    """
    people = _people(joints)
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ClearError(f"{path.name!r} is not a .gif file name; render_gif writes GIF only.", where=path,
                         fix="name the output <name>.gif (render_filmstrip writes a PNG).")
    if isinstance(fps, bool) or not (isinstance(fps, numbers.Real) and 0 < fps < float("inf")):
        raise ClearError(f"fps={fps!r} is not a positive frame rate.", fix="pass the motion's frame rate.")
    stride = max(1, math.ceil(len(people) / max(int(max_frames), 1)))
    frames = range(0, len(people), stride)
    px = _pixels(size)
    fig = Figure(figsize=(px / DPI, px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    scene = _Scene(ax, people, _Camera(azimuth, elevation), colors, linewidth)
    ground = people[..., [0, 2]].reshape(-1, 2)
    scene.set_floor(ground.min(0) - scene.step, ground.max(0) + scene.step)
    scene.set_view(*_square_view(people, scene.camera))
    label = ax.text(0.03, 0.97, "", transform=ax.transAxes, va="top", fontsize=7, color="#555555")
    heading = f"{title}\n" if title else ""
    writer = PillowWriter(fps=fps / stride)
    with atomic_path(path) as tmp, writer.saving(fig, tmp, DPI):
        for t in frames:
            scene.draw_frame(t)
            label.set_text(f"{heading}{t / fps:.2f} s")
            writer.grab_frame()
    return path


def render_filmstrip(joints: np.ndarray, path: str | Path, n_frames: int = 8, fps: float | None = None, *,
                     panel: int = 160, azimuth: float = 35.0, elevation: float = 15.0, colors=PERSON_COLORS,
                     linewidth: float = 2.0, title: str | None = None) -> Path:
    """Write one PNG of ``n_frames`` evenly spaced poses side by side; returns the path.

    Every panel has the same scale and is centred on the people at that frame, over a floor grid fixed in the
    world (so travel shows as the grid sliding by) with the whole root path traced.  Panels are
    labelled with their time (fps given) or frame index.  panel: each panel's width = height in pixels
    (rounded to a multiple of 10); the image is n * panel by panel (+ 20 pixels for a title).
    """
    people = _people(joints)
    n = max(1, min(int(n_frames), len(people)))
    picks = np.unique(np.linspace(0, len(people) - 1, n).round().astype(int))
    px, head_px = _pixels(panel), (20 if title else 0)
    fig = Figure(figsize=(len(picks) * px / DPI, (px + head_px) / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    if title:
        fig.text(0.5, 1 - 10 / (px + head_px), title, ha="center", va="center", fontsize=8)
    camera = _Camera(azimuth, elevation)
    half = max(_square_view(people[t], camera)[1] for t in picks)    # one scale for every panel
    for k, t in enumerate(picks):
        width = 1 / len(picks)                                          # a 3% gap between panels
        ax = fig.add_axes((k * width + 0.015 * width, 0.0, 0.97 * width, px / (px + head_px)))
        scene = _Scene(ax, people, camera, colors, linewidth)
        roots = people[t][:, 0][:, [0, 2]]                               # (P, 2) ground positions
        scene.set_floor(roots.min(0) - 2 * half, roots.max(0) + 2 * half)
        scene.draw_frame(int(t))
        scene.set_view(_square_view(people[t], camera)[0], half)
        label = f"{t / fps:.1f} s" if fps else f"frame {t}"
        ax.text(0.03, 0.97, label, transform=ax.transAxes, va="top", fontsize=7, color="#555555")
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path
