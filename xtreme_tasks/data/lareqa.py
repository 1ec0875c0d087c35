"""LAReQA on XQuAD-R: questions of 11 languages and ONE pool of answer sentences.

As the official ``third_party/utils_lareqa.py`` builds it (re-implemented, not copied):

* every paragraph of every language contributes each of its sentences
  (``context[start:end]`` for each ``sentence_breaks`` pair) as one candidate; its uid is
  ``<lang>_<n>_<pos>`` (``n``: the paragraph's 1-based number in the file, ``pos``: the
  sentence's position), so a paragraph's sentences enter the pool once however many
  questions it has;
* the candidate's text is what ``evaluate_retrieval.py`` encodes: the sentence followed by its
  paragraph with no separator, newlines removed (``(sentence + context).replace("\\n", "")``);
* a question's answer sentence is the sentence whose break holds ``answer_start``; a
  question without one is skipped (as the official loader does, with a warning);
* the relevant candidates of a question are, in every language, the sentences of the
  paragraph holding that question id's answer whose text equals the answer sentence
  (the 11 parallel answers; XQuAD question ids are shared across languages).

Local layout: ``$XTREME_DATA_DIR/lareqa/xquad-r/<lang>.json`` (what the official
``download_data.sh`` unpacks) or ``$XTREME_DATA_DIR/xquad_r/<lang>.json``. The hub copy
(``google-research-datasets/xquad_r``) has no sentence breaks, so it cannot rebuild the pool.

Documents of one language's leaf: that language's questions, then the whole pool (every
language's candidates; the file set is parsed once per process and the pool list shared):

* ``{"id": "q:<uid>", "role": "question", "lang", "uid": "<qid>_<lang>", "xling_id": qid, "text"}``
* ``{"id": "c:<uid>", "role": "candidate", "lang", "uid", "text", "xling_ids": [qids it answers]}``
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from xtreme_tasks.data import DataError
from xtreme_tasks.data.textio import read_json

log = logging.getLogger(__name__)

#: XQuAD-R's 11 languages (the pool; the official code reads every file of the folder)
LANGUAGES: tuple[str, ...] = tuple("ar de el en es hi ru th tr vi zh".split())
FOLDERS: tuple[str, ...] = ("lareqa/xquad-r", "xquad_r")
#: the official evaluation's token limits (scripts/run_eval_lareqa.sh)
MAX_QUESTION_TOKENS = 96
MAX_CANDIDATE_TOKENS = 256


def candidate_text(sentence: str, context: str) -> str:
    """What the official evaluation encodes for a candidate: sentence + paragraph, newlines removed."""
    return (sentence + context).replace("\n", "")


def _field(obj: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{path}: {where} has no field {key!r}; XQuAD-R files are SQuAD JSON with "
                        f"'sentences' and 'sentence_breaks' per paragraph (github.com/google-research-datasets/lareqa)")
    return obj[key]


def _breaks(paragraph: dict, path: Path, where: str) -> list[tuple[int, int]]:
    raw = _field(paragraph, "sentence_breaks", path, where)
    context = paragraph["context"]
    try:
        breaks = [(int(start), int(end)) for start, end in raw]
    except (TypeError, ValueError):
        raise DataError(f"{path}: {where} 'sentence_breaks' must be a list of [start, end] pairs") from None
    for start, end in breaks:
        if not 0 <= start < end <= len(context):
            raise DataError(f"{path}: {where} sentence break [{start}, {end}] is outside its context "
                            f"({len(context)} characters); the file is damaged, download it again")
    return breaks


def language_docs(data: Any, lang: str, path: Path) -> tuple[list[dict], list[dict]]:
    """``(questions, candidates)`` of one language file (candidates in paragraph order)."""
    questions: list[dict] = []
    candidates: list[dict] = []
    skipped = 0
    paragraph_number = 0
    for a, article in enumerate(_field(data, "data", path, "the file")):
        for p, paragraph in enumerate(_field(article, "paragraphs", path, f"article {a}")):
            paragraph_number += 1
            where = f"article {a} paragraph {p}"
            context = _field(paragraph, "context", path, where)
            breaks = _breaks(paragraph, path, where)
            sentences = [context[start:end] for start, end in breaks]
            own = [
                {"id": f"c:{lang}_{paragraph_number}_{pos}", "role": "candidate", "lang": lang,
                 "uid": f"{lang}_{paragraph_number}_{pos}", "text": candidate_text(sentence, context), "xling_ids": []}
                for pos, sentence in enumerate(sentences)
            ]
            candidates.extend(own)
            for q, qa in enumerate(_field(paragraph, "qas", path, where)):
                answers = _field(qa, "answers", path, f"{where} question {q}")
                if len(answers) != 1:
                    raise DataError(f"{path}: {where} question {qa.get('id', q)!r} has {len(answers)} answers; "
                                    "XQuAD-R gives exactly one")
                start = int(_field(answers[0], "answer_start", path, f"{where} question {q} answer"))
                sentence = next((context[b:e] for b, e in breaks if b <= start < e), None)
                if sentence is None:
                    skipped += 1
                    continue
                qid = str(_field(qa, "id", path, f"{where} question {q}"))
                questions.append({"id": f"q:{qid}_{lang}", "role": "question", "lang": lang, "uid": f"{qid}_{lang}",
                                  "xling_id": qid, "text": _field(qa, "question", path, f"{where} question {q}")})
                for candidate, text in zip(own, sentences):
                    if text == sentence and qid not in candidate["xling_ids"]:
                        candidate["xling_ids"].append(qid)
    if skipped:
        log.warning("LAReQA %s: skipped %d question(s) whose answer starts outside every sentence "
                    "(as the official loader does)", lang, skipped)
    return questions, candidates


def folder(root: Path) -> Path:
    """The XQuAD-R folder under ``root`` (the official layout first)."""
    for name in FOLDERS:
        if (Path(root) / name).is_dir():
            return Path(root) / name
    raise DataError(f"no XQuAD-R folder under {root}: expected {' or '.join(str(Path(root) / n) for n in FOLDERS)} "
                    f"with <lang>.json for {' '.join(LANGUAGES)} (github.com/google-research-datasets/lareqa, xquad-r/)")


def pool_docs(files: dict[str, Path]) -> list[dict]:
    """Questions of every language, then the one candidate pool (languages in the order given)."""
    questions: list[dict] = []
    candidates: list[dict] = []
    for lang, path in files.items():
        if not path.is_file():
            raise DataError(f"missing XQuAD-R file {path}; the pool needs all of {' '.join(files)} "
                            "(github.com/google-research-datasets/lareqa, xquad-r/<lang>.json)")
        q, c = language_docs(read_json(path, f"XQuAD-R {lang} file"), lang, path)
        questions += q
        candidates += c
    if not questions:
        raise DataError(f"XQuAD-R in {next(iter(files.values())).parent}: no question has an answer sentence")
    return questions + candidates


def _stamp(files: dict[str, Path]) -> tuple:
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (str(p),) for p in files.values())


_MEMO: dict[tuple, tuple[list[dict], list[dict]]] = {}


def read_pool(root: Path) -> tuple[list[dict], list[dict]]:
    """``(questions of all languages, the candidate pool)``, parsed once per process per file set."""
    base = folder(root)
    files = {code: base / f"{code}.json" for code in LANGUAGES}
    key = _stamp(files)
    if key not in _MEMO:
        docs = pool_docs(files)
        _MEMO.clear()  # keep one file set: the pool can be large
        _MEMO[key] = ([d for d in docs if d["role"] == "question"], [d for d in docs if d["role"] == "candidate"])
    return _MEMO[key]


def local(root: Path, task: str, lang: str, split: str) -> list[dict]:
    """``lang``'s questions, then the pool of all 11 languages' candidates."""
    if split not in ("test", "validation", "dev"):
        raise DataError(f"XQuAD-R has a single split (test), not {split!r}")
    if lang not in LANGUAGES:
        raise DataError(f"XQuAD-R has no language {lang!r}; its languages are {' '.join(LANGUAGES)}")
    questions, pool = read_pool(root)
    return [q for q in questions if q["lang"] == lang] + pool


def hub(task: str, lang: str, split: str, revision: str) -> list[dict]:
    raise DataError(
        "LAReQA: the hub copy of XQuAD-R (google-research-datasets/xquad_r) has no sentence breaks, so the "
        f"answer pool cannot be rebuilt from it; set XTREME_DATA_DIR to a folder holding {FOLDERS[0]}/<lang>.json "
        "(github.com/google-research-datasets/lareqa, see docs/data.md)"
    )
