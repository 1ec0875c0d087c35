"""Data layer: (task, language, split) -> a list of plain-dict documents.

Each task has a loader module here with two functions:

* ``local(root: Path, task: str, lang: str, split: str) -> list[dict]`` reads the layout
  the official XTREME ``scripts/download_data.sh`` produces under ``root``
  (with labels kept; see README "Local data");
* ``hub(lang: str, split: str, revision: str) -> list[dict]`` reads the hub copy.

``load_docs`` picks local when ``data_dir`` is given or ``XTREME_DATA_DIR`` is set,
the hub otherwise. Document shapes by request kind:

* classify: ``{"id", "text_a", "text_b", "label"}`` (label: a name from the table)
* tag: ``{"id", "words": [...], "tags": [...]}``
* extract_span: ``{"id", "question", "context", "answers": {"text": [...], "answer_start": [...]}}``
* embed: task-specific (see the retrieval loaders)
* choose: ``{"id", "context", "choices": [...], "label"}`` (label: a name from the table's
  labels, naming ``choices[i]``; ``None`` where the gold was withheld) plus the source fields
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from xtreme_tasks.table import HUB_REVISION, check_language, get_task

DATA_DIR_ENV = "XTREME_DATA_DIR"
REVISION_ENV = "XTREME_HUB_REVISION"

#: task -> module under xtreme_tasks.data that loads it
LOADER_MODULES: dict[str, str] = {
    "xnli": "classification",
    "pawsx": "classification",
    "udpos": "udpos",
    "panx": "panx",
    "xquad": "qa",
    "mlqa": "qa",
    "tydiqa": "qa",
    "bucc2018": "bucc",
    "tatoeba": "tatoeba",
    "lareqa": "lareqa",
    "mewslix": "mewslix",
    "xcopa": "xcopa",
}


class DataError(ValueError):
    """Bad or missing data; the message names the file, the field and the fix."""


def data_dir_from_env() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None


def hub_revision() -> str:
    return os.environ.get(REVISION_ENV, HUB_REVISION)


def _loader(task: str):
    try:
        module = LOADER_MODULES[task]
    except KeyError:
        raise DataError(f"no data loader for task {task!r}; add it to xtreme_tasks/data/LOADER_MODULES") from None
    return importlib.import_module(f"xtreme_tasks.data.{module}")


def load_docs(
    task: str,
    lang: str,
    split: str | None = None,
    data_dir: str | Path | None = None,
    *,
    strict: bool | None = None,
) -> list[dict[str, Any]]:
    """Load one task/language/split as documents (see the module docstring for shapes).

    The test set is checked against ``xtreme_tasks.fingerprints`` (a warning when it is not
    XTREME's; a DataError in strict mode, ``strict=True`` or ``XTREME_STRICT_TEST_SETS=1``).
    """
    return load_checked(task, lang, split, data_dir, strict=strict)[0]


def load_checked(
    task: str,
    lang: str,
    split: str | None = None,
    data_dir: str | Path | None = None,
    *,
    strict: bool | None = None,
):
    """``(documents, TestSetCheck)``: :func:`load_docs` plus the fingerprint check's result."""
    from xtreme_tasks import fingerprints

    spec = get_task(task)
    check_language(task, lang)
    split = split or spec.split
    root = Path(data_dir).expanduser() if data_dir else data_dir_from_env()
    module = _loader(task)
    if root is not None:
        if not root.is_dir():
            raise DataError(
                f"data folder {root} (from {'data_dir' if data_dir else DATA_DIR_ENV}) does not exist; "
                f"point {DATA_DIR_ENV} at the folder that holds '{task}/' in the official XTREME layout"
            )
        docs = module.local(root, task, lang, split)
    else:
        docs = module.hub(task, lang, split, hub_revision())
    if not docs:
        raise DataError(f"{spec.title} {lang} {split}: no documents were read")
    origin = "local" if root is not None else "hub"
    known = ""
    if origin == "hub" and hasattr(module, "hub_caveat"):
        known = module.hub_caveat(lang)
    result = fingerprints.check(task, lang, split, docs, origin, known_nonstandard=known)
    return docs, fingerprints.enforce(result, strict)


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(
            f"missing {what}: {path} does not exist. Expected the official XTREME layout under "
            f"${DATA_DIR_ENV} (see README 'Local data'), or unset {DATA_DIR_ENV} to read the hub copy."
        )
    return path
