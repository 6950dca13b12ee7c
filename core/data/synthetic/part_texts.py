"""Part-level descriptions of a synthetic motion: what the torso and each arm and leg do.

The generator knows which limb performs which action (a left wave moves the left arm, a right kick the
right leg), so it can write the five part texts a part-level model (SGAR, GAR annotations) trains on::

    part_descriptions((Action("wave", "right", 2),))
    -> ("the torso stays upright", "the left arm hangs relaxed", "the right arm waves twice",
        "the left leg stands still", "the right leg stands still")

Texts follow ``core.data.parts.PART_NAMES`` order.  They are a pure function of the spec (no random
numbers), so adding them changed no motion or caption of the corpus.  Two people: each part text names
what that limb of the first and of the second person does.  Where the spec does not say which limb acts
(the side of a wave given in reply is not part of the spec), the text says what the person does without
naming the limb, on the torso.
"""
from __future__ import annotations

from ..parts import PART_NAMES
from .interactions import Followup, Interaction
from .primitives import Action

_LABEL = {"torso": "torso", "left_arm": "left arm", "right_arm": "right arm", "left_leg": "left leg",
          "right_leg": "right leg"}
IDLE = {"torso": "stays upright", "left_arm": "hangs relaxed", "right_arm": "hangs relaxed",
        "left_leg": "stands still", "right_leg": "stands still"}
_ARMS, _LEGS = ("left_arm", "right_arm"), ("left_leg", "right_leg")


def _sides(side: str | None, limb: str) -> tuple[str, ...]:
    """'left' -> ('left_arm',); 'both' -> both; None -> both (an unsided two-limb action)."""
    if side in ("left", "right"):
        return (f"{side}_{limb}",)
    return (f"left_{limb}", f"right_{limb}")


_TIMES = {1: " once", 2: " twice", 3: " three times", 4: " four times"}


def _times(count: int | None) -> str:
    return _TIMES.get(count, f" {count} times") if count else ""


def _other(part: str) -> str:
    return part.replace("left", "RIGHT").replace("right", "left").replace("RIGHT", "right")


def action_parts(a: Action) -> dict[str, str]:
    """The parts one action moves -> what each does (a verb phrase whose subject is the limb)."""
    k, n = a.kind, _times(a.count)
    speed = {"slow": " slowly", "fast": " fast"}.get(a.speed or "", "")
    both_legs = dict.fromkeys(_LEGS)
    if k in ("walk", "walk_backward", "jog", "run", "march"):
        step = {"walk": f"walks forward{speed}", "walk_backward": f"steps backward{speed}", "jog": "jogs forward",
                "run": "runs forward", "march": "marches with the knee lifted high"}[k]
        return {"torso": "moves " + ("backward" if k == "walk_backward" else "forward"),
                **dict.fromkeys(_ARMS, "swings with the steps"), **{p: step for p in both_legs}}
    if k == "side_step":
        return {"torso": f"moves sideways to the {a.side}", **dict.fromkeys(_LEGS, f"steps to the {a.side}")}
    if k in ("turn", "spin"):
        what = f"turns {a.variant} degrees to the {a.side}" if k == "turn" else f"spins around to the {a.side}"
        return {"torso": what, **dict.fromkeys(_LEGS, "steps around")}
    if k == "jump":
        where = " forward" if a.variant == "forward" else ""
        return {"torso": "rises and lands", **dict.fromkeys(_ARMS, "swings up"),
                **dict.fromkeys(_LEGS, f"jumps{where}{n}")}
    if k == "hop":
        (leg,) = _sides(a.side, "leg")
        return {"torso": "bounces", leg: f"hops{n}", _other(leg): "is held up off the floor"}
    if k == "squat":
        return {"torso": f"lowers and rises{n}", **dict.fromkeys(_ARMS, "reaches forward"),
                **dict.fromkeys(_LEGS, f"bends into a squat{n}")}
    if k == "sit_down":
        return {"torso": "lowers to sit down", **dict.fromkeys(_LEGS, "bends to sit down")}
    if k == "stand_up":
        return {"torso": "rises from sitting", **dict.fromkeys(_LEGS, "straightens to stand up")}
    if k == "jumping_jacks":
        return {"torso": "bounces", **dict.fromkeys(_ARMS, f"swings overhead{n}"),
                **dict.fromkeys(_LEGS, f"jumps apart and together{n}")}
    if k in ("wave", "raise", "arm_circle"):
        what = {"wave": f"waves{n}", "raise": "is raised overhead", "arm_circle": "circles"}[k]
        return dict.fromkeys(_sides(a.side, "arm"), what)
    if k in ("punch", "throw"):
        (arm,) = _sides(a.side, "arm")
        return {"torso": "twists", arm: f"punches forward{n}" if k == "punch" else "throws"}
    if k == "kick":
        (leg,) = _sides(a.side, "leg")
        return {leg: f"kicks forward{n}", _other(leg): "supports the body"}
    if k == "clap":
        return dict.fromkeys(_ARMS, f"claps{n}")
    if k == "bow":
        return {"torso": "bends forward in a deep bow" if a.variant == "deep" else "bends forward in a slight bow"}
    if k == "stretch":
        return {"torso": "stretches up", **dict.fromkeys(_ARMS, "stretches overhead")}
    if k == "lean":
        return {"torso": f"leans to the {a.side}"}
    raise ValueError(f"no part description for action kind {k!r}")


def _sequence(actions) -> dict[str, str]:
    """Each part's phrases over the actions, in order; repeated and idle steps are not repeated."""
    out = {}
    for part in PART_NAMES:
        steps: list[str] = []
        for a in actions:
            phrase = action_parts(a).get(part, IDLE[part])
            if not steps or steps[-1] != phrase:
                steps.append(phrase)
        moving = [s for s in steps if s != IDLE[part]] or [IDLE[part]]
        out[part] = ", then ".join(moving)
    return out


def interaction_parts(inter: Interaction) -> tuple[dict[str, str], dict[str, str]]:
    """(initiator's parts, other's parts) of an interaction; symmetric kinds give both the same."""
    k = inter.kind
    walk_up = {"torso": "moves forward", **dict.fromkeys(_LEGS, "walks forward")} if inter.approach else {}
    if k == "handshake":
        same = {**walk_up, "right_arm": "shakes hands"}
        return same, same
    if k == "high_five":
        same = {**walk_up, **dict.fromkeys(_sides(inter.side, "arm"), "slaps a high five")}
        return same, same
    if k == "hug":
        same = {**walk_up, "torso": "leans in to hug", **dict.fromkeys(_ARMS, "wraps around the partner")}
        return same, same
    if k == "push":
        return ({"torso": "leans into the push", **dict.fromkeys(_sides(inter.side, "arm"), "pushes forward")},
                {"torso": "is pushed backward", **dict.fromkeys(_ARMS, "lifts in defence"),
                 **dict.fromkeys(_LEGS, "staggers backward")})
    if k == "pull":
        return ({"right_arm": "grabs and pulls", **dict.fromkeys(_LEGS, "steps backward")},
                {"torso": "is pulled forward", "right_arm": "is pulled by the wrist",
                 **dict.fromkeys(_LEGS, "stumbles forward")})
    if k == "handover":
        return ({"right_arm" if inter.side == "right" else "left_arm": "hands over an object"},
                {"right_arm": "reaches out to take the object"})
    if k == "wave_each_other":
        return (dict.fromkeys(_sides(inter.side, "arm"), "waves"), {"torso": "turns to wave back"})
    if k == "bow_each_other":
        bow = action_parts(Action("bow", variant=inter.variant or "slight"))
        return bow, bow
    if k in ("approach", "walk_away", "follow"):
        gait = "runs" if inter.variant == "run" else "jogs" if inter.variant == "jog" else "walks"
        where = {"approach": "toward the partner", "walk_away": "away from the partner",
                 "follow": "after the partner"}[k]
        mover = {"torso": f"moves {where}", **dict.fromkeys(_ARMS, "swings with the steps"),
                 **dict.fromkeys(_LEGS, f"{gait} {where}")}
        if k == "follow":
            return mover, {"torso": "moves forward", **dict.fromkeys(_LEGS, f"{gait} forward")}
        return mover, {}
    if k == "punch":
        arm = f"{inter.side}_arm"
        return ({"torso": "twists", arm: f"punches at the partner{_times(inter.count)}"},
                {"torso": "flinches back", **dict.fromkeys(_ARMS, "guards the face")})
    if k == "kick":
        leg = f"{inter.side}_leg"
        return ({leg: "kicks the partner", _other(leg): "supports the body"},
                {"torso": "bends over", **dict.fromkeys(_ARMS, "guards the body")})
    if k == "pass_by":
        same = {"torso": "moves forward", **dict.fromkeys(_ARMS, "swings with the steps"),
                **dict.fromkeys(_LEGS, "walks past the partner")}
        return same, same
    raise ValueError(f"no part description for interaction kind {k!r}")


def _join(person: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """A person's interaction parts followed by a solo action's ("..., then ...")."""
    out = {}
    for part in PART_NAMES:
        steps = [p for p in (person.get(part), extra.get(part)) if p]
        out[part] = ", then ".join(steps) if steps else IDLE[part]
    return out


def part_descriptions(spec: tuple) -> tuple[str, ...]:
    """Five texts (``PART_NAMES`` order) for a single-person action sequence or a two-person spec."""
    if not isinstance(spec[0], Interaction):
        parts = _sequence(spec)
        return tuple(f"the {_LABEL[p]} {parts[p]}" for p in PART_NAMES)
    inter = spec[0]
    first, second = interaction_parts(inter)
    if inter.initiator == 1:     # the data's first person is the one who does not start it
        first, second = second, first
    people = [_join(first, {}), _join(second, {})]
    if len(spec) > 1 and isinstance(spec[1], Followup):
        follow = spec[1]
        people[follow.person] = _join(first if follow.person == 0 else second, action_parts(follow.action))
    out = []
    for part in PART_NAMES:
        a, b = people[0][part], people[1][part]
        if a == b:
            out.append(f"each person's {_LABEL[part]} {a}")
        else:
            out.append(f"the first person's {_LABEL[part]} {a}; the second person's {_LABEL[part]} {b}")
    return tuple(out)
