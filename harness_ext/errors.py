"""Which exceptions are the user's input problems (shown as one clear line, exit 2), and
YAML errors put in one line (PyYAML's span several, ending in a ``^`` marker). Terminal
escapes are removed from error lines by :func:`harness_ext.reports.escape.console_text`."""

from __future__ import annotations


class ModelArgsError(ValueError):
    """Bad ``--model_args`` (one line: which key, what is wrong, the fix)."""


USER_ERRORS = frozenset({
    "CheckpointError", "LabelMismatchError", "SystemsError", "ValidationError", "ReportError", "DemoError",
    "PreflightError", "ModelArgsError", "OutputError", "TaskNameError", "ResultsNotSavedError",
})


def is_user_error(err: BaseException) -> bool:
    from xtreme_tasks.data import DataError

    names = {cls.__name__ for cls in type(err).__mro__}
    return isinstance(err, (DataError, FileNotFoundError)) or bool(names & USER_ERRORS)


def yaml_error_line(exc: BaseException) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's message ends in a
    copy of the line and a ``^`` marker on a line of their own)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        context = getattr(exc, "context", None)
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f" ({context})" if context else "")
    return " ".join(line for line in str(exc).split("\n") if line.strip() and line.strip() != "^").strip()
