"""TagTask: requests, per-sentence items, corpus-level aggregation, official numbers on xtreme_mock."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness_ext.tasks.tag import TagTask
from harness_ext.reports.official import read_tags
from harness_ext.tasks.prompting import PromptContext
from xtreme_tasks.table import TASKS, get_task

MOCK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xtreme_mock"
#: the official evaluate.py on xtreme_mock (shared/data/README.md): mean over languages of seqeval F1
OFFICIAL_MOCK = {"udpos": 70.21746048354693, "panx": 57.50793650793652}


read_tag = read_tags  # the official scorer's reader of one-tag-per-line files


@pytest.fixture(scope="module")
def mock_layout(tmp_path_factory) -> Path:
    """The mock gold tags in the official layout (words are placeholders: only tags are scored)."""
    root = tmp_path_factory.mktemp("xtreme_data")
    for task in ("udpos", "panx"):
        (root / task).mkdir()
        for lang in get_task(task).languages:
            gold = read_tag(MOCK / "labels" / task / f"test-{lang}.tsv")
            blocks = ["\n".join(f"w{i}\t{t}" for i, t in enumerate(tags)) for tags in gold]
            (root / task / f"test-{lang}.tsv").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return root


def make_task(task: str, lang: str, data_dir: Path) -> TagTask:
    return TagTask(config={"task": f"xtreme-{task}-{lang}", "metadata": {"data_dir": str(data_dir)}})


def scores(task: TagTask, predictions: list[list[str]]) -> dict[str, float]:
    docs = list(task.test_docs())
    assert len(docs) == len(predictions)
    items = [task.process_results(doc, [pred]) for doc, pred in zip(docs, predictions)]
    # like lm-eval, aggregate only the metrics the documents report ("unparsable" only for text2text)
    return {name: agg([item[name] for item in items]) for name, agg in task.aggregation().items() if name in items[0]}


@pytest.mark.parametrize("name", ["udpos", "panx"])
def test_official_numbers_on_xtreme_mock(mock_layout, name):
    per_language = []
    for lang in get_task(name).languages:
        task = make_task(name, lang, mock_layout)
        predicted = read_tag(MOCK / "predictions" / name / f"test-{lang}.tsv")
        per_language.append(scores(task, predicted))
    f1 = sum(s["f1"] for s in per_language) / len(per_language)
    assert f1 == pytest.approx(OFFICIAL_MOCK[name], abs=1e-9)
    assert all(set(s) == set(TASKS[name].metrics) for s in per_language)


@pytest.mark.parametrize("name", ["udpos", "panx"])
def test_gold_as_prediction_scores_100(mock_layout, name):
    task = make_task(name, "de", mock_layout)
    result = scores(task, [doc["tags"] for doc in task.test_docs()])
    assert all(value == pytest.approx(100.0) for value in result.values())


def test_requests_and_metric_names(mock_layout):
    task = make_task("panx", "en", mock_layout)
    doc = task.test_docs()[0]
    (request,) = task.construct_requests(doc, "", metadata=("xtreme-panx-en", 0, 1))
    assert request.request_type == "tag"
    assert request.args[:3] == (" ".join(doc["words"]), tuple(doc["words"]), TASKS["panx"].labels)
    assert isinstance(request.args[3], PromptContext) and request.args[3]["num_fewshot"] == 0  # for prompted LLMs
    assert set(task.aggregation()) == {"f1", "precision", "recall", "unparsable"}
    assert set(make_task("udpos", "en", mock_layout).aggregation()) == {"f1", "token_acc", "unparsable"}


def test_panx_is_scored_over_the_corpus_not_averaged_per_sentence(tmp_path):
    (tmp_path / "panx").mkdir()
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    (tmp_path / "panx" / "test-en.tsv").write_text(
        "\n\n".join("\n".join(f"w\t{t}" for t in s) for s in gold) + "\n", encoding="utf-8"
    )
    task = make_task("panx", "en", tmp_path)
    # sentence 1: 1 of 2 entities found (F1 66.7); sentence 2: 1 of 1 (F1 100); a per-sentence mean would be 83.3
    result = scores(task, [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG"]])
    assert result["precision"] == pytest.approx(100.0)
    assert result["recall"] == pytest.approx(200 / 3)
    assert result["f1"] == pytest.approx(80.0)


def test_a_prediction_of_the_wrong_length_is_an_error(mock_layout):
    task = make_task("udpos", "en", mock_layout)
    doc = task.test_docs()[0]
    with pytest.raises(ValueError, match=r"tags predicted for \d+ words"):
        task.process_results(doc, [doc["tags"][:-1]])
