"""Caption grammar helpers: verb inflection, counts, subjects and sentence assembly.

Phrase templates are written in the base form with verbs in angle brackets ("<wave> with the left
hand twice"); ``inflect`` turns them into the third person ("waves with ...") or the gerund
("waving with ..."), which the sequence connectors need ("... before waving ...").
"""
from __future__ import annotations

import re

import numpy as np

_DOUBLE_FINAL = {"run", "jog", "hop", "step", "clap", "squat", "sit", "spin", "get", "put", "nod", "stop",
                 "sidestep", "grab", "slap", "hug", "drop", "trip"}
_IRREGULAR_3SG = {"do": "does", "go": "goes", "have": "has"}
_VERB = re.compile(r"<([a-z]+)>")

COUNT_ADVERBS = {1: ("once", "one time"), 2: ("twice", "two times"), 3: ("three times", "3 times"),
                 4: ("four times", "4 times")}
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}

# (subject, pronoun used when the sentence mentions them again)
SUBJECTS = (("a person", "the person"), ("someone", "the person"), ("a man", "he"), ("a woman", "she"),
            ("the person", "the person"), ("a figure", "the figure"), ("a human", "the person"))


def third_person(verb: str) -> str:
    if verb in _IRREGULAR_3SG:
        return _IRREGULAR_3SG[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def gerund(verb: str) -> str:
    if verb in _DOUBLE_FINAL:
        return verb + verb[-1] + "ing"
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def inflect(template: str, form: str) -> str:
    """form: '3sg' or 'ing'."""
    fn = third_person if form == "3sg" else gerund
    return _VERB.sub(lambda m: fn(m.group(1)), template)


def count_adverb(n: int, rng: np.random.Generator) -> str:
    return str(rng.choice(COUNT_ADVERBS[n]))


def count_noun(n: int, noun: str, plural: str | None = None) -> str:
    """2, 'wave' -> 'two waves'; 1 -> 'a single wave'."""
    if n == 1:
        return f"a single {noun}"
    return f"{_NUMBER_WORDS[n]} {plural or noun + 's'}"


def sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:].rstrip(".") + "."


def pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def distinct(make, rng: np.random.Generator, low: int = 2, high: int = 4, tries: int = 40) -> list[str]:
    """2-4 distinct captions from a random caption maker ``make(rng) -> str``."""
    want = int(rng.integers(low, high + 1))
    out: list[str] = []
    for _ in range(tries):
        c = make(rng)
        if c not in out:
            out.append(c)
        if len(out) == want:
            break
    return out


# Connectors for sequences. {S} subject, {P} its pronoun, {a1} third-person phrase, {g1} gerund.
SEQUENCE_2 = (
    "{S} {a1}, then {a2}",
    "{S} {a1} and then {a2}",
    "{S} {a1}, and after that {P} {a2}",
    "{S} {a1} before {g2}",
    "after {g1}, {S} {a2}",
    "{S} first {a1} and then {a2}",
    "{S} {a2} after {g1}",
)
SEQUENCE_3 = (
    "{S} {a1}, then {a2}, and finally {a3}",
    "{S} {a1}, {a2}, and then {a3}",
    "{S} first {a1}, then {a2}, and after that {a3}",
    "after {g1}, {S} {a2} and then {a3}",
    "{S} {a1} and {a2} before {g3}",
)
SINGLE = ("{S} {a1}", "{S} {a1}", "{S} is {g1}")


def join_actions(templates: list[str], rng: np.random.Generator) -> str:
    """One sentence describing phrase templates performed in this order by one subject."""
    subject, pronoun = pick(rng, SUBJECTS)
    n = len(templates)
    pattern = pick(rng, SINGLE if n == 1 else SEQUENCE_2 if n == 2 else SEQUENCE_3)
    fields = {"S": subject, "P": pronoun}
    for i, tpl in enumerate(templates, 1):
        fields[f"a{i}"] = inflect(tpl, "3sg")
        fields[f"g{i}"] = inflect(tpl, "ing")
    return sentence(pattern.format(**fields))
