"""Which exceptions are the user's input problems (shown as one clear line, exit 2), and
how such a line is made safe and short: text from a checkpoint (a key, a file name) may
carry terminal escapes, and YAML errors span several lines."""

from __future__ import annotations

import re

#: ANSI escape sequences (CSI/OSC/single-character), then any other control character but newline
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def console_text(text: str) -> str:
    """``text`` without terminal escapes or control characters (newlines kept; tabs become spaces)."""
    return _CONTROL.sub(lambda m: " " if m.group() == "\t" else "\ufffd", _ANSI.sub("", text))


def is_user_error(err: BaseException) -> bool:
    from xtreme_tasks.data import DataError

    names = {cls.__name__ for cls in type(err).__mro__}
    return isinstance(err, (DataError, FileNotFoundError)) or bool(
        names & {"CheckpointError", "LabelMismatchError", "SystemsError", "ValidationError", "ReportError", "DemoError", "PreflightError", "ModelArgsError", "OutputError"}
    )


def yaml_error_line(exc: BaseException) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's message ends in a
    copy of the line and a ``^`` marker on a line of their own)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        context = getattr(exc, "context", None)
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f" ({context})" if context else "")
    return " ".join(line for line in str(exc).split("\n") if line.strip() and line.strip() != "^").strip()
