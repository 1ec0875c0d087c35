"""XNLI and PAWS-X: sentence pairs with a label.

Local layout (official ``download_data.sh`` output, labels kept)::

    $XTREME_DATA_DIR/xnli/test-<lang>.tsv     sentence1 \t sentence2 \t label
    $XTREME_DATA_DIR/pawsx/test-<lang>.tsv    sentence1 \t sentence2 \t 0|1

The official script strips the test labels (two columns left); such a file is
refused with the fix, since nothing could be scored from it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from xtreme_tasks.data import DataError, require_file
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
    docs = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL), 1):
            if not row:
                continue
            where = f"{path}:{line_no}"
            if len(row) == 2:
                raise DataError(
                    f"{where}: 2 columns (sentence1, sentence2) and no label. The official download "
                    f"script strips test labels; write the labelled file (sentence1<TAB>sentence2<TAB>label) "
                    f"or unset XTREME_DATA_DIR to use the hub copy"
                )
            if len(row) != 3:
                raise DataError(f"{where}: expected 3 tab-separated columns (sentence1, sentence2, label), got {len(row)}")
            docs.append({
                "id": f"{task}-{lang}-{split}-{len(docs)}",
                "text_a": row[0],
                "text_b": row[1],
                "label": normalise_label(task, row[2], where),
            })
    return docs


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    import datasets

    if task == "xnli":
        rows = datasets.load_dataset(HUB_DATASET, "XNLI", split=split, revision=revision)
        rows = rows.filter(lambda r: r["language"] == lang)
        fields = ("sentence1", "sentence2", "gold_label")
    else:
        rows = datasets.load_dataset(HUB_DATASET, f"PAWS-X.{lang}", split=split, revision=revision)
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
