"""XCOPA (XTREME-R): choice of the more plausible cause or effect, 11 languages.

Local layouts under ``$XTREME_DATA_DIR/xcopa`` (the first that has the file is read)::

    <lang>/test.<lang>.jsonl, <lang>/val.<lang>.jsonl     cambridgeltl/xcopa data/ (gold kept)
    test.<lang>.jsonl, val.<lang>.jsonl                   the same files side by side
    test-<lang>.jsonl, val-<lang>.jsonl                   XTREME-R's download_data.sh output

One JSON object per line: ``premise``, ``choice1``, ``choice2``, ``question`` (``cause`` or
``effect``), ``label`` (0 = choice1, 1 = choice2), ``idx``. XTREME-R's download sets every
test label to 0 ("to prevent accidental cheating"); a test file whose labels are all 0 is
read with its gold withheld (``label`` None: predictions can be exported and scored by the
leaderboard, but no accuracy is reported) and a warning says so.

The hub copy is ``cambridgeltl/xcopa`` (config = language, splits ``test``/``validation``).

Documents (the ``choose`` kind): the first segment is ``"{premise} What was the {question}?"``
and the candidates the two choices, exactly as the official ``third_party/run_xcopa.py``
feeds its multiple-choice model.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from xtreme_tasks.data import DataError, require_file
from xtreme_tasks.data.hub import load_dataset as hub_load
from xtreme_tasks.data.textio import read_json_lines
from xtreme_tasks.table import XCOPA_LABELS

log = logging.getLogger(__name__)

HUB_DATASET = "cambridgeltl/xcopa"
#: NOT PINNED, as google/xtreme (table.HUB_REVISION): no commit of the hub repository could be
#: verified from the sources available here; override with XTREME_XCOPA_REVISION
HUB_REVISION = "main"
REVISION_ENV = "XTREME_XCOPA_REVISION"
#: our split -> the name in cambridgeltl's file names / XTREME-R's file names / the hub
SPLITS = {"test": "test", "validation": "val", "dev": "val", "val": "val"}
HUB_SPLITS = {"test": "test", "val": "validation"}
QUESTIONS = ("cause", "effect")


def first_segment(premise: str, question: str) -> str:
    """The text ``run_xcopa.py`` pairs with each choice."""
    return f"{premise} What was the {question}?"


def to_doc(row: Mapping[str, Any], lang: str, split: str, index: int, where: str, gold: bool = True) -> dict:
    """One XCOPA row -> a ``choose`` document; a malformed row is a DataError naming the field."""
    for key in ("premise", "choice1", "choice2", "question"):
        if not isinstance(row.get(key), str):
            raise DataError(f"{where}: row {index + 1} has no text field {key!r}; XCOPA rows hold premise, choice1, "
                            "choice2, question and label")
    if row["question"] not in QUESTIONS:
        raise DataError(f"{where}: row {index + 1}: question is {row['question']!r}, expected cause or effect")
    label = row.get("label")
    if label not in (0, 1):
        raise DataError(f"{where}: row {index + 1}: label is {label!r}, expected 0 (choice1) or 1 (choice2)")
    return {
        "id": f"xcopa-{lang}-{split}-{row.get('idx', index)}",
        "context": first_segment(row["premise"], row["question"]),
        "choices": [row["choice1"], row["choice2"]],
        "label": XCOPA_LABELS[label] if gold else None,
        "premise": row["premise"], "question": row["question"],
    }


def read_jsonl(path: Path) -> list[dict]:
    return [row for _, row in read_json_lines(path, f"XCOPA file {path.name}", "premise, choice1, choice2, question, label")]


def _docs(rows: Iterable[Mapping[str, Any]], lang: str, split: str, where: str, official_test: bool = False) -> list[dict]:
    rows = list(rows)
    withheld = official_test and split == "test" and rows and all(row.get("label") == 0 for row in rows)
    if withheld:
        log.warning("XCOPA %s: every test label in %s is 0, as XTREME-R's download writes them (gold withheld): "
                    "predictions can be exported, but no accuracy is computed; read cambridgeltl/xcopa "
                    "data/%s/test.%s.jsonl for scores", lang, where, lang, lang)
    return [to_doc(row, lang, split, i, where, gold=not withheld) for i, row in enumerate(rows)]


def _split_name(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"XCOPA has splits test and validation (val), not {split!r}")
    return SPLITS[split]


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    name = _split_name(split)
    folder = Path(root) / "xcopa"
    for path, official in ((folder / lang / f"{name}.{lang}.jsonl", False), (folder / f"{name}.{lang}.jsonl", False),
                           (folder / f"{name}-{lang}.jsonl", True)):
        if path.is_file():
            return _docs(read_jsonl(path), lang, split, str(path), official_test=official)
    require_file(folder / lang / f"{name}.{lang}.jsonl", f"XCOPA {lang} {split} data "
                 f"(or {name}.{lang}.jsonl / {name}-{lang}.jsonl in {folder})")
    return []  # unreachable: require_file raised


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    """``cambridgeltl/xcopa`` config ``<lang>`` (gold kept)."""
    name = _split_name(split)
    revision = os.environ.get(REVISION_ENV, HUB_REVISION)
    rows = hub_load(task, lang, HUB_DATASET, lang, HUB_SPLITS[name], revision)
    return _docs(rows, lang, split, f"hub {HUB_DATASET}@{revision} {lang} {HUB_SPLITS[name]}")
