"""Which exceptions are the user's input problems (shown as one clear line, exit 2)."""

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
