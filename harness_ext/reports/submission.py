"""Write predictions in the official XTREME submission layout.

The leaderboard and XTREME's ``evaluate.py`` read one file per task and language::

    <dir>/<task>/test-<lang>.json     QA: one JSON object {"question id": "answer text"}

(the name is ``test-`` for every task, also TyDiQA whose test set is the GoldP dev
split). Files are written atomically -- a temporary file in the same folder, then
``os.replace`` -- so an interrupted run or two processes writing the same language
never leave a half-written file that the scorer would reject or, worse, score.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

PREDICTIONS_DIR_ENV = "XTREME_PREDICTIONS_DIR"


class SubmissionError(ValueError):
    """Predictions that cannot be written as a valid submission file."""


def predictions_dir(metadata: Mapping[str, Any] | None = None) -> Path | None:
    """Where to write predictions: task metadata ``predictions_dir``, else ``$XTREME_PREDICTIONS_DIR``, else None."""
    value = (metadata or {}).get("predictions_dir") or os.environ.get(PREDICTIONS_DIR_ENV)
    return Path(value).expanduser() if value else None


def prediction_path(root: str | Path, task: str, lang: str, suffix: str = "json") -> Path:
    """``<root>/<task>/test-<lang>.<suffix>``, the file the official scorer looks for."""
    return Path(root) / task / f"test-{lang}.{suffix}"


def qa_prediction_map(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``{id: answer}`` from (id, answer) pairs; the same id with two different answers is an error."""
    out: dict[str, str] = {}
    for qid, answer in pairs:
        if not isinstance(answer, str):
            raise SubmissionError(f"question {qid!r}: the prediction is a {type(answer).__name__}, not answer text")
        if qid in out and out[qid] != answer:
            raise SubmissionError(
                f"question id {qid!r} was answered twice ({out[qid]!r} and {answer!r}); ids must be unique per language"
            )
        out[str(qid)] = answer
    return out


_UMASK: list[int] = []


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (0o666 less the umask), so files
    written through a temporary file match the ones lm-eval writes (tempfiles are 0600)."""
    if not _UMASK:
        _UMASK.append(os.umask(0o022))
        os.umask(_UMASK[0])
    return 0o666 & ~_UMASK[0]


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (readers see the old or the new file, never a part)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), default_file_mode())
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_qa_predictions(root: str | Path, task: str, lang: str, predictions: Mapping[str, str]) -> Path:
    """Write ``{id: answer}`` to ``<root>/<task>/test-<lang>.json``; returns the path."""
    checked = qa_prediction_map(predictions.items())
    path = prediction_path(root, task, lang)
    atomic_write_text(path, json.dumps(checked, ensure_ascii=False, indent=2) + "\n")
    return path


def read_qa_predictions(path: str | Path) -> dict[str, str]:
    """Read a file written by :func:`write_qa_predictions` (or any official QA prediction file)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SubmissionError(f"{path}: expected one JSON object {{id: answer}}, found {type(data).__name__}")
    return qa_prediction_map(data.items())
