"""Reading text files the way the official XTREME scripts do, with errors that name file:line.

The official scripts open files with Python's ``open(path)``: universal newlines
(``\\n``, ``\\r\\n`` and a lone ``\\r`` all end a line) and UTF-8. Every loader here
reads through :func:`read_lines`, so that

* a byte-order mark is dropped (``transformers.DataProcessor._read_tsv`` opens
  with ``utf-8-sig``; other readers would keep it inside the first sentence);
* bytes that are not UTF-8 give one :class:`~xtreme_tasks.data.DataError` naming
  the file and line, never a ``UnicodeDecodeError`` traceback;
* an empty file is refused with its name;
* the caller learns whether the last line ended with a newline (a file cut in the
  middle of a line looks truncated).
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from xtreme_tasks.data import DataError

#: the line ends of Python's universal-newlines mode (str.splitlines knows more, e.g. U+2028)
_NEWLINE = re.compile(r"\r\n|\r|\n")
REENCODE = "re-encode it as UTF-8 (e.g. `iconv -f <its encoding> -t UTF-8`)"


@dataclass
class TextLines:
    """The lines of one file, without their line ends."""

    path: Path
    lines: list[str]
    #: False when the last line has no line end (a file cut mid-line)
    ends_with_newline: bool


def read_text(path: Path, what: str) -> str:
    """The whole file as text: BOM dropped, bad bytes refused with file:line."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read the {what}: {err.strerror or err}") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = len(_NEWLINE.split(data[: err.start].decode("utf-8", "replace")))
        raise DataError(
            f"{path}:{line}: bytes {data[err.start:err.end]!r} are not UTF-8; the {what} must be UTF-8 text, "
            f"{REENCODE}"
        ) from None


def read_lines(path: Path, what: str, *, allow_empty: bool = False) -> TextLines:
    """Lines of a UTF-8 text file split as ``open()`` splits them; an empty file is refused."""
    text = read_text(path, what)
    if not text.strip() and not allow_empty:
        raise DataError(f"{path}: the {what} is empty; put the data in it or point XTREME_DATA_DIR elsewhere")
    lines = _NEWLINE.split(text)
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    return TextLines(path, lines, ends_with_newline)


def read_json(path: Path, what: str) -> Any:
    """A JSON file: BOM dropped; bad bytes or bad JSON refused with file:line."""
    text = read_text(path, what)
    if not text.strip():
        raise DataError(f"{path}: the {what} is empty; put the data in it or point XTREME_DATA_DIR elsewhere")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(
            f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg}); the {what} must be one JSON "
            f"document, re-download or re-extract it"
        ) from None


def read_json_lines(path: Path, what: str, shape: str, lines: TextLines | None = None) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSON-lines file (``lines``: already read);
    a line that is not JSON, or not a JSON object, is a DataError naming ``file:line`` and the ``shape``."""
    for number, line in enumerate((lines or read_lines(path, what)).lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg}); each line is one JSON object ({shape})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: a JSON {type(record).__name__}, not an object ({shape})")
        yield number, record
