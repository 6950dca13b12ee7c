import numpy as np
import pytest

from core.data.build import build_corpus
from core.data.errors import DataError

from .helpers import toy_raw


def _bad(mutate, match):
    raw = toy_raw(8)
    mutate(raw)
    with pytest.raises(DataError, match=match) as e:
        build_corpus(raw)
    return str(e.value)


def test_nan_names_file_and_frame():
    def m(raw):
        raw.items[3].features[2, 1] = np.nan
    msg = _bad(m, "NaN/inf")
    assert "toy/m003.npy" in msg and "frame 2" in msg


def test_inf():
    _bad(lambda raw: raw.items[0].features.__setitem__((0, 0), np.inf), "NaN/inf")


def test_wrong_ndim():
    def m(raw):
        raw.items[1].features = raw.items[1].features[None]
    assert "m001" in _bad(m, "expected 2 dimensions")


def test_inconsistent_dim():
    def m(raw):
        raw.items[2].features = np.zeros((5, 7), np.float32)
    _bad(m, "D=7 features per frame but the dataset has D=6")


def test_zero_length():
    _bad(lambda raw: setattr(raw.items[4], "features", np.zeros((0, 6), np.float32)), "zero frames")


def test_empty_caption_and_no_caption():
    _bad(lambda raw: setattr(raw.items[5], "captions", ["ok", "   "]), "empty caption")
    _bad(lambda raw: setattr(raw.items[5], "captions", []), "no caption")


def test_duplicate_id():
    _bad(lambda raw: setattr(raw.items[6], "id", raw.items[0].id), "appears twice")


def test_split_id_without_motion():
    raw = toy_raw(8, splits={"train": ["m000", "m001", "m002", "m003"], "val": ["m004", "missing_7"]})
    raw.meta["split_files"] = {"val": "data/val.txt"}
    with pytest.raises(DataError, match="missing_7") as e:
        build_corpus(raw)
    assert "data/val.txt" in str(e.value)


def test_empty_dataset():
    raw = toy_raw(3)
    raw.items = []
    with pytest.raises(DataError, match="no motions"):
        build_corpus(raw)
