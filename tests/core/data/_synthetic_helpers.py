"""Shared helpers for the synthetic-corpus tests: measurements read from the *raw world joints*.

They take body axes from the hips and shoulders (not from our own feature channels), so the tests
check what a viewer of the motion would see.
"""
import numpy as np

from core.data import skeleton

J = skeleton.JOINT_INDEX
FPS = 20.0


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
