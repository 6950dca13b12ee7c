"""Lists of strings stored as two numpy arrays, so that Ray's object store shares them between trials.

A ``list[str]`` pickles every string in-band: each trial that unpickles a corpus gets its own copy of every id,
caption and part text (about 120 B of Python heap per string; HumanML3D's ~90k captions with their mirrored
forms and TMR's text-feature index are tens of MB per trial). ``StringTable`` keeps the UTF-8 bytes of all
strings in one ``uint8`` array and their boundaries in one ``int64`` array; both pickle out-of-band (protocol 5),
so a trial reading them from the object store maps the same pages as every other trial on the node, and a
string is decoded only when it is read.

  StringTable     N strings:                table[i] -> str
  RaggedStrings   N rows of 0..k strings:   rows[i] -> list[str], tuple[str, ...] | None, or str | None
"""
from __future__ import annotations

import bisect
from typing import Iterable, Iterator, Sequence

import numpy as np


class StringTable(Sequence[str]):
    """An immutable sequence of N strings: UTF-8 ``data`` (uint8) and ``offsets`` (int64, N + 1)."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        if data.dtype != np.uint8 or data.ndim != 1 or offsets.dtype != np.int64 or offsets.ndim != 1:
            raise ValueError(f"StringTable: expected uint8 data and int64 offsets, got {data.dtype}{data.shape} and "
                             f"{offsets.dtype}{offsets.shape}")
        if len(offsets) == 0 or int(offsets[-1]) != len(data):
            raise ValueError(f"StringTable: offsets end at {int(offsets[-1]) if len(offsets) else None}, data holds "
                             f"{len(data)} bytes")
        self.data, self.offsets = data, offsets

    @classmethod
    def from_strings(cls, strings: Iterable[str]) -> "StringTable":
        encoded = [s.encode("utf-8") for s in strings]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy() if encoded else np.zeros(0, np.uint8)
        return cls(data, offsets)

    @classmethod
    def of(cls, strings: "Sequence[str] | StringTable") -> "StringTable":
        return strings if isinstance(strings, StringTable) else cls.from_strings(strings)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"StringTable index {i} out of range ({len(self)} strings)")
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        raw, offsets = self.data.tobytes(), self.offsets.tolist()   # one pass: no per-item numpy calls
        for start, end in zip(offsets[:-1], offsets[1:]):
            yield raw[start:end].decode("utf-8")

    def __eq__(self, other) -> bool:
        if isinstance(other, StringTable):
            return np.array_equal(self.offsets, other.offsets) and np.array_equal(self.data, other.data)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None   # mutable-looking container semantics, like list

    def __repr__(self) -> str:
        head = ", ".join(repr(s) for s in self[:3])
        return f"StringTable([{head}{', ...' if len(self) > 3 else ''}], n={len(self)})"

    def __reduce__(self):
        # the arrays travel out-of-band (pickle protocol 5): zero-copy views in Ray's object store
        return StringTable, (np.asarray(self.data), np.asarray(self.offsets))

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.offsets.nbytes)

    def sorted_index(self, text: str) -> int:
        """Row of ``text`` in a table whose strings are sorted (Python's str order); -1 when absent."""
        i = bisect.bisect_left(self, text)
        return i if i < len(self) and self[i] == text else -1


class RaggedStrings(Sequence):
    """N rows of strings, row i = ``strings[row_offsets[i]:row_offsets[i + 1]]``.

    ``kind`` says what a row reads as: "list" (a list of captions), "tuple" (a tuple, None when empty: part
    texts) or "optional" (the row's one string, None when empty: label groups).
    """

    __slots__ = ("strings", "row_offsets", "kind")
    KINDS = ("list", "tuple", "optional")

    def __init__(self, strings: StringTable, row_offsets: np.ndarray, kind: str = "list"):
        if kind not in self.KINDS:
            raise ValueError(f"RaggedStrings kind {kind!r}; expected one of {self.KINDS}")
        if row_offsets.dtype != np.int64 or len(row_offsets) == 0 or int(row_offsets[-1]) != len(strings):
            raise ValueError("RaggedStrings: row_offsets must be int64 and end at len(strings)")
        self.strings, self.row_offsets, self.kind = strings, row_offsets, kind

    @classmethod
    def from_rows(cls, rows: Iterable, kind: str = "list") -> "RaggedStrings":
        """Rows as lists/tuples of strings; with kind "tuple" / "optional" a row may be None, and with "optional"
        a row is one string."""
        flat: list[str] = []
        counts: list[int] = []
        for row in rows:
            if row is None:
                items: Sequence[str] = ()
            elif kind == "optional":
                items = (row,)
            else:
                items = row
            flat.extend(items)
            counts.append(len(items))
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(StringTable.from_strings(flat), offsets, kind)

    @classmethod
    def of(cls, rows, kind: str = "list") -> "RaggedStrings":
        if isinstance(rows, RaggedStrings):
            return rows
        return cls.from_rows(rows, kind)

    def __len__(self) -> int:
        return len(self.row_offsets) - 1

    def _row(self, i: int) -> list[str]:
        return [self.strings[j] for j in range(int(self.row_offsets[i]), int(self.row_offsets[i + 1]))]

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"RaggedStrings index {i} out of range ({len(self)} rows)")
        row = self._row(i)
        if self.kind == "list":
            return row
        if self.kind == "tuple":
            return tuple(row) if row else None
        return row[0] if row else None

    def __iter__(self):
        strings = iter(self.strings)
        counts = np.diff(self.row_offsets).tolist()
        for n in counts:
            row = [next(strings) for _ in range(n)]
            if self.kind == "list":
                yield row
            elif self.kind == "tuple":
                yield tuple(row) if row else None
            else:
                yield row[0] if row else None

    def tolist(self) -> list:
        return list(self)

    def __eq__(self, other) -> bool:
        if isinstance(other, RaggedStrings):
            return (self.kind == other.kind and np.array_equal(self.row_offsets, other.row_offsets)
                    and self.strings == other.strings)
        if isinstance(other, (list, tuple)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None

    def __bool__(self) -> bool:
        return len(self) > 0

    def __repr__(self) -> str:
        return f"RaggedStrings(kind={self.kind!r}, rows={len(self)}, strings={len(self.strings)})"

    def __reduce__(self):
        return RaggedStrings, (self.strings, np.asarray(self.row_offsets), self.kind)

    @property
    def nbytes(self) -> int:
        return self.strings.nbytes + int(self.row_offsets.nbytes)

    def any_row(self) -> bool:
        """Whether any row holds a string (e.g. whether any motion has part texts)."""
        return len(self.strings) > 0
