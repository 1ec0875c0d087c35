"""Extractive QA data: XQuAD, MLQA and TyDiQA-GoldP as span documents.

Every loader returns ``{"id", "question", "context", "answers": {"text": [...],
"answer_start": [...]}, "lang"}`` with each ``answer_start`` checked against the
context, because the span adapter and any offset-based analysis trust them.

Local layout (official ``scripts/download_data.sh``, answers kept)::

    $XTREME_DATA_DIR/xquad/xquad.<lang>.json
    $XTREME_DATA_DIR/mlqa/MLQA_V1/test/test-context-<l>-question-<l>.json   (and dev/dev-...)
    $XTREME_DATA_DIR/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.<lang>.dev.json

(TyDiQA also accepts the tarball's own name ``tydiqa-goldp-dev-<language>.json``,
i.e. a folder the download script's rename step never ran on.)

The official script deliberately replaces every QA test answer with
``{"answer_start": 0, "text": ""}`` (``utils_preprocess.remove_qa_test_annotations``);
nothing can be scored from such a file, so it is refused with the fix instead of
silently scoring 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from xtreme_tasks.data import DataError, require_file
from xtreme_tasks.data.hub import load_dataset as hub_load
from xtreme_tasks.data.textio import read_json
from xtreme_tasks.table import HUB_DATASET, get_task

#: TyDiQA ids start with the language's English name (``english--3215...-2``)
TYDIQA_LANGUAGES: dict[str, str] = {
    "ar": "arabic", "bn": "bengali", "en": "english", "fi": "finnish", "id": "indonesian",
    "ko": "korean", "ru": "russian", "sw": "swahili", "te": "telugu",
}

#: XQuAD languages that ``google/xtreme`` lacks (XTREME-R additions): read from the
#: XQuAD dataset itself. Its own revision, since a pinned google/xtreme commit does not exist there.
XQUAD_EXTRA_HUB: dict[str, tuple[str, str, str]] = {"ro": ("google/xquad", "xquad.ro", "main")}

#: source file for each original download (named in the "answers stripped" fix)
ORIGINAL_SOURCES = {
    "xquad": "https://github.com/deepmind/xquad (xquad.<lang>.json)",
    "mlqa": "https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip",
    "tydiqa": "https://storage.googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-dev.tgz",
}


def _split_kind(task: str, split: str) -> str:
    """Map a requested split to the file family that holds it ("test" or "dev")."""
    if task == "xquad":
        if split in ("test", "validation", "dev"):
            return "test"  # XQuAD has one split; the hub calls it validation
    elif task == "mlqa":
        if split == "test":
            return "test"
        if split in ("validation", "dev"):
            return "dev"
    elif task == "tydiqa":
        if split in ("test", "validation", "dev"):
            return "dev"  # XTREME's TyDiQA test set *is* the GoldP dev split
    raise DataError(f"{get_task(task).title} has no {split!r} split for evaluation; use the table's split {get_task(task).split!r}")


def local_path(root: Path, task: str, lang: str, split: str) -> Path:
    """Where the official layout keeps one task/language/split."""
    kind = _split_kind(task, split)
    if task == "xquad":
        return root / "xquad" / f"xquad.{lang}.json"
    if task == "mlqa":
        return root / "mlqa" / "MLQA_V1" / kind / f"{kind}-context-{lang}-question-{lang}.json"
    folder = root / "tydiqa" / "tydiqa-goldp-v1.1-dev"
    renamed = folder / f"tydiqa.goldp.{lang}.dev.json"
    original = folder / f"tydiqa-goldp-dev-{TYDIQA_LANGUAGES[lang]}.json"
    return original if not renamed.exists() and original.exists() else renamed


def check_answers(doc: dict[str, Any], where: str) -> None:
    """Every answer must sit at its ``answer_start``; raise DataError naming the id otherwise."""
    context = doc["context"]
    for text, start in zip(doc["answers"]["text"], doc["answers"]["answer_start"]):
        if context[start : start + len(text)] != text:
            raise DataError(
                f"{where}: question {doc['id']!r}: answer {text!r} is not at answer_start={start} "
                f"(context there reads {context[start:start + len(text)]!r})"
            )


def _realign(context: str, text: str, start: int) -> int | None:
    """Offset of the occurrence of ``text`` nearest to ``start`` (None if absent).

    Needed for the hub copies: their builder ``strip()``s contexts and answers but
    keeps the original offsets, so a context with leading whitespace shifts them.
    """
    best: int | None = None
    pos = context.find(text)
    while pos != -1:
        if best is None or abs(pos - start) < abs(best - start):
            best = pos
        pos = context.find(text, pos + 1)
    return best


def refuse_stripped(docs: list[dict[str, Any]], task: str, lang: str, where: str) -> None:
    """Refuse documents whose answers the official download script blanked out."""
    empty = [d["id"] for d in docs if not any(t for t in d["answers"]["text"])]
    if not empty:
        return
    if len(empty) == len(docs):
        raise DataError(
            f"{where}: every answer is empty: the official download_data.sh strips QA test answers "
            f"(utils_preprocess.remove_qa_test_annotations), so nothing can be scored. Put the original "
            f"file from {ORIGINAL_SOURCES[task]} at this path, or unset XTREME_DATA_DIR to read the hub copy"
        )
    raise DataError(
        f"{where}: {len(empty)} of {len(docs)} questions have no non-empty answer "
        f"(first: {empty[0]!r}); the file is damaged, re-download it from {ORIGINAL_SOURCES[task]}"
    )


def _field(obj: Any, key: str | int, kind: type | tuple[type, ...], where: str, path: str) -> Any:
    """``obj[key]`` checked to be of ``kind``; else one DataError naming the file and JSON path."""
    here = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
    if isinstance(key, str) and (not isinstance(obj, dict) or key not in obj):
        raise DataError(f"{where}: {here} is missing; SQuAD v1.1 JSON needs it (re-download the file)")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(
            f"{where}: {here} is {type(value).__name__} {value!r:.60}, expected {names} (SQuAD v1.1 JSON; "
            f"re-download the file)"
        )
    return value


def _squad_docs(data: Any, lang: str, where: str) -> Iterable[dict[str, Any]]:
    """Documents of a SQuAD v1.1 JSON object; a missing field or bad type is one DataError (file + JSON path)."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"{where}: not SQuAD v1.1 JSON (expected an object with a 'data' list)")
    for a, article in enumerate(data["data"]):
        at = f"data[{a}]"
        article = _field(data["data"], a, dict, where, "data")
        paragraphs = _field(article, "paragraphs", list, where, at)
        for p, paragraph in enumerate(paragraphs):
            pp = f"{at}.paragraphs[{p}]"
            paragraph = _field(paragraphs, p, dict, where, f"{at}.paragraphs")
            context = _field(paragraph, "context", str, where, pp)
            for q, qa in enumerate(_field(paragraph, "qas", list, where, pp)):
                qp = f"{pp}.qas[{q}]"
                qa = _field(paragraph["qas"], q, dict, where, f"{pp}.qas")
                answers = qa.get("answers") or []
                if not isinstance(answers, list):
                    _field(qa, "answers", list, where, qp)
                texts, starts = [], []
                for n, answer in enumerate(answers):
                    ap = f"{qp}.answers[{n}]"
                    answer = _field(answers, n, dict, where, f"{qp}.answers")
                    texts.append(_field(answer, "text", str, where, ap))
                    starts.append(_field(answer, "answer_start", int, where, ap))
                yield {
                    "id": str(_field(qa, "id", (str, int), where, qp)),
                    "question": _field(qa, "question", str, where, qp),
                    "context": context,
                    "answers": {"text": texts, "answer_start": starts},
                    "lang": lang,
                }


def read_squad_file(path: Path, task: str, lang: str) -> list[dict[str, Any]]:
    """Read one SQuAD-format file, refuse stripped answers, check every offset."""
    data = read_json(path, f"{get_task(task).title} file")
    docs = list(_squad_docs(data, lang, str(path)))
    if task == "tydiqa":
        prefix = TYDIQA_LANGUAGES[lang] + "-"
        foreign = [d["id"] for d in docs if not d["id"].startswith(prefix)]
        if foreign:
            raise DataError(f"{path}: {len(foreign)} ids do not start with {prefix!r} (first: {foreign[0]!r}); wrong language file?")
    refuse_stripped(docs, task, lang, str(path))
    for doc in docs:
        check_answers(doc, str(path))
    return docs


def local(root: Path, task: str, lang: str, split: str) -> list[dict[str, Any]]:
    """Documents from the official layout under ``root`` (see the module docstring)."""
    path = require_file(local_path(root, task, lang, split), f"{get_task(task).title} {lang} {split} file")
    return read_squad_file(path, task, lang)


def _hub_rows(task: str, lang: str, split: str, revision: str):
    kind = _split_kind(task, split)
    hub_split = "test" if (task == "mlqa" and kind == "test") else "validation"
    if task == "xquad" and lang in XQUAD_EXTRA_HUB:
        name, config, rev = XQUAD_EXTRA_HUB[lang]
        return hub_load(task, lang, name, config, hub_split, rev), f"hub {name}@{rev} {config} {hub_split}"
    config = {"xquad": f"XQuAD.{lang}", "mlqa": f"MLQA.{lang}.{lang}", "tydiqa": "tydiqa"}[task]
    rows = hub_load(task, lang, HUB_DATASET, config, hub_split, revision)
    where = f"hub {HUB_DATASET}@{revision} {config} {hub_split}"
    if task == "tydiqa":  # one config for all languages: select ours by id prefix
        prefix = TYDIQA_LANGUAGES[lang] + "-"
        rows = rows.filter(lambda row: row["id"].startswith(prefix))
    return rows, where


def from_rows(rows: Iterable[dict], task: str, lang: str, where: str) -> list[dict[str, Any]]:
    """Hub rows -> documents, with offsets moved back onto the (stripped) context."""
    docs = []
    for row in rows:
        texts = list(row["answers"]["text"])
        starts = [int(s) for s in row["answers"]["answer_start"]]
        doc = {
            "id": str(row["id"]),
            "question": row["question"],
            "context": row["context"],
            "answers": {"text": texts, "answer_start": starts},
            "lang": lang,
        }
        for i, (text, start) in enumerate(zip(texts, starts)):
            if text and doc["context"][start : start + len(text)] != text:
                moved = _realign(doc["context"], text, start)
                if moved is None:
                    raise DataError(f"{where}: question {doc['id']!r}: answer {text!r} does not occur in its context")
                starts[i] = moved
        docs.append(doc)
    refuse_stripped(docs, task, lang, where)
    for doc in docs:
        check_answers(doc, where)
    return docs


def hub(task: str, lang: str, split: str, revision: str) -> list[dict[str, Any]]:
    """Documents from the hub: ``XQuAD.<lang>``, ``MLQA.<l>.<l>``, ``tydiqa`` (by id prefix)."""
    rows, where = _hub_rows(task, lang, split, revision)
    return from_rows(rows, task, lang, where)
