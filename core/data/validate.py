"""Generic checks on a loader's output, run once before anything is cached or trained.

Format-specific problems (a malformed BVH, a caption line without fields) are raised by the
loaders themselves; everything every format can get wrong is checked here, with the file named.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import DataError
from .types import RawCorpus


def validate_raw(raw: RawCorpus) -> None:
    """Raise one DataError for the first bad item: empty data, wrong shape, NaN/inf, bad captions."""
    if not raw.items:
        raise DataError(f"dataset {raw.name!r} contains no motions.",
                        fix="check the path and --format; `python -m core.data --data PATH` shows what is found.")
    # finite too: fps=inf passes "> 0" and makes every motion last 0 s
    if not (isinstance(raw.fps, (int, float)) and math.isfinite(raw.fps) and raw.fps > 0):
        raise DataError(f"dataset {raw.name!r} has fps={raw.fps!r}; it must be a finite positive number.",
                        fix="set fps in the dataset's meta.json or pass the option fps=20 (PATH:fps=20).")
    dim = raw.layout.dim
    seen: dict[str, str] = {}
    for item in raw.items:
        where = item.source or f"motion {item.id!r}"
        if item.id in seen:
            raise DataError(f"motion id {item.id!r} appears twice (also in {seen[item.id]}).", where,
                            "give every motion a unique id.")
        seen[item.id] = where
        x = item.features
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.number):
            raise DataError(f"motion {item.id!r} is not a numeric array (got {type(x).__name__}).", where)
        if x.ndim != 2:
            raise DataError(f"motion {item.id!r} has shape {x.shape}; expected 2 dimensions (frames, features).",
                            where, "save each motion as a (T, D) array.")
        if x.shape[0] == 0:
            raise DataError(f"motion {item.id!r} has zero frames.", where, "remove the file or re-export it.")
        if x.shape[1] == 0:
            raise DataError(f"motion {item.id!r} has shape {x.shape}: zero features per frame.", where,
                            "save each motion as a (T, D) array with D > 0.")
        if x.shape[1] != dim:
            raise DataError(f"motion {item.id!r} has D={x.shape[1]} features per frame but the dataset "
                            f"has D={dim} ({raw.layout.kind}).", where,
                            "all motions of one dataset must share the same feature layout.")
        if not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            raise DataError(f"motion {item.id!r} contains NaN/inf (first at frame {bad[0]}, feature {bad[1]}).",
                            where, "clean or drop this motion.")
        if not item.captions:
            raise DataError(f"motion {item.id!r} has no caption.", where, "give every motion at least one caption.")
        if item.parts is not None and (len(item.parts) != 5 or not all(isinstance(p, str) and p.strip()
                                                                      for p in item.parts)):
            raise DataError(f"motion {item.id!r} has part texts {item.parts!r}; expected 5 non-empty strings "
                            f"(torso, left arm, right arm, left leg, right leg).", where)
        for c in item.captions:
            if not isinstance(c, str) or not c.strip():
                raise DataError(f"motion {item.id!r} has an empty caption.", where,
                                "remove empty lines / rows from its captions.")
    if raw.splits is not None:
        for split, ids in raw.splits.items():
            missing = [i for i in ids if i not in seen]
            if missing:
                raise DataError(f"split {split!r} names {len(missing)} id(s) with no motion, e.g. {missing[:3]}.",
                                raw.meta.get("split_files", {}).get(split),
                                "remove these ids from the split file or add their motions.")
        names = sorted(raw.splits)
        for i, first in enumerate(names):
            for second in names[i + 1:]:
                both = sorted(set(raw.splits[first]) & set(raw.splits[second]))
                if both:   # an item scored on val/test that the model trained on: silently optimistic recall
                    raise DataError(f"{len(both)} motion id(s) are in both the {first!r} and {second!r} split, "
                                    f"e.g. {both[:3]}: they would leak between training and evaluation.",
                                    raw.meta.get("split_files", {}).get(second),
                                    f"remove them from one of the two split files ({first}, {second}).")
