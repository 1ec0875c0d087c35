"""A run gives the numbers asked for or fails loudly, in seconds.

lm-eval itself exits 0 after a run that did less than asked: tasks whose data could not be
read (we leave them out so the other tasks can be built), a results file it could not
write (it only logs a warning). These checks close those gaps, for the ``lm_eval`` command,
``xtreme-eval run`` and ``harness_ext.api.evaluate`` alike:

* before lm-eval indexes its ~15k tasks (15-20 s): misspelt XTREME task names and unknown
  ``--model_args`` keys are one line naming the closest valid names (:func:`check_cli_args`);
* before the first forward pass: selected tasks without data stop the run (:func:`check_data`),
  unless partial runs are asked for on purpose: ``allow_missing=true`` in ``--model_args``
  (``xtreme_allow_missing=true`` under other lm-eval models) or ``XTREME_ALLOW_MISSING=1``;
  such a run's results JSON then carries ``xtreme_partial`` (:data:`PARTIAL_KEY`);
* after the run: the results file (and samples files) exist and parse (:func:`check_saved`).

The start-up hook (``harness_ext._autoload``) wires these into lm-eval; under the ``lm_eval``
command our errors print as one ``error:`` line (exit 2) instead of a traceback.
"""

from __future__ import annotations

import difflib
import errno
import fnmatch
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from harness_ext.errors import ModelArgsError
from xtreme_tasks.data import DataError

#: key of the results JSON that marks a partial run: ``{"missing_tasks": {leaf: reason}, "switch": ...}``
PARTIAL_KEY = "xtreme_partial"
ALLOW_MISSING_ENV = "XTREME_ALLOW_MISSING"
ALLOW_MISSING_ARG = "allow_missing"


class MissingDataError(DataError):
    """Selected tasks have no data (and partial runs were not asked for)."""


class TaskNameError(ValueError):
    """A task name that names no task (one line with the closest XTREME names)."""


class ResultsNotSavedError(RuntimeError):
    """The run finished but its results (or samples) file was not written whole."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.errno = code


def closest(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """The ``n`` valid names closest to ``name`` (difflib), best first."""
    return difflib.get_close_matches(str(name), list(valid), n=n, cutoff=0.5)


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    near = closest(name, valid)
    return f"; did you mean {' or '.join(near)}?" if near else ""


# ----------------------------------------------------------------------------- task names


def xtreme_names() -> list[str]:
    """Every task and group name this plugin defines (leaves of every language included)."""
    from harness_ext.task_list import group_names
    from xtreme_tasks.table import TASK_ORDER, TASKS

    return group_names() + [TASKS[t].leaf(lang) for t in TASK_ORDER for lang in TASKS[t].all_languages]


def looks_xtreme(name: str) -> bool:
    return str(name).lower().startswith("xtreme")


def check_task_names(names: Sequence[str]) -> None:
    """Names (or globs) starting with ``xtreme`` that match no XTREME task: one line with the
    closest names. Other names are left to lm-eval (its own tasks, YAML paths)."""
    valid = xtreme_names()
    for name in names:
        if not looks_xtreme(name) or name.endswith(".yaml"):
            continue
        if any(ch in name for ch in "*?[") and fnmatch.filter(valid, name):
            continue
        if name not in valid:
            raise TaskNameError(f"--tasks {name}: no such XTREME task{did_you_mean(name, valid)} "
                                "(`xtreme-eval tasks` lists them all)")


def tasks_not_found(err: BaseException) -> TaskNameError | None:
    """lm-eval's ``ValueError('Tasks not found: a, b')`` as one line with the closest XTREME names."""
    text = str(err)
    if not isinstance(err, ValueError) or not text.startswith("Tasks not found:"):
        return None
    missing = [t.strip() for t in text.split(":", 1)[1].split(",") if t.strip()]
    valid = xtreme_names()
    hints = [f"{name}{did_you_mean(name, valid)}" for name in missing]
    return TaskNameError(f"--tasks: no such task: {', '.join(hints)} (`xtreme-eval tasks` lists the XTREME ones, "
                         "`lm_eval ls tasks` all of lm-eval's)")


# ----------------------------------------------------------------------------- model args


def check_keys(given: Iterable[str], valid: Sequence[str], where: str) -> None:
    """Unknown keys: one line naming each key and its closest valid one (a typo such as
    ``layr=-1`` would otherwise run with the default and give wrong numbers)."""
    unknown = [k for k in given if k not in valid]
    if unknown:
        parts = [f"{k}{did_you_mean(k, valid)}" for k in unknown]
        raise ModelArgsError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {'; '.join(parts)} "
                             f"(valid: {', '.join(sorted(valid))})")


def parse_model_args(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        from lm_eval.utils import simple_parse_args_string

        return dict(simple_parse_args_string(value))
    return {}


def check_model_args(model: str | None, model_args: Any) -> None:
    """``--model xtreme``: every key is one ``XtremeLM`` reads; other models: every
    ``xtreme_*`` key is one of the prompted adapter's options."""
    args = parse_model_args(model_args)
    if model == "xtreme":
        from harness_ext.adapters.xtreme_lm import check_model_arg_keys

        check_model_arg_keys(args)
    elif model:
        from harness_ext.adapters.prompted.adapter import split_options

        split_options(args)


def check_data_dir() -> None:
    """``XTREME_DATA_DIR`` naming a missing folder: every task would be left out."""
    from xtreme_tasks.data import DATA_DIR_ENV, data_dir_from_env

    folder = data_dir_from_env()
    if folder is not None and not folder.is_dir() and not allow_missing_env():
        raise MissingDataError(f"{DATA_DIR_ENV}={folder}: no such folder (nothing was run); point it at the "
                               "XTREME data folder (README: Data)")


def check_cli_args(args: Any) -> None:
    """What can be checked from lm-eval's parsed command line before it indexes its tasks."""
    tasks = getattr(args, "tasks", None) or []
    names = [t.strip() for entry in ([tasks] if isinstance(tasks, str) else tasks) for t in str(entry).split(",")]
    names = [n for n in names if n]
    if not getattr(args, "include_path", None):  # tasks of one's own may be named xtreme_*: lm-eval decides
        check_task_names(names)
    if any(looks_xtreme(n) for n in names):
        check_data_dir()
    check_model_args(getattr(args, "model", None), getattr(args, "model_args", None))


# ----------------------------------------------------------------------------- tasks without data


def allow_missing_env() -> bool:
    return os.environ.get(ALLOW_MISSING_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def allows_missing(lm: Any) -> str | None:
    """How a partial run was asked for (``None``: it was not)."""
    if _truthy(getattr(lm, "allow_missing", False)):
        return f"--model_args {ALLOW_MISSING_ARG}=true"
    if _truthy((getattr(lm, "_xtreme_options", None) or {}).get(ALLOW_MISSING_ARG, False)):
        return f"--model_args xtreme_{ALLOW_MISSING_ARG}=true"
    if allow_missing_env():
        return f"{ALLOW_MISSING_ENV}=1"
    return None


def xtreme_leaves(task_dict: Any) -> list[str]:
    """Leaf names of the XTREME tasks in lm-eval's (nested) task dict."""
    from harness_ext.tasks.base import XtremeTask

    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, XtremeTask):
            found.append(node.config.task)
        elif isinstance(node, Mapping):
            for value in node.values():
                walk(value)

    walk(task_dict)
    return list(dict.fromkeys(found))


def _summary(missing: Mapping[str, str]) -> str:
    from harness_ext.adapters.xtreme_lm import left_out_summary

    return left_out_summary(dict(missing))


def check_data(lm: Any, task_dict: Any) -> dict[str, Any] | None:
    """Before any request is built: stop when selected XTREME tasks have no data, unless a
    partial run was asked for; then return the record written to the results JSON."""
    from harness_ext.tasks.base import UNAVAILABLE

    leaves = xtreme_leaves(task_dict)
    missing = {leaf: UNAVAILABLE[leaf] for leaf in leaves if leaf in UNAVAILABLE}
    if not missing:
        return None
    switch = allows_missing(lm)
    if switch is None:
        raise MissingDataError(
            f"no data for {_summary(missing)}; nothing was run. Set XTREME_DATA_DIR to the data folder, or run "
            f"the tasks that have data on purpose with --model_args {ALLOW_MISSING_ARG}=true "
            f"(xtreme_{ALLOW_MISSING_ARG}=true for other models) or {ALLOW_MISSING_ENV}=1")
    if len(missing) == len(leaves):
        raise MissingDataError(f"no data for any selected task: {_summary(missing)}; nothing was run "
                               f"(set XTREME_DATA_DIR to the data folder)")
    import logging

    logging.getLogger(__name__).warning("xtreme: partial run (%s): left out for missing data: %s", switch, _summary(missing))
    return {"missing_tasks": missing, "switch": switch, "selected": len(leaves)}


# ----------------------------------------------------------------------------- saved files


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def check_results_file(file: Path, results: Mapping[str, Any] | None = None) -> None:
    """``file`` exists and holds the whole JSON. When it does not and ``results`` is given,
    write it once more ourselves to learn why (lm-eval logs the reason at INFO only)."""
    try:
        json.loads(file.read_text(encoding="utf-8"))
        return
    except (OSError, ValueError) as err:
        problem = "missing" if isinstance(err, FileNotFoundError) else f"not whole ({type(err).__name__})"
    if results is not None:
        from lm_eval.utils import handle_non_serializable

        try:
            text = json.dumps(results, indent=2, default=handle_non_serializable, ensure_ascii=False)
            from harness_ext.reports.submission import atomic_write_text

            atomic_write_text(file, text)
            json.loads(file.read_text(encoding="utf-8"))
            return
        except OSError as err:
            raise ResultsNotSavedError(err.errno or errno.EIO, f"the results were not saved: {file}: {_reason(err)}; "
                                       "free space or choose another --output_path and run again") from err
    raise ResultsNotSavedError(errno.EIO, f"the results were not saved: {file} is {problem}; "
                               "free space or choose another --output_path and run again")


def check_samples_file(file: Path) -> None:
    """A samples file lm-eval appended to: present, ending in a whole JSON line."""
    try:
        with open(file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - (1 << 20)))
            tail = handle.read()
        last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        if size == 0 or not tail.endswith(b"\n"):
            raise ValueError("truncated")
        json.loads(last)
    except (OSError, ValueError) as err:
        why = _reason(err) if isinstance(err, OSError) else "truncated"
        raise ResultsNotSavedError(getattr(err, "errno", None) or errno.EIO,
                                   f"the samples were not saved: {file}: {why}; free space or choose another "
                                   "--output_path and run again") from err


def is_disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` (or what caused it) is a full disk or quota."""
    while err is not None:
        if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            return True
        err = err.__cause__ or err.__context__
    return False
