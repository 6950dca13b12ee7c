"""Left/right words of a caption, swapped: the text half of mirror augmentation (the motion half is
``FeatureLayout.mirror``). Its own module because both the corpus (``Corpus.all_texts``) and the
augmentation need it, and the augmentation needs the corpus types."""
from __future__ import annotations

import re

_SWAPS = {
    "left": "right", "right": "left", "lefthand": "righthand", "righthand": "lefthand",
    "clockwise": "counterclockwise", "counterclockwise": "clockwise",
    "anticlockwise": "clockwise", "counter-clockwise": "clockwise",
}
_WORD = re.compile(r"\b(counter-clockwise|counterclockwise|anticlockwise|clockwise|lefthand|righthand|left|right)\b",
                   re.IGNORECASE)


def _match_case(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def mirror_caption(text: str) -> str:
    """Swap left/right (and clockwise/counterclockwise) words, keeping capitalization."""
    return _WORD.sub(lambda m: _match_case(_SWAPS[m.group(0).lower()], m.group(0)), text)
