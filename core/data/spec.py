"""Parse a dataset spec: ``synthetic``, ``synthetic:n=3000,people=1``, ``PATH`` or ``PATH:max_motions=100``.

Every spec also takes the split options ``val=``, ``test=`` and ``split=`` (core/data/splits.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError
from .splits import SPLIT_OPTIONS, SplitSpec

SYNTHETIC = "synthetic"
SYNTHETIC_OPTIONS = ("n", "people", "seed", "fps")
# The default embedded corpus: two people (the users' own case).  1,200 train motions keep the README main
# job (search + refit + ensemble) near 10 minutes on 2 CPU cores.  Test holds 700 motions: the paired 95 % CI
# of two models' test R@1 difference measured +-2.6 points on 500 (bench/ci_width.py), and test is encoded
# once per ensemble member; val holds 500 because every epoch of every trial encodes it.
SYNTHETIC_DEFAULTS = {"n": 2400, "people": 2, "seed": 0, "fps": 20.0}
SYNTHETIC_SPLIT = {"val": 500, "test": 700}   # of n = 2400; a smaller n keeps these shares (n=200: 42 / 58 / 100)


def synthetic_split_defaults(n: int) -> dict[str, int]:
    total = SYNTHETIC_DEFAULTS["n"]
    return {k: min(v, round(n * v / total)) for k, v in SYNTHETIC_SPLIT.items()}


@dataclass(frozen=True)
class DataSpec:
    source: str                                  # "synthetic" or a filesystem path
    options: dict = field(default_factory=dict)  # parsed k=v options (split options excluded)
    format: str | None = None                    # loader name for paths; None = auto-detect
    split: SplitSpec = field(default_factory=SplitSpec)   # val=/test=/split= (core/data/splits.py)

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC

    @property
    def path(self) -> Path:
        return Path(self.source).expanduser()


# Every numeric option of a spec (synthetic or loader), with its type and range, checked in one place
# so that `int("abc")`, `fps=0`, `fps=inf` or `max_motions=-1` (a negative slice that silently drops
# motions) are one DataError instead of a traceback or a wrong corpus.
# name: (whole number?, lowest, highest or None, lowest allowed?, example)
OPTION_RANGES = {
    "n": (True, 1, None, True, "3000"),
    "people": (True, 1, 2, True, "2"),
    "seed": (True, 0, None, True, "0"),
    "fps": (False, 0, None, False, "20"),
    "target_fps": (False, 0, None, False, "20"),
    "max_motions": (True, 1, None, True, "100"),
    "workers": (True, 1, None, True, "4"),
}
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False,
               "1": True, "0": False}


def _range_text(whole: bool, lo, hi, lo_ok: bool) -> str:
    kind = "a whole number" if whole else "a finite number"
    if hi is not None:
        return f"{lo} or {hi}" if whole and hi == lo + 1 else f"{kind} from {lo} to {hi}"
    return f"{kind} {'>=' if lo_ok else '>'} {lo}"


def check_option(name: str, value, prefix: str = "", where=None):
    """The option's value, type- and range-checked (numbers in OPTION_RANGES, allow_missing a boolean).

    Values come from ``_parse_value`` (spec strings) or from Python callers; a bool is not a number
    here (``max_motions=true`` is a mistake, not 1) and a float is a whole number only when integral
    (``people=1.5`` used to become 1 without a word).  Other options pass through unchanged.
    """
    if name == "allow_missing":
        word = str(value).strip().lower()
        if word not in _BOOL_WORDS:
            raise DataError(f"{prefix}option {name}={value!r} is invalid; it must be true or false.",
                            where=where, fix=f"write {name}=true or {name}=false.")
        return _BOOL_WORDS[word]
    if name not in OPTION_RANGES:
        return value
    whole, lo, hi, lo_ok, example = OPTION_RANGES[name]
    number = _parse_value(value.strip()) if isinstance(value, str) else value
    # (ints are never inf/NaN, and math.isfinite overflows on a 400-digit one)
    ok = (isinstance(number, int) and not isinstance(number, bool)) or (isinstance(number, float)
                                                                         and math.isfinite(number))
    if ok and whole and isinstance(number, float):
        ok = number.is_integer()
        number = int(number) if ok else number
    if ok:
        ok = (number >= lo if lo_ok else number > lo) and (hi is None or number <= hi)
    if not ok:
        raise DataError(f"{prefix}option {name}={value!r} is invalid; it must be {_range_text(whole, lo, hi, lo_ok)}.",
                        where=where, fix=f"write e.g. {name}={example}.")
    return number if whole else float(number)


def _parse_value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return text


def parse_spec(spec: str, format: str | None = None) -> DataSpec:
    """Split ``SOURCE[:k=v,k=v]`` and check synthetic options; paths are checked by the loaders."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("empty dataset spec.", fix="pass --data synthetic or --data PATH.")
    source, options = spec.strip(), {}
    head, sep, tail = source.rpartition(":")
    if sep and head and tail and all("=" in part for part in tail.split(",")):
        source = head
        for part in tail.split(","):
            key, _, value = part.partition("=")
            if not key.strip():
                raise DataError(f"dataset spec {spec!r} has an option without a name ({part!r}).")
            options[key.strip()] = _parse_value(value.strip())
    split_options = {k: options.pop(k) for k in list(options) if k in SPLIT_OPTIONS}
    if source == SYNTHETIC:
        if format not in (None, SYNTHETIC):
            raise DataError(f"--format {format!r} does not apply to the synthetic corpus.",
                            fix="drop --format or pass a path with --data.")
        unknown = set(options) - set(SYNTHETIC_OPTIONS)
        if unknown:
            raise DataError(f"unknown synthetic option(s) {sorted(unknown)} in {spec!r}; "
                            f"known: {sorted(SYNTHETIC_OPTIONS)}.")
        merged = dict(SYNTHETIC_DEFAULTS)
        for key, value in options.items():
            merged[key] = check_option(key, value, prefix="synthetic ")
        if merged["n"] < 10:
            raise DataError(f"synthetic option n={merged['n']} is too small; use n >= 10.")
        return DataSpec(SYNTHETIC, merged, SYNTHETIC, SplitSpec.from_options(split_options, synthetic_split_defaults(merged["n"]), spec))
    split = SplitSpec.from_options(split_options, spec=spec)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"dataset path does not exist: {path}", fix="check --data, or use --data synthetic.")
    # Checked here too (not only in load_raw) so a bad value fails before the dataset is hashed; the
    # synthetic-only names are left to load_raw, which calls them unknown for a path.
    options = {k: v if k in SYNTHETIC_OPTIONS and k != "fps" else check_option(k, v, where=path)
               for k, v in options.items()}
    return DataSpec(str(path.resolve()), options, format, split)
