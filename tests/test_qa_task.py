"""SpanTask: requests, per-example scores, aggregation, official numbers, submission files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness_ext.metrics import squad as squad_metrics
from harness_ext.reports.submission import read_qa_predictions
from harness_ext.tasks.span import SpanTask
from xtreme_tasks.table import get_task

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MOCK = SHARED_DATA / "xtreme_mock"

#: the official evaluate.py on xtreme_mock (shared/data/README.md)
OFFICIAL_MOCK = {
    "xquad": (77.27272727272727, 79.9586776859504),
    "mlqa": (57.142857142857146, 81.76870748299321),
    "tydiqa": (88.88888888888889, 97.22222222222223),
}


def make_task(task: str, lang: str, data_dir: Path = SHARED_DATA, **metadata) -> SpanTask:
    return SpanTask(config={"task": f"xtreme-{task}-{lang}", "metadata": {"data_dir": str(data_dir), **metadata}})


@pytest.fixture(scope="module")
def mock_layout(tmp_path_factory) -> Path:
    """The xtreme_mock label files placed where the official download script puts each task's files."""
    root = tmp_path_factory.mktemp("xtreme_data")
    places = {
        "xquad": lambda lang: root / "xquad" / f"xquad.{lang}.json",
        "mlqa": lambda lang: root / "mlqa" / "MLQA_V1" / "test" / f"test-context-{lang}-question-{lang}.json",
        "tydiqa": lambda lang: root / "tydiqa" / "tydiqa-goldp-v1.1-dev" / f"tydiqa.goldp.{lang}.dev.json",
    }
    for name, place in places.items():
        for lang in get_task(name).languages:
            target = place(lang)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((MOCK / "labels" / name / f"test-{lang}.json").read_bytes())
    return root


def score(task: SpanTask, docs: list[dict], predictions: dict[str, str]) -> tuple[float, float]:
    """Aggregated (EM, F1) of the task over ``docs`` (a missing prediction answers "")."""
    items = [task.process_results(doc, [predictions.get(doc["id"], "")]) for doc in docs]
    aggregate = task.aggregation()
    return aggregate["em"]([i["em"] for i in items]), aggregate["f1"]([i["f1"] for i in items])


@pytest.fixture(autouse=True)
def _no_predictions_dir(monkeypatch):
    monkeypatch.delenv("XTREME_PREDICTIONS_DIR", raising=False)


@pytest.mark.parametrize("lang", get_task("xquad").all_languages)
def test_gold_answers_score_100_on_real_xquad(lang):
    task = make_task("xquad", lang)
    docs = list(task.test_docs())
    assert len(docs) == 1190
    # feed back the LAST gold answer, so max-over-golds is exercised where there are several
    em, f1 = score(task, docs, {d["id"]: d["answers"]["text"][-1] for d in docs})
    assert (em, f1) == (100.0, 100.0)


def test_requests_are_question_context_pairs():
    task = make_task("xquad", "de")
    doc = task.test_docs()[0]
    (instance,) = task.construct_requests(doc, "", metadata=("xtreme-xquad-de", 0, 1))
    assert instance.request_type == "extract_span"
    assert instance.arguments[:2] == (doc["question"], doc["context"])
    assert instance.arguments[2]["num_fewshot"] == 0  # the PromptContext prompted LLMs read
    assert task.doc_to_target(doc) == doc["answers"]["text"]


def test_wrong_and_partial_answers_on_real_xquad():
    task = make_task("xquad", "en")
    docs = list(task.test_docs())[:50]
    predictions = {d["id"]: "the " + d["answers"]["text"][0] + " extra" for d in docs}
    em, f1 = score(task, docs, predictions)
    expected_f1 = sum(squad_metrics.f1(predictions[d["id"]], d["answers"]["text"]) for d in docs) / len(docs)
    assert em < 100.0 and 0.0 < f1 < 100.0 and math.isclose(f1, expected_f1)


@pytest.mark.parametrize("name", sorted(OFFICIAL_MOCK))
def test_official_numbers_on_xtreme_mock(name, mock_layout):
    """Labels read by the loaders, scored per language by SpanTask, averaged = official evaluate.py."""
    ems, f1s = [], []
    for lang in get_task(name).languages:
        task = make_task(name, lang, data_dir=mock_layout)
        docs = list(task.test_docs())
        predictions = json.loads((MOCK / "predictions" / name / f"test-{lang}.json").read_text(encoding="utf-8"))
        em, f1 = score(task, docs, predictions)
        ems.append(em)
        f1s.append(f1)
    expected_em, expected_f1 = OFFICIAL_MOCK[name]
    assert math.isclose(sum(ems) / len(ems), expected_em, rel_tol=1e-12)
    assert math.isclose(sum(f1s) / len(f1s), expected_f1, rel_tol=1e-12)


def test_mlqa_uses_its_language_normalisation(mock_layout):
    task = make_task("mlqa", "es", data_dir=mock_layout)
    doc = {"id": "m", "question": "q", "context": "c", "lang": "es", "answers": {"text": ["la casa"], "answer_start": [0]}}
    # "la" is a Spanish article (MLQA drops it); SQuAD v1.1 would not
    assert task.process_results(doc, ["casa"])["f1"] == 100.0
    xquad = make_task("xquad", "es")
    assert xquad.process_results(doc, ["casa"])["f1"] < 100.0


def test_predictions_are_written_in_the_submission_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("XTREME_PREDICTIONS_DIR", str(tmp_path / "env"))
    task = make_task("xquad", "th")
    docs = list(task.test_docs())
    predictions = {d["id"]: d["answers"]["text"][0] for d in docs}
    score(task, docs, predictions)
    written = tmp_path / "env" / "xquad" / "test-th.json"
    assert read_qa_predictions(written) == predictions
    assert json.loads(written.read_text(encoding="utf-8")) == predictions  # plain {id: answer}
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")], "no temporary files left"

    # task metadata wins over the environment
    meta_task = make_task("xquad", "th", predictions_dir=str(tmp_path / "meta"))
    score(meta_task, docs[:3], predictions)
    assert len(read_qa_predictions(tmp_path / "meta" / "xquad" / "test-th.json")) == 3


def test_no_predictions_without_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = make_task("xquad", "vi")
    score(task, list(task.test_docs())[:5], {})
    assert list(tmp_path.iterdir()) == []
