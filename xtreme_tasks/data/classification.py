"""XNLI and PAWS-X: sentence pairs with a label.

Local layout (official ``download_data.sh`` output, labels kept)::

    $XTREME_DATA_DIR/xnli/test-<lang>.tsv     sentence1 \t sentence2 \t label
    $XTREME_DATA_DIR/pawsx/test-<lang>.tsv    sentence1 \t sentence2 \t 0|1

Read as the official code reads these files: ``third_party/processors/{xnli,pawsx}.py``
call ``transformers.DataProcessor._read_tsv``, i.e. ``csv.reader(delimiter="\t",
quotechar=None)`` on a ``utf-8-sig`` file: every line is split on tabs, a quote is an
ordinary character (``"Hi," he said.`` stays as it is; no line is ever joined to the
next), the BOM is dropped, the texts are not stripped and the label is
``line[2].strip()``. There is no header line. ``utils_preprocess.py`` wrote these files
from the raw releases with ``line.strip().split('\t')`` after skipping the header.

The official script strips the test labels (two columns left); such a file is
refused with the fix, since nothing could be scored from it. A blank line inside the
file is refused too (the official reader would fail on it); blank lines at the end
are ignored.
"""

from __future__ import annotations

from pathlib import Path

from xtreme_tasks.data import DataError, require_file
from xtreme_tasks.data.hub import load_dataset as hub_load
from xtreme_tasks.data.textio import read_lines
from xtreme_tasks.table import HUB_DATASET, get_task

SPLIT_FILES = {"test": "test", "validation": "dev", "dev": "dev", "train": "train"}


def normalise_label(task: str, raw: str, where: str) -> str:
    spec = get_task(task)
    label = raw.strip()
    if task == "xnli" and label == "contradictory":
        label = "contradiction"
    if label not in spec.labels:
        raise DataError(
            f"{where}: label {raw!r} is not one of {', '.join(spec.labels)} "
            f"(the {spec.title} label set in xtreme_tasks/table.py)"
        )
    return label


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    path = require_file(root / task / f"{SPLIT_FILES.get(split, split)}-{lang}.tsv", f"{task} {split} file")
    lines = read_lines(path, f"{get_task(task).title} file").lines
    while lines and not lines[-1].strip():
        lines.pop()
    docs = []
    for line_no, line in enumerate(lines, 1):
        where = f"{path}:{line_no}"
        if not line.strip():
            raise DataError(
                f"{where}: blank line inside the file; every line is one example "
                f"(sentence1<TAB>sentence2<TAB>label), remove it"
            )
        row = line.split("\t")
        if len(row) == 2:
            raise DataError(
                f"{where}: 2 columns (sentence1, sentence2) and no label. The official download "
                f"script strips test labels; write the labelled file (sentence1<TAB>sentence2<TAB>label) "
                f"or unset XTREME_DATA_DIR to use the hub copy"
            )
        if len(row) != 3:
            raise DataError(
                f"{where}: expected 3 tab-separated columns (sentence1, sentence2, label), got {len(row)}"
                + ("; the raw release has more columns: run XTREME's utils_preprocess.py on it, or "
                   "write sentence1<TAB>sentence2<TAB>label" if len(row) > 3 else "")
            )
        if line_no == 1 and row[2].strip() in ("label", "gold_label"):
            raise DataError(
                f"{where}: a header line; XTREME's {task}/test-<lang>.tsv has none (every line is an "
                f"example), remove it"
            )
        docs.append({
            "id": f"{task}-{lang}-{split}-{len(docs)}",
            "text_a": row[0],
            "text_b": row[1],
            "label": normalise_label(task, row[2], where),
        })
    return docs


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    if task == "xnli":
        rows = hub_load(task, lang, HUB_DATASET, "XNLI", split, revision)
        rows = rows.filter(lambda r: r["language"] == lang)
        fields = ("sentence1", "sentence2", "gold_label")
    else:
        rows = hub_load(task, lang, HUB_DATASET, f"PAWS-X.{lang}", split, revision)
        fields = ("sentence1", "sentence2", "label")
    where = f"hub {HUB_DATASET}@{revision} {task}.{lang} {split}"
    return [
        {
            "id": f"{task}-{lang}-{split}-{i}",
            "text_a": row[fields[0]],
            "text_b": row[fields[1]],
            "label": normalise_label(task, str(row[fields[2]]), f"{where} row {i}"),
        }
        for i, row in enumerate(rows)
    ]
