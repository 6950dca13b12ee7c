"""Captions for two-person interactions.

Roles are named by position in the data ("the first person" = person 0 = the first 198 feature
columns), so "the first person pushes the second person" and its role-swapped twin are different
groups with different captions.  Symmetric interactions (handshake, hug, ...) name no roles.  Like
single-person captions, every caption states every attribute of the group key: the initiator,
the side, and whether the two first walk up to each other.
"""
from __future__ import annotations

import numpy as np

from .captions import action_phrases
from .grammar import count_adverb, count_noun, distinct, inflect, pick, sentence
from .interactions import Followup, Interaction

ROLE_STYLES = (("the first person", "the second person"), ("person one", "person two"),
               ("person A", "person B"))
PAIRS = ("two people", "two persons", "a pair of people", "the two people")
OBJECTS = ("a cup", "a box", "a bottle", "a book", "a bag", "something", "an object", "a phone")

_SYMMETRIC_VP = {
    "handshake": ("shake hands", "greet each other with a handshake", "shake right hands",
                  "exchange a handshake"),
    "high_five/right": ("give each other a high five with their right hands", "high five with the right hand",
                        "slap their right hands together in a high five"),
    "high_five/both": ("give each other a double high five with both hands", "high five with both hands",
                       "slap both hands together in a high five"),
    "hug": ("hug", "embrace each other", "give each other a hug", "hug each other tightly"),
}
_STANDING = ("{P} standing face to face {vp}", "{P} {vp} while standing in place",
             "facing each other without walking, {P} {vp}", "{P} stand still and {vp}")
_APPROACHING = ("{P} walk toward each other and {vp}", "{P} approach each other, then {vp}",
                "after walking up to each other, {P} {vp}", "{P} walk closer and {vp}")

_PASS_BY = ("{P} walk past each other", "{P} walk toward each other and pass by without stopping",
            "{P} cross paths while walking in opposite directions",
            "{P} walking in opposite directions pass each other")

_ASYMMETRIC = {
    "push": ("{A} pushes {B} with {hands}, and {B} stumbles backward", "{A} shoves {B} using {hands}",
             "{A} uses {hands} to push {B} away, and {B} staggers back",
             "{B} is pushed backward by {A}, who uses {hands}"),
    "pull": ("{A} grabs {B} by the hand and pulls them closer", "{A} pulls {B} forward by the wrist",
             "{A} takes {B}'s hand and pulls, and {B} stumbles forward", "{B} is pulled forward by {A}"),
    "handover": ("{A} hands {obj} to {B} with the {side} hand, and {B} takes it",
                 "using the {side} hand, {A} gives {obj} to {B}",
                 "{A} passes {obj} to {B} with their {side} hand",
                 "{B} takes {obj} that {A} holds out with the {side} hand"),
    "wave_each_other": ("{A} waves at {B} with {hand}, and {B} waves back",
                        "{A} waves {hand} to {B}, who waves back",
                        "after {A} waves with {hand}, {B} waves back",
                        "{A} greets {B} by waving {hand}, and {B} answers with a wave"),
    "bow_each_other/slight": ("{A} bows slightly to {B}, who bows slightly back",
                              "{A} makes a small bow and {B} returns a small bow",
                              "{A} gives {B} a slight bow, and {B} answers with a slight bow",
                              "the two people bow slightly to each other, {A} first"),
    "bow_each_other/deep": ("{A} bows deeply to {B}, who bows deeply back",
                            "{A} makes a deep bow and then {B} bows deeply in return",
                            "{A} gives {B} a deep bow, and {B} answers with a deep bow",
                            "the two people bow deeply to each other, {A} first"),
    "approach/walk": ("{A} walks toward {B}, who is standing still", "{A} walks up to {B} and stops in front of them",
                      "{A} approaches {B} at a walk", "while {B} stands still, {A} walks over to them"),
    "approach/run": ("{A} runs toward {B}, who is standing still", "{A} runs up to {B} and stops in front of them",
                     "{A} approaches {B} at a run", "while {B} stands still, {A} runs over to them"),
    "walk_away": ("{A} turns around and walks away from {B}", "{A} turns away from {B} and walks off",
                  "{A} leaves {B}, turning and walking away", "{B} stands still as {A} turns and walks away"),
    "follow/walk": ("{A} walks forward and {B} follows behind", "{B} follows {A}, walking behind them",
                    "{A} leads the way on foot while {B} walks after them", "{B} walks behind {A}, following them"),
    "follow/jog": ("{A} jogs forward and {B} jogs after them", "{B} follows {A}, jogging behind them",
                   "{A} leads the way at a jog while {B} jogs after them", "{B} jogs behind {A}, following them"),
    "punch": ("{A} punches {B} {count} with the {side} fist", "{A} throws {punches} at {B} with the {side} hand",
              "{A} hits {B} in the face {count} with the {side} hand",
              "{B} gets punched {count} by {A}'s {side} fist and staggers back"),
    "kick": ("{A} kicks {B} with the {side} leg", "{A} kicks {B} in the stomach using the {side} foot",
             "{B} is kicked by {A}'s {side} leg and doubles over",
             "with the {side} leg, {A} kicks {B}, who steps back"),
}


def _hand(side: str | None, rng) -> str:
    if side in ("both", None):
        return pick(rng, ("both hands", "both arms"))
    return pick(rng, (f"the {side} hand", f"their {side} hand"))


_FOLLOWUP = ("{core}, then {R} {vp}", "{core}, and then {R} {vp}", "{core}. After that, {R} {vp}",
             "{core}, and afterwards {R} {vp}")


def _one(inter: Interaction, rng: np.random.Generator, style: tuple[str, str]) -> str:
    """One caption of the interaction itself, without the final period."""
    pair = pick(rng, PAIRS)
    if inter.kind == "pass_by":
        return pick(rng, _PASS_BY).format(P=pair)
    if inter.initiator is None:
        key = inter.kind + (f"/{inter.side}" if inter.side else "")
        frame = pick(rng, _APPROACHING if inter.approach else _STANDING)
        return frame.format(P=pair, vp=pick(rng, _SYMMETRIC_VP[key]))
    a, b = style[inter.initiator], style[1 - inter.initiator]
    template = pick(rng, _ASYMMETRIC[inter.kind + (f"/{inter.variant}" if inter.variant else "")])
    count = inter.count or 1
    return template.format(A=a, B=b, side=inter.side, hand=_hand(inter.side, rng),
                           hands=_hand(inter.side, rng), obj=pick(rng, OBJECTS),
                           count=count_adverb(count, rng), punches=count_noun(count, "punch", "punches"))


def _with_followup(inter: Interaction, followup: Followup | None, rng: np.random.Generator) -> str:
    style = pick(rng, ROLE_STYLES)
    core = _one(inter, rng, style)
    if followup is None:
        return sentence(core)
    vp = inflect(pick(rng, action_phrases(followup.action, rng)), "3sg")
    return sentence(pick(rng, _FOLLOWUP).format(core=core, R=style[followup.person], vp=vp))


def interaction_captions(inter: Interaction, rng: np.random.Generator, followup: Followup | None = None
                         ) -> list[str]:
    """2-4 distinct captions for one two-person interaction (and what one of them does after)."""
    return distinct(lambda r: _with_followup(inter, followup, r), rng)
