"""BVH text format: parse HIERARCHY + MOTION, and forward kinematics to world joint positions.

Format facts used: ``ROOT``/``JOINT name { OFFSET x y z  CHANNELS n c1..cn  children...  }``,
``End Site { OFFSET x y z }``, then ``MOTION``, ``Frames: N``, ``Frame Time: dt`` and N lines of
channel values in hierarchy order.  Rotations are in degrees and compose in the order the
CHANNELS line lists them (``Zrotation Xrotation Yrotation`` -> R = Rz @ Rx @ Ry); a joint's
position channels, when present, replace its OFFSET.  Every problem raises a ``DataError`` naming
the file and the line.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_FIX = "re-export the file from your animation tool, or remove it from the dataset."


@dataclass
class BvhJoint:
    name: str
    parent: int                       # index into BvhClip.joints, -1 for a root
    offset: np.ndarray                # (3,) in file units
    channels: tuple[str, ...]
    channel_start: int                # first column of this joint in the motion lines
    end_site: np.ndarray | None = None   # (3,) offset of an End Site child, if any
    depth: int = 0


@dataclass
class BvhClip:
    path: Path
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray                # (T, C) float64 channel values
    notes: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]


class _Tokens:
    """Whitespace tokens of the HIERARCHY part, each with its 1-based line number."""

    def __init__(self, path: Path, lines: list[str]):
        self.path = path
        self.items = [(tok, n) for n, line in enumerate(lines, 1) for tok in line.split()]
        self.pos = 0
        self.last_line = len(lines)

    def error(self, problem: str, line: int | None = None) -> DataError:
        line = line if line is not None else (self.items[self.pos][1] if self.pos < len(self.items)
                                              else self.last_line)
        return DataError(f"line {line}: {problem}", where=self.path, fix=_FIX)

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"the hierarchy ends before {what} (missing '}}' or MOTION section?).")
        tok = self.items[self.pos]
        self.pos += 1
        return tok

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok != word:
            raise self.error(f"expected {word!r}, found {tok!r}.", line)
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            return float(tok)
        except ValueError:
            raise self.error(f"expected a number for {what}, found {tok!r}.", line) from None

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None


def _parse_joint(tokens: _Tokens, name: str, parent: int, depth: int, joints: list[BvhJoint],
                 n_channels: list[int]) -> None:
    tokens.expect("{")
    tokens.expect("OFFSET")
    offset = np.array([tokens.number("OFFSET x"), tokens.number("OFFSET y"), tokens.number("OFFSET z")])
    channels: tuple[str, ...] = ()
    if tokens.peek() == "CHANNELS":
        tokens.next("CHANNELS")
        count_tok, line = tokens.next("the channel count")
        if not count_tok.isdigit():
            raise tokens.error(f"CHANNELS of joint {name!r} must start with a count, found {count_tok!r}.", line)
        names = []
        for _ in range(int(count_tok)):
            tok, tline = tokens.next(f"the channels of joint {name!r}")
            if tok not in CHANNEL_NAMES:
                raise tokens.error(f"joint {name!r} declares {count_tok} channels but {tok!r} is not a "
                                   f"channel name (known: {', '.join(CHANNEL_NAMES)}).", tline)
            names.append(tok)
        if len(set(names)) != len(names):
            raise tokens.error(f"joint {name!r} lists a channel twice: {names}.", line)
        channels = tuple(names)
    index = len(joints)
    joints.append(BvhJoint(name, parent, offset, channels, n_channels[0], depth=depth))
    n_channels[0] += len(channels)
    while True:
        tok, line = tokens.next(f"the closing '}}' of joint {name!r}")
        if tok == "}":
            return
        if tok == "JOINT":
            child, _ = tokens.next("a joint name")
            _parse_joint(tokens, child, index, depth + 1, joints, n_channels)
        elif tok == "End":
            tokens.expect("Site")
            tokens.expect("{")
            tokens.expect("OFFSET")
            joints[index].end_site = np.array([tokens.number("End Site x"), tokens.number("End Site y"),
                                               tokens.number("End Site z")])
            tokens.expect("}")
        else:
            raise tokens.error(f"unexpected {tok!r} inside joint {name!r} (expected JOINT, End Site or '}}').",
                               line)


def _header_value(path: Path, line: str, n: int, key: str) -> str:
    head, sep, value = line.partition(":")
    if not sep or head.strip().lower() != key.lower() or not value.strip():
        raise DataError(f"line {n}: expected '{key}: <value>', found {line.strip()!r}.", where=path, fix=_FIX)
    return value.strip()


def _diagnose_motion_lines(path: Path, lines: list[str], first_line: int, n_channels: int) -> DataError:
    """Slow path, only after the fast parse failed: find the first bad frame line."""
    for k, line in enumerate(lines):
        values = line.split()
        if not values:
            continue
        if len(values) != n_channels:
            return DataError(f"line {first_line + k}: a frame line has {len(values)} values but the "
                             f"hierarchy declares {n_channels} channels.", where=path, fix=_FIX)
        for col, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                return DataError(f"line {first_line + k}: value {col + 1} ({v!r}) is not a number.",
                                 where=path, fix=_FIX)
    return DataError(f"line {first_line}: the frame lines could not be read as numbers.", where=path, fix=_FIX)


def parse_bvh(path: str | Path) -> BvhClip:
    """Read a BVH file into its skeleton and a (T, C) array of channel values."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise DataError(f"cannot read the BVH file ({e.strerror or e}).", where=path) from None
    lines = text.splitlines()
    motion_at = next((k for k, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if motion_at is None:
        raise DataError("no MOTION section: this is not a complete BVH file.", where=path, fix=_FIX)
    tokens = _Tokens(path, lines[:motion_at])
    tok, line = tokens.next("HIERARCHY")
    if tok != "HIERARCHY":
        raise tokens.error(f"a BVH file starts with HIERARCHY, found {tok!r}.", line)
    joints: list[BvhJoint] = []
    n_channels = [0]
    while tokens.peek() is not None:
        tok, line = tokens.next("ROOT")
        if tok != "ROOT":
            raise tokens.error(f"expected ROOT, found {tok!r}.", line)
        name, _ = tokens.next("the root name")
        _parse_joint(tokens, name, -1, 0, joints, n_channels)
    if not joints:
        raise DataError(f"line {motion_at}: the hierarchy has no ROOT joint.", where=path, fix=_FIX)
    n_channels = n_channels[0]
    if n_channels == 0:
        raise DataError("the hierarchy declares no CHANNELS, so there is no motion.", where=path, fix=_FIX)

    if len(lines) < motion_at + 3:
        raise DataError(f"line {motion_at + 1}: MOTION must be followed by 'Frames:' and 'Frame Time:'.",
                        where=path, fix=_FIX)
    frames_txt = _header_value(path, lines[motion_at + 1], motion_at + 2, "Frames")
    time_txt = _header_value(path, lines[motion_at + 2], motion_at + 3, "Frame Time")
    try:
        n_frames = int(frames_txt)
        frame_time = float(time_txt)
    except ValueError:
        raise DataError(f"lines {motion_at + 2}-{motion_at + 3}: 'Frames: {frames_txt}' / "
                        f"'Frame Time: {time_txt}' are not numbers.", where=path, fix=_FIX) from None
    if n_frames <= 0:
        raise DataError(f"line {motion_at + 2}: the file has Frames: {n_frames}; a motion needs at least "
                        "one frame.", where=path, fix=_FIX)
    if not np.isfinite(frame_time) or frame_time <= 0:
        raise DataError(f"line {motion_at + 3}: Frame Time must be a positive number of seconds, "
                        f"found {time_txt}.", where=path, fix=_FIX)

    first = motion_at + 3                        # 0-based index of the first frame line
    body = lines[first:]
    while body and not body[-1].strip():        # trailing blank lines are harmless
        body.pop()
    if not any(line.strip() for line in body):
        raise DataError(f"line {motion_at + 2}: Frames: {n_frames} but the file has no frame lines.",
                        where=path, fix=_FIX)
    try:
        motion = np.loadtxt(io.StringIO("\n".join(body)), dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        raise _diagnose_motion_lines(path, body, first + 1, n_channels) from None
    if motion.shape[0] and motion.shape[1] != n_channels:
        raise _diagnose_motion_lines(path, body, first + 1, n_channels)
    if motion.shape[0] != n_frames:
        raise DataError(f"line {motion_at + 2}: Frames: {n_frames} but the file has {motion.shape[0]} "
                        "frame lines.", where=path, fix="correct the Frames: count or re-export the file.")
    return BvhClip(path, joints, frame_time, motion)


_AXIS_PLANE = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}   # (i, j): the rotation turns axis i towards j


def _axis_rotations(axis: str, degrees: np.ndarray) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) right-handed rotation matrices about one axis."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = _AXIS_PLANE[axis]
    k = 3 - i - j
    out = np.zeros((len(a), 3, 3))
    out[:, k, k] = 1.0
    out[:, i, i] = out[:, j, j] = c
    out[:, i, j], out[:, j, i] = -s, s
    return out


def world_positions(clip: BvhClip) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics, vectorised over frames.

    Returns (T, J, 3) world positions of the joints (file units) and (T, J, 3) world positions of
    each joint's End Site (NaN for joints without one).
    """
    T = len(clip.motion)
    J = len(clip.joints)
    positions = np.zeros((T, J, 3))
    end_sites = np.full((T, J, 3), np.nan)
    rotations = np.zeros((J, T, 3, 3))
    for j, joint in enumerate(clip.joints):
        local_t = np.broadcast_to(joint.offset, (T, 3)).copy()   # (T, 3)
        local_r = None                                          # (T, 3, 3) or None for identity
        for k, ch in enumerate(joint.channels):
            column = clip.motion[:, joint.channel_start + k]
            axis = ch[0]
            if ch.endswith("position"):
                local_t[:, "XYZ".index(axis)] = column
            else:
                r = _axis_rotations(axis, column)
                local_r = r if local_r is None else local_r @ r
        if joint.parent < 0:
            world_r = local_r if local_r is not None else np.broadcast_to(np.eye(3), (T, 3, 3))
            positions[:, j] = local_t
        else:
            parent_r = rotations[joint.parent]
            positions[:, j] = positions[:, joint.parent] + np.einsum("tij,tj->ti", parent_r, local_t)
            world_r = parent_r @ local_r if local_r is not None else parent_r
        rotations[j] = world_r
        if joint.end_site is not None:
            end_sites[:, j] = positions[:, j] + world_r @ joint.end_site
    return positions, end_sites
