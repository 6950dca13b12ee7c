"""Bandai-Namco-Research-Motiondataset (BVH + content/style labels) -> captioned motions.

Layout: ``data/<name>.bvh`` + ``data/<name>.json`` = ``{"content": i, "style": j}`` (0-based
indices into ``cfg/content_label.txt`` / ``cfg/style_label.txt``, one label per line such as
``dataset-2_walk-turn-left`` / ``dataset-2_elderly``).  The clips are 30 fps, centimetres, +Y up,
with a static ``joint_Root`` above ``Hips``; ``bvh.py`` handles all of that generically (Hips is
the pelvis, units and up axis are detected, 30 -> 20 fps).

Each clip gets three deterministic captions phrased from its labels, and the label group
``"<content>|<style>"`` (e.g. ``"walk-turn-left|elderly"``): clips of one group are equivalent
for retrieval, which equivalence-aware evaluation needs.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from ..errors import DataError
from ..features import JOINTS22_LAYOUT
from ..textfile import read_text_utf8
from ..types import MotionItem, RawCorpus
from .bvh import TARGET_FPS, convert_many
from .parallel import default_workers

# content -> (verb phrase, bare verb, detail clause or "", -ing phrase)
_CONTENT_PHRASES = {
    "walk": ("walks forward", "walks", "moving straight ahead", "walking forward"),
    "walk-turn-left": ("walks and turns left", "walks", "turning to the left", "walking and turning left"),
    "walk-turn-right": ("walks and turns right", "walks", "turning to the right", "walking and turning right"),
    "run": ("runs forward", "runs", "moving straight ahead", "running forward"),
    "wave-both-hands": ("waves both hands", "waves", "using both hands", "waving both hands"),
    "wave-left-hand": ("waves the left hand", "waves", "using the left hand", "waving the left hand"),
    "wave-right-hand": ("waves the right hand", "waves", "using the right hand", "waving the right hand"),
    "raise-up-both-hands": ("raises both hands up", "raises the arms", "lifting both hands",
                            "raising both hands up"),
    "raise-up-left-hand": ("raises the left hand up", "raises a hand", "lifting the left hand",
                           "raising the left hand up"),
    "raise-up-right-hand": ("raises the right hand up", "raises a hand", "lifting the right hand",
                            "raising the right hand up"),
}
# style -> (subject noun phrase, adverbial)
_STYLE_PHRASES = {
    "active": ("an energetic person", "energetically"),
    "elderly": ("an elderly person", "in an elderly way"),
    "exhausted": ("an exhausted person", "in an exhausted way"),
    "feminine": ("a feminine person", "in a feminine way"),
    "masculine": ("a masculine person", "in a masculine way"),
    "normal": ("a person", "normally"),
    "youthful": ("a youthful person", "in a youthful way"),
}


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and len(verb) > 1 and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _ing(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _content_phrases(content: str) -> tuple[str, str, str, str]:
    if content in _CONTENT_PHRASES:
        return _CONTENT_PHRASES[content]
    words = content.replace("_", "-").split("-")            # unknown label: "kick-left" -> "kicks left"
    verb, rest = words[0], " ".join(words[1:])
    return (f"{_third_person(verb)} {rest}".strip(), _third_person(verb), "", f"{_ing(verb)} {rest}".strip())


def _style_phrases(style: str) -> tuple[str, str]:
    if style in _STYLE_PHRASES:
        return _STYLE_PHRASES[style]
    words = style.replace("_", " ").replace("-", " ")
    article = "an" if words[:1] in "aeiou" else "a"
    return f"{article} {words} person", f"in a {words} way"


def label_captions(content: str, style: str) -> list[str]:
    """Three phrasings of one (content, style) pair, e.g. for ("walk-turn-left", "elderly"):
    'an elderly person walks and turns left', 'someone walks, turning to the left, in an elderly
    way', 'a person is walking and turning left in an elderly way'."""
    vp, verb, detail, ing = _content_phrases(content)
    subject, adverbial = _style_phrases(style)
    second = f"someone {verb}, {detail}, {adverbial}" if detail else f"someone {vp}, {adverbial}"
    return [f"{subject} {vp}", second, f"a person is {ing} {adverbial}"]


def _strip_prefix(label: str) -> str:
    return re.sub(r"^dataset-\d+_", "", label)


def _read_labels(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("label file is missing.", where=path,
                        fix="keep the dataset's cfg/ folder (content_label.txt and style_label.txt) next to data/.")
    labels = [line.strip() for line in read_text_utf8(path, "labels").splitlines()]
    if not labels or not all(labels):
        raise DataError("label file has empty lines or no labels.", where=path,
                        fix="one label per line, no blank lines.")
    return [_strip_prefix(label) for label in labels]


def _clip_labels(json_path: Path, contents: list[str], styles: list[str]) -> tuple[str, str]:
    if not json_path.is_file():
        raise DataError("the label file of this clip is missing.", where=json_path,
                        fix='every data/<name>.bvh needs data/<name>.json = {"content": i, "style": j}.')
    try:
        meta = json.loads(read_text_utf8(json_path, "labels"))
        c, s = meta["content"], meta["style"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"expected {{\"content\": i, \"style\": j}} ({type(e).__name__}: {e}).",
                        where=json_path) from None
    for key, value, labels in (("content", c, contents), ("style", s, styles)):
        if not isinstance(value, int) or not 0 <= value < len(labels):
            raise DataError(f"{key}={value!r} is not an index into the {len(labels)} {key} labels.",
                            where=json_path, fix=f"use a 0-based index into cfg/{key}_label.txt.")
    return contents[c], styles[s]


def load_bandai(root: Path, options: dict) -> RawCorpus:
    """Load a Bandai-Namco motion dataset folder (the one holding cfg/ and data/).

    Options: max_motions (first N clips in sorted order), workers (processes for BVH conversion,
    default: all CPUs of this process), fps (target frame rate, default 20).
    """
    root = Path(root)
    contents = _read_labels(root / "cfg" / "content_label.txt")
    styles = _read_labels(root / "cfg" / "style_label.txt")
    files = sorted((root / "data").glob("*.bvh"))
    if not files:
        raise DataError("no .bvh clips under data/.", where=root / "data",
                        fix="extract the dataset's data.zip into data/.")
    if options.get("max_motions"):
        files = files[: int(options["max_motions"])]
    labels = [_clip_labels(f.with_suffix(".json"), contents, styles) for f in files]
    t0 = time.perf_counter()
    converted = convert_many(files, options)
    seconds = time.perf_counter() - t0
    items = [MotionItem(f.stem, feats, label_captions(content, style), f"{content}|{style}", str(f))
             for f, (feats, _), (content, style) in zip(files, converted, labels)]
    frames = int(sum(len(x) for x, _ in converted))
    return RawCorpus(
        name=root.name, items=items, fps=float(options.get("fps", TARGET_FPS)), layout=JOINTS22_LAYOUT,
        splits=None,
        meta={"format": "bandai", "root": str(root), "clips": len(items),
              "source_frames": int(sum(n for _, n in converted)), "frames": frames,
              "mean_length_frames": round(frames / max(len(items), 1), 1),
              "contents": contents, "styles": styles,
              "convert_seconds": round(seconds, 3), "clips_per_second": round(len(items) / max(seconds, 1e-9), 1),
              "workers": int(options.get("workers") or default_workers())},
    )
