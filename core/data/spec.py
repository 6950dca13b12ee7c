"""Parse a dataset spec: ``synthetic``, ``synthetic:n=3000,people=1``, ``PATH`` or ``PATH:max_motions=100``.

Every spec also takes the split options ``val=``, ``test=`` and ``split=`` (core/data/splits.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError
from .splits import SPLIT_OPTIONS, SplitSpec

SYNTHETIC = "synthetic"
SYNTHETIC_OPTIONS = {"n": int, "people": int, "seed": int, "fps": float}
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
            try:
                merged[key] = SYNTHETIC_OPTIONS[key](value)
            except (TypeError, ValueError):
                raise DataError(f"synthetic option {key}={value!r} is not a {SYNTHETIC_OPTIONS[key].__name__}.")
        if merged["n"] < 10:
            raise DataError(f"synthetic option n={merged['n']} is too small; use n >= 10.")
        if merged["people"] not in (1, 2):
            raise DataError(f"synthetic option people={merged['people']} is invalid; use 1 or 2.")
        if merged["fps"] <= 0:
            raise DataError(f"synthetic option fps={merged['fps']} must be positive.")
        return DataSpec(SYNTHETIC, merged, SYNTHETIC, SplitSpec.from_options(split_options, synthetic_split_defaults(merged["n"]), spec))
    split = SplitSpec.from_options(split_options, spec=spec)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"dataset path does not exist: {path}", fix="check --data, or use --data synthetic.")
    return DataSpec(str(path.resolve()), options, format, split)
