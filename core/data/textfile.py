"""Reading a dataset's text files (captions, split lists, JSON) the same way in every loader.

Datasets come from many tools: Windows editors add a UTF-8 BOM and CRLF line ends, spreadsheets
export Latin-1 or UTF-16.  One reader decodes them all alike, so an id is never '\\ufeff000001'
in one loader and '000001' in another, and a file that is not UTF-8 is one DataError naming the
file, the line and the fix instead of a UnicodeDecodeError traceback.
"""
from __future__ import annotations

from pathlib import Path

from .errors import DataError


def read_text_utf8(path: Path, what: str = "captions") -> str:
    """The file's text: UTF-8, a BOM dropped, CRLF/CR line ends made '\\n'.

    ``what`` names the content in the UTF-16 message ("captions must be UTF-8").
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read this file ({e.strerror or type(e).__name__}).", where=path,
                        fix="check that it is a readable file.") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"the file is UTF-16 text; {what} must be UTF-8.", where=path,
                        fix="save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"line {line}: byte 0x{data[e.start]:02x} is not UTF-8 (byte offset {e.start}; "
                        "a Latin-1 or Windows-1252 export?).", where=path,
                        fix="save it as UTF-8 (e.g. iconv -f LATIN1 -t UTF-8).") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_id_list(path: Path) -> list[str]:
    """The ids of a split file (one per non-empty line), refusing an id listed twice.

    A repeated id would silently oversample that motion in training (or count it twice in a
    recall), so it is an error, not something to de-duplicate quietly.
    """
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for n, line in enumerate(read_text_utf8(path, "split files").split("\n"), 1):
        motion_id = line.strip()
        if not motion_id:
            continue
        if motion_id in first_line:
            raise DataError(f"id {motion_id!r} is listed twice, on lines {first_line[motion_id]} and {n}.",
                            where=path, fix="list every id once in a split file (delete one of the two lines).")
        first_line[motion_id] = n
        ids.append(motion_id)
    return ids
