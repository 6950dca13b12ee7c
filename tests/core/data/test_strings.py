"""String tables: lists of strings as two numpy arrays, so that Ray's object store shares them between trials."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from core.data.strings import RaggedStrings, StringTable

TEXTS = ["a person walks forward", "", "Ünïcødé: 走る人", "a person walks forward", "x" * 500]


def test_a_table_reads_back_every_string_in_order():
    table = StringTable.from_strings(TEXTS)
    assert len(table) == len(TEXTS) and list(table) == TEXTS and table == TEXTS
    assert [table[i] for i in range(len(TEXTS))] == TEXTS and table[-1] == TEXTS[-1] and table[1:3] == TEXTS[1:3]
    with pytest.raises(IndexError):
        table[len(TEXTS)]
    assert StringTable.from_strings([]) == [] and len(StringTable.from_strings([])) == 0


def test_sorted_lookup_matches_a_dict():
    unique = sorted(set(TEXTS) | {"b", "aa", "zz"})
    table = StringTable.from_strings(unique)
    for row, text in enumerate(unique):
        assert table.sorted_index(text) == row
    for missing in ("", "a", "a person", "zzz", "c"):
        assert table.sorted_index(missing) == (unique.index(missing) if missing in unique else -1)


@pytest.mark.parametrize("kind, rows", [
    ("list", [["one", "two"], ["three"], [], ["four", "", "five"]]),
    ("tuple", [("t", "l", "r", "a", "b"), None, ("1", "2", "3", "4", "5")]),
    ("optional", ["walk", None, "run", None]),
])
def test_ragged_rows_read_back_as_given(kind, rows):
    ragged = RaggedStrings.from_rows(rows, kind)
    assert len(ragged) == len(rows) and list(ragged) == rows and [ragged[i] for i in range(len(rows))] == rows
    assert ragged == rows and ragged.tolist() == rows


def test_tables_pickle_out_of_band_as_read_only_views():
    """Protocol 5 (what Ray's object store uses): the bytes travel as buffers, not inside the pickle; a reader
    gets views of the buffers it was handed, never copies."""
    ragged = RaggedStrings.from_rows([["caption %d" % i] * 3 for i in range(2000)])
    buffers: list[pickle.PickleBuffer] = []
    inband = pickle.dumps(ragged, protocol=5, buffer_callback=buffers.append)
    assert len(inband) < 1000 < ragged.nbytes and len(buffers) == 3
    stored = [memoryview(bytes(b.raw())) for b in buffers]   # read-only, like the object store's
    again = pickle.loads(inband, buffers=stored)
    assert again == ragged and not again.strings.data.flags.writeable
    assert any(np.shares_memory(again.strings.data, np.frombuffer(s, np.uint8)) for s in stored)
