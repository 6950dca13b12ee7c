"""Small fabricated corpora for data-pipeline tests."""
from __future__ import annotations

import numpy as np

from core.data.types import FeatureLayout, MotionItem, RawCorpus


def toy_raw(n: int = 40, dim: int = 6, seed: int = 0, splits=None) -> RawCorpus:
    rng = np.random.default_rng(seed)
    # Mirror = swap columns 0<->1 and negate column 2: a valid signed permutation for the tests.
    perm = (1, 0) + tuple(range(2, dim))
    sign = (1.0, 1.0, -1.0) + (1.0,) * (dim - 3)
    items = [MotionItem(f"m{i:03d}", rng.normal(size=(int(rng.integers(5, 30)), dim)).astype(np.float32),
                        [f"a person waves the left hand {i}", f"someone waves left {i}"],
                        group=f"g{i % 4}", source=f"toy/m{i:03d}.npy") for i in range(n)]
    return RawCorpus("toy", items, fps=20.0, layout=FeatureLayout("toy", dim, perm, sign), splits=splits)
