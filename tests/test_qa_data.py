"""QA loaders on the real XQuAD files and on small files in the official layouts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from xtreme_tasks.data import DataError, load_docs
from xtreme_tasks.data import qa
from xtreme_tasks.table import get_task

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XQUAD_LANGS = get_task("xquad").all_languages


def _squad_json(qas: list[dict], context: str = "Paris is the capital of France.") -> dict:
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


def _write(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def test_xquad_has_twelve_languages_with_ro_outside_the_score():
    assert len(XQUAD_LANGS) == 12 and "ro" in get_task("xquad").extra_languages
    assert "ro" not in get_task("xquad").languages


@pytest.mark.parametrize("lang", XQUAD_LANGS)
def test_real_xquad_offsets_match_the_context(lang):
    docs = load_docs("xquad", lang, data_dir=SHARED_DATA)
    assert len(docs) == 1190
    assert len({d["id"] for d in docs}) == 1190
    for doc in docs:
        assert set(doc) == {"id", "question", "context", "answers", "lang"} and doc["lang"] == lang
        assert doc["answers"]["text"] and all(doc["answers"]["text"])
        for text, start in zip(doc["answers"]["text"], doc["answers"]["answer_start"]):
            assert doc["context"][start : start + len(text)] == text


def test_stripped_answers_are_refused_with_the_fix(tmp_path):
    stripped = _squad_json([
        {"id": "q1", "question": "Capital?", "answers": [{"answer_start": 0, "text": ""}]},
        {"id": "q2", "question": "Country?", "answers": [{"answer_start": 0, "text": ""}]},
    ])
    _write(tmp_path / "xquad" / "xquad.de.json", stripped)
    with pytest.raises(DataError) as err:
        load_docs("xquad", "de", data_dir=tmp_path)
    message = str(err.value)
    assert "strips QA test answers" in message and "github.com/deepmind/xquad" in message
    assert "unset XTREME_DATA_DIR" in message


def test_partly_empty_answers_name_the_question(tmp_path):
    payload = _squad_json([
        {"id": "q1", "question": "Capital?", "answers": [{"answer_start": 0, "text": "Paris"}]},
        {"id": "q2", "question": "Country?", "answers": [{"answer_start": 0, "text": ""}]},
    ])
    _write(tmp_path / "xquad" / "xquad.de.json", payload)
    with pytest.raises(DataError, match="'q2'"):
        load_docs("xquad", "de", data_dir=tmp_path)


def test_wrong_offset_is_refused(tmp_path):
    payload = _squad_json([{"id": "q1", "question": "Country?", "answers": [{"answer_start": 3, "text": "France"}]}])
    _write(tmp_path / "xquad" / "xquad.de.json", payload)
    with pytest.raises(DataError, match="not at answer_start=3"):
        load_docs("xquad", "de", data_dir=tmp_path)


def test_mlqa_test_and_dev_paths(tmp_path):
    good = _squad_json([{"id": "m1", "question": "Country?", "answers": [{"answer_start": 24, "text": "France"}]}])
    _write(tmp_path / "mlqa" / "MLQA_V1" / "test" / "test-context-de-question-de.json", good)
    _write(tmp_path / "mlqa" / "MLQA_V1" / "dev" / "dev-context-de-question-de.json", good)
    (test_doc,) = load_docs("mlqa", "de", "test", data_dir=tmp_path)
    (dev_doc,) = load_docs("mlqa", "de", "validation", data_dir=tmp_path)
    assert test_doc == dev_doc == {
        "id": "m1", "question": "Country?", "context": "Paris is the capital of France.",
        "answers": {"text": ["France"], "answer_start": [24]}, "lang": "de",
    }


def test_tydiqa_official_renamed_and_original_names(tmp_path):
    payload = _squad_json([
        {"id": "finnish--123-0", "question": "Capital?", "answers": [{"answer_start": 0, "text": "Paris"}]},
    ])
    folder = tmp_path / "tydiqa" / "tydiqa-goldp-v1.1-dev"
    _write(folder / "tydiqa-goldp-dev-finnish.json", payload)  # before download_data.sh renames it
    assert load_docs("tydiqa", "fi", data_dir=tmp_path)[0]["id"] == "finnish--123-0"
    _write(folder / "tydiqa.goldp.fi.dev.json", payload)
    assert qa.local_path(tmp_path, "tydiqa", "fi", "validation").name == "tydiqa.goldp.fi.dev.json"
    assert load_docs("tydiqa", "fi", data_dir=tmp_path)[0]["lang"] == "fi"


def test_tydiqa_file_of_another_language_is_refused(tmp_path):
    payload = _squad_json([{"id": "english--1-0", "question": "Capital?", "answers": [{"answer_start": 0, "text": "Paris"}]}])
    _write(tmp_path / "tydiqa" / "tydiqa-goldp-v1.1-dev" / "tydiqa.goldp.fi.dev.json", payload)
    with pytest.raises(DataError, match="'finnish-'"):
        load_docs("tydiqa", "fi", data_dir=tmp_path)


def test_hub_rows_are_realigned_after_the_builder_strips_the_context():
    # the hub builder strips the context but keeps the original offsets
    rows = [{
        "id": "english--9-1", "question": "Capital?", "context": "Paris is the capital of France.",
        "answers": {"text": ["France"], "answer_start": [26]},
    }]
    (doc,) = qa.from_rows(rows, "tydiqa", "en", "hub test")
    assert doc["answers"]["answer_start"] == [24]


def test_hub_rows_with_stripped_answers_are_refused():
    rows = [{"id": "x", "question": "q", "context": "c", "answers": {"text": [""], "answer_start": [0]}}]
    with pytest.raises(DataError, match="strips QA test answers"):
        qa.from_rows(rows, "mlqa", "en", "hub test")


def test_missing_file_names_the_expected_path(tmp_path):
    (tmp_path / "xquad").mkdir()
    with pytest.raises(DataError, match="xquad.de.json"):
        load_docs("xquad", "de", data_dir=tmp_path)


def _fake_hub(monkeypatch, rows: list[dict]) -> list[tuple]:
    """Replace datasets.load_dataset with an offline stand-in; returns the calls it saw."""
    import datasets

    calls: list[tuple] = []

    def load_dataset(name, config, split, revision):
        calls.append((name, config, split, revision))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def _row(qid: str, context: str = "Paris is the capital of France.", text: str = "France", start: int = 24) -> dict:
    return {"id": qid, "title": "", "question": "Country?", "context": context,
            "answers": {"text": [text], "answer_start": [start]}}


@pytest.mark.parametrize("task,lang,split,expected", [
    ("xquad", "de", "test", ("google/xtreme", "XQuAD.de", "validation", "rev1")),
    ("xquad", "ro", "test", ("google/xquad", "xquad.ro", "validation", "main")),
    ("mlqa", "hi", "test", ("google/xtreme", "MLQA.hi.hi", "test", "rev1")),
    ("mlqa", "hi", "validation", ("google/xtreme", "MLQA.hi.hi", "validation", "rev1")),
    ("tydiqa", "sw", "validation", ("google/xtreme", "tydiqa", "validation", "rev1")),
])
def test_hub_configs_and_splits(monkeypatch, task, lang, split, expected):
    calls = _fake_hub(monkeypatch, [_row("swahili--1-0"), _row("english--2-0")])
    docs = qa.hub(task, lang, split, "rev1")
    assert calls == [expected]
    if task == "tydiqa":  # one config for all languages, selected by id prefix
        assert [d["id"] for d in docs] == ["swahili--1-0"]
    else:
        assert len(docs) == 2
    assert all(d["lang"] == lang and d["answers"]["answer_start"] == [24] for d in docs)


def test_hub_is_used_without_a_data_dir(monkeypatch):
    monkeypatch.delenv("XTREME_DATA_DIR", raising=False)
    calls = _fake_hub(monkeypatch, [_row("bengali--5-1")])
    (doc,) = load_docs("tydiqa", "bn")
    assert calls[0][1:3] == ("tydiqa", "validation") and doc["id"] == "bengali--5-1"


# ------------------------------------------------------------------ damaged SQuAD JSON (issue 16)
def _squad(paragraph: dict) -> dict:
    return {"version": "1.1", "data": [{"title": "t", "paragraphs": [paragraph]}]}


_GOOD_QA = {"id": "q1", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}]}


@pytest.mark.parametrize(
    "doc, message",
    [
        (_squad({"qas": [_GOOD_QA]}), r"data\[0\]\.paragraphs\[0\]\.context is missing"),
        (_squad({"context": "Ann ran.", "qas": [{**_GOOD_QA, "answers": [{"text": "Ann", "answer_start": "0"}]}]}),
         r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]\.answer_start is str '0', expected int"),
        (_squad({"context": "Ann ran.", "qas": [{"id": "q1", "answers": []}]}),
         r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.question is missing"),
        (_squad({"context": 5, "qas": []}), r"data\[0\]\.paragraphs\[0\]\.context is int 5, expected str"),
        ({"data": ["not an article"]}, r"data\[0\] is str 'not an article', expected dict"),
    ],
    ids=["no-context", "string-answer-start", "no-question", "int-context", "bad-article"],
)
def test_a_missing_field_or_bad_type_names_file_and_json_path(tmp_path, doc, message):
    import json as _json

    path = tmp_path / "xquad" / "xquad.de.json"
    path.parent.mkdir(parents=True)
    path.write_text(_json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: {message}"):
        load_docs("xquad", "de", data_dir=tmp_path)


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"data": [}', r":1:11: not valid JSON"),
        (b'{"data": "caf\xe9"}', r":1: bytes b'\\xe9' are not UTF-8"),
        (b"  \n", r": the XQuAD file is empty"),
    ],
    ids=["bad-json", "bad-bytes", "empty"],
)
def test_bad_json_bytes_and_empty_files_are_named(tmp_path, data, message):
    path = tmp_path / "xquad" / "xquad.de.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    with pytest.raises(DataError, match=re.escape(str(path)) + message):
        load_docs("xquad", "de", data_dir=tmp_path)


def test_a_bom_before_the_real_xquad_file_is_dropped(tmp_path):
    real = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xquad" / "xquad.de.json"
    path = tmp_path / "xquad" / "xquad.de.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\xef\xbb\xbf" + real.read_bytes())
    docs = load_docs("xquad", "de", data_dir=tmp_path)
    assert len(docs) == 1190 and docs == load_docs("xquad", "de", data_dir=real.parents[1])
