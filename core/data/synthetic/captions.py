"""Captions for single-person actions and sequences.

Every phrase mentions every attribute in the action's key (side, count, speed, variant), so two
motions with different keys never share a correct caption and hard negatives ("waves with the
left hand twice" vs "... right hand twice" vs "... left hand three times") are real negatives.
"""
from __future__ import annotations

import numpy as np

from .grammar import count_adverb, count_noun, distinct, join_actions, pick
from .primitives import Action


def _hand(side: str, rng, limb: str = "hand") -> str:
    if side == "both":
        return pick(rng, (f"both {limb}s", f"both of their {limb}s"))
    return pick(rng, (f"the {side} {limb}", f"their {side} {limb}"))


def _speed_walk(a: Action, rng) -> list[str]:
    return {
        "slow": ["<walk> forward slowly", "slowly <walk> forward", "<walk> ahead at a slow pace",
                 "<stroll> slowly forward", "<walk> forward leisurely and slowly"],
        "normal": ["<walk> forward", "<walk> straight ahead", "<walk> forward at a normal pace",
                   "<take> several steps forward", "<walk> ahead"],
        "fast": ["<walk> forward quickly", "quickly <walk> ahead", "<walk> briskly forward",
                 "<hurry> forward at a fast walk", "<walk> fast in a straight line"],
    }[a.speed]


def action_phrases(a: Action, rng: np.random.Generator) -> list[str]:
    """Paraphrase templates (base verbs in <>) for one action; all consistent with its key."""
    k, side = a.kind, a.side
    if k == "walk":
        return _speed_walk(a, rng)
    if k == "walk_backward":
        slow = a.speed == "slow"
        return (["slowly <walk> backwards", "<walk> backward slowly", "<step> back slowly several times",
                 "<back> up slowly"] if slow else
                ["<walk> backwards", "<walk> backward a few steps", "<move> backwards by walking",
                 "<back> up, walking backward"])
    if k == "jog":
        return ["<jog> forward", "<jog> ahead", "<go> for a short jog forward", "<jog> in a straight line"]
    if k == "run":
        return ["<run> forward", "<run> ahead fast", "<sprint> forward", "<dash> forward"]
    if k == "side_step":
        return [f"<step> sideways to the {side}", f"<sidestep> to the {side}",
                f"<shuffle> to the {side}", f"<move> sideways towards the {side}",
                f"<take> side steps to the {side}"]
    if k == "turn":
        if a.variant == "90":
            return [f"<turn> {side}", f"<turn> to the {side}", f"<turn> 90 degrees to the {side}",
                    f"<rotate> to face the {side}", f"<make> a quarter turn to the {side}"]
        return [f"<turn> around to the {side}", f"<turn> 180 degrees to the {side}",
                f"<do> a half turn to the {side}", f"<turn> around over the {side} shoulder"]
    if k == "spin":
        return [f"<spin> around to the {side}", f"<turn> a full circle to the {side}",
                f"<do> a full turn to the {side}", f"<spin> once around towards the {side}",
                f"<twirl> around to the {side}"]
    if k == "jump":
        c = count_adverb(a.count, rng)
        n = count_noun(a.count, "jump")
        if a.variant == "forward":
            return [f"<jump> forward {c}", f"<leap> forward {c}", f"<do> {n} forward",
                    f"<jump> ahead {c} with both feet"]
        return [f"<jump> in place {c}", f"<jump> up and down {c}", f"<do> {n} on the spot",
                f"<jump> straight up {c}"]
    if k == "hop":
        c = count_adverb(a.count, rng)
        return [f"<hop> on the {side} foot {c}", f"<hop> {c} on the {side} leg",
                f"<stand> on the {side} leg and <hop> {c}", f"<do> {count_noun(a.count, 'hop')} on the {side} foot"]
    if k == "squat":
        c = count_adverb(a.count, rng)
        return [f"<squat> {c}", f"<do> {count_noun(a.count, 'squat')}", f"<squat> down and up {c}",
                f"<bend> the knees and <squat> {c}"]
    if k == "sit_down":
        return ["<sit> down", "<sit> down on a chair", "<take> a seat", "<lower> down into a seat"]
    if k == "stand_up":
        return ["<stand> up", "<get> up from the seat", "<rise> to their feet", "<stand> back up"]
    if k == "jumping_jacks":
        n = count_noun(a.count, "jumping jack")
        return [f"<do> {n}", f"<perform> {n}", f"<do> {n}, arms up and legs apart"]
    if k == "wave":
        c = count_adverb(a.count, rng)
        h = _hand(side, rng)
        return [f"<wave> with {h} {c}", f"<wave> {h} {c}", f"<raise> {h} and <wave> {c}",
                f"<wave> {c} using {_hand(side, rng, 'arm')}",
                f"<give> {count_noun(a.count, 'wave')} with {h}"]
    if k == "raise":
        h = _hand(side, rng)
        return [f"<raise> {h}", f"<lift> {_hand(side, rng, 'arm')} up", f"<put> {h} up in the air",
                f"<raise> {_hand(side, rng, 'arm')} above the head", f"<reach> up with {h}"]
    if k == "punch":
        c = count_adverb(a.count, rng)
        return [f"<punch> with the {side} fist {c}", f"<punch> forward {c} with the {side} hand",
                f"<throw> {count_noun(a.count, 'punch', 'punches')} with the {side} arm",
                f"<jab> {c} using the {side} hand"]
    if k == "kick":
        c = count_adverb(a.count, rng)
        return [f"<kick> with the {side} leg {c}", f"<kick> {c} with the {side} foot",
                f"<do> {count_noun(a.count, 'kick')} with the {side} leg",
                f"<kick> forward {c} using the {side} leg"]
    if k == "clap":
        c = count_adverb(a.count, rng)
        return [f"<clap> {c}", f"<clap> their hands {c}", f"<clap> the hands together {c}",
                f"<give> {count_noun(a.count, 'clap')}"]
    if k == "bow":
        if a.variant == "deep":
            return ["<bow> deeply", "<make> a deep bow", "<bend> far forward in a deep bow",
                    "<bow> low from the waist"]
        return ["<bow> slightly", "<make> a small bow", "<give> a slight bow", "<bow> a little, just the upper body"]
    if k == "stretch":
        return ["<stretch> both arms up", "<reach> up high with both arms",
                "<stretch> upward with the arms over the head",
                "<raise> both arms overhead and <stretch>"]
    if k == "lean":
        return [f"<lean> to the {side}", f"<bend> the upper body to the {side}", f"<tilt> sideways to the {side}",
                f"<lean> the torso towards the {side}"]
    if k == "march":
        return ["<march> in place", "<march> on the spot, lifting the knees high", "<step> in place with high knees",
                "<march> without moving forward"]
    if k == "arm_circle":
        arm = _hand(side, rng, "arm")
        return [f"<circle> {arm}", f"<swing> {arm} in circles", f"<make> big circles with {arm}",
                f"<rotate> {arm} in forward circles"]
    if k == "throw":
        return [f"<throw> something with the {side} hand", f"<throw> an object using the {side} arm",
                f"<make> a throwing motion with the {side} arm", f"<throw> a ball overhand with the {side} hand"]
    raise KeyError(f"no caption phrases for action kind {k!r}")


def action_captions(actions: list[Action], rng: np.random.Generator) -> list[str]:
    """2-4 distinct captions for a sequence of 1-3 actions (in this order)."""
    return distinct(lambda r: join_actions([pick(r, action_phrases(a, r)) for a in actions], r), rng)


def sequence_key(actions: list[Action]) -> str:
    return " > ".join(a.key() for a in actions)
