"""Escaping for every place a report prints text it did not write itself.

System names, family names and error details come from files other people wrote
(``checkpoints.yaml``, a checkpoint's state-dict keys, results JSON). Each output
format has its own way to turn such text into something active, so each gets one
function here, applied by the writer, never by the caller:

* CSV: a cell starting with ``= + - @`` (or a tab / carriage return) is a formula in
  Excel, LibreOffice and Google Sheets; OWASP's advice is to prefix it with ``'``.
  Real numbers (``-1.5``) stay numbers.
* Markdown: raw HTML (``<script>``), links (``[x](javascript:...)``) and autolinks
  (``<javascript:...>``) need ``<`` or ``[``; those, ``|`` (table cells), ``&`` and the
  backslash itself are backslash-escaped, which CommonMark renders as the plain character.
* Console: control characters and ANSI escape sequences (which can rewrite what a
  terminal shows, or set its title), and Unicode bidi overrides, are dropped.
* matplotlib text: ``$...$`` starts mathtext (and a malformed one raises); ``\\$`` is a
  plain dollar sign.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell that no spreadsheet evaluates: text starting with a formula
    character gets a leading ``'``; numbers and numeric text (``-1.5``) are left as they are."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _NUMBER.fullmatch(value.strip()):
        return value
    return "'" + value


# ANSI CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-character ESC sequences
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
# C0/C1 controls and DEL, plus the bidi overrides and isolates ("Trojan source")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def console_text(text: str, one_line: bool = True) -> str:
    """``text`` without ANSI escape sequences, control characters or bidi overrides; tabs
    become spaces, and so do newlines when ``one_line`` (else lines stay lines)."""
    text = _ANSI.sub("", str(text)).replace("\r\n", "\n").replace("\t", " ").replace("\r", " ")
    if one_line:
        text = text.replace("\n", " ")
    return "\n".join(_CONTROL.sub("", line) for line in text.split("\n"))


_MARKDOWN_SPECIAL = re.compile(r"([\\<>\[|&])")


def markdown_text(text: str) -> str:
    """``text`` as one Markdown table cell / list item that renders as plain text:
    no HTML, no links, no cell break, no line break."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", console_text(text))


def mathtext_literal(text: str) -> str:
    """``text`` for a matplotlib label: every ``$`` literal (no mathtext parsing)."""
    return str(text).replace("$", r"\$")


def natural_key(text: str) -> tuple:
    """Sort key that orders the numbers inside names by value: ``tiny32`` before ``tiny128``."""
    parts = re.split(r"(\d+)", str(text).casefold())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")
