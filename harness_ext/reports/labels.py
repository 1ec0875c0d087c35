"""Gold labels in the official submission layout, from the local test data.

``xtreme-eval score --data-dir DATA`` scores a predictions folder (``xtreme-eval export``'s
output, or any submission) against the test data it was evaluated on, in whatever layout
``xtreme_tasks.data`` reads (README: Data), closing the export -> score loop in one command.
The labels are rendered from the same documents the tasks read, in the same order, into
the layout :mod:`harness_ext.reports.official` scores (``<task>/test-<lang>.{tsv,json}``).
Only the languages that have a predictions file are rendered. XTREME-R's XCOPA and
Mewsli-X are rendered too (their gold must be in the data: XTREME-R's own download
withholds it); LAReQA has no predictions file in the official layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from harness_ext.reports.official import ReportError, file_suffix
from harness_ext.reports.submission import atomic_write_text
from xtreme_tasks.table import TABLE, XCOPA_LABELS


def _classify(docs: list[dict[str, Any]]) -> str:
    return "".join(f"{doc['label']}\n" for doc in docs)


def _tags(docs: list[dict[str, Any]]) -> str:
    return "".join("".join(f"{tag}\n" for tag in doc["tags"]) + "\n" for doc in docs)


def _squad(docs: list[dict[str, Any]]) -> str:
    paragraphs = [{"context": doc["context"], "qas": [{
        "id": doc["id"], "question": doc["question"],
        "answers": [{"text": t, "answer_start": s} for t, s in zip(doc["answers"]["text"], doc["answers"]["answer_start"])],
    }]} for doc in docs]
    return json.dumps({"version": "1.1", "data": [{"title": "test", "paragraphs": paragraphs}]}, ensure_ascii=False)


def _tatoeba(docs: list[dict[str, Any]]) -> str:
    # the English query of pair i should retrieve xx sentence i (documents in index order)
    return "".join(f"{position}\n" for position in range(len(docs)))


def _bucc(docs: list[dict[str, Any]]) -> str:
    pairs = [(doc["sent_id"], en) for doc in docs if doc["split"] == "test" and doc["side"] == "xx" for en in doc["gold"] or []]
    if not pairs:
        raise ReportError("BUCC test gold is not in the data (the benchmark withholds it); score BUCC with --labels")
    return "".join(f"{xx}\t{en}\n" for xx, en in pairs)


def _xcopa(docs: list[dict[str, Any]]) -> str:
    if any(doc["label"] is None for doc in docs):
        raise ReportError("XCOPA test gold is not in the data (XTREME-R's download zeroes it); point --data-dir at "
                          "cambridgeltl/xcopa's files (xcopa/<lang>/test.<lang>.jsonl) or score with --labels")
    return "".join(json.dumps({"label": XCOPA_LABELS.index(doc["label"])}) + "\n" for doc in docs)


def _mewslix(docs: list[dict[str, Any]]) -> str:
    mentions = [doc for doc in docs if doc.get("role") == "mention"]
    if any(not doc["gold"] for doc in mentions):
        raise ReportError("Mewsli-X test gold is not in the data (XTREME-R's preprocessing blanks it); point --data-dir "
                          "at data with the gold entity ids or score with --labels")
    return json.dumps({doc["example_id"]: [doc["gold"]] for doc in mentions}, ensure_ascii=False)


_RENDER: dict[str, Callable[[list[dict[str, Any]]], str]] = {
    "classify": _classify, "tag": _tags, "extract_span": _squad, "tatoeba": _tatoeba, "bucc2018": _bucc,
    "choose": _xcopa, "mewslix": _mewslix,
}


def write_labels(data_dir: str | Path, predictions: str | Path, out: str | Path) -> list[Path]:
    """Render the gold labels of every (task, language) with a predictions file under
    ``predictions`` from the test data in ``data_dir``, into ``out``."""
    from xtreme_tasks.data import DataError, load_docs

    data_root, pred_root, out_root = Path(data_dir).expanduser(), Path(predictions), Path(out)
    if not data_root.is_dir():
        raise ReportError(f"--data-dir {data_root}: no such folder; pass the XTREME data folder the run read "
                          "(the one XTREME_DATA_DIR named)")
    written: list[Path] = []
    for name, spec in TABLE.items():
        render = _RENDER.get(name) or _RENDER.get(spec.request_kind)
        if render is None:  # LAReQA: scored from the run's results only
            continue
        suffix = file_suffix(spec)
        for lang in spec.all_languages:  # XTREME-R's added languages too
            if not (pred_root / name / f"test-{lang}.{suffix}").is_file():
                continue
            try:
                docs = load_docs(name, lang, data_dir=data_root)
            except DataError as err:
                raise ReportError(f"labels for {spec.leaf(lang)}: {err}") from None
            if name == "tatoeba":
                docs = sorted(docs, key=lambda doc: doc["index"])
            target = out_root / name / f"test-{lang}.{suffix}"
            atomic_write_text(target, render(docs))
            written.append(target)
    return written
