"""Export of samples to the official submission layout, checked by scoring the export
with the official scorer (harness_ext.reports.official) against labels in that layout."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness_ext.metrics.squad import squad_scores
from harness_ext.metrics.tagging import span_prf
from harness_ext.reports.export import export_predictions
from harness_ext.reports.official import ReportError, score_folder
from harness_ext.reports.results import collect
from test_report_efficacy import write_run
from xtreme_tasks.table import TASKS

ANSWERS = ["Paris", "the cat", "1999", "a red house", "Berlin"]


def make_system(root: Path, labels: Path, system: str = "sys") -> dict[str, dict[str, dict[str, float]]]:
    """PAWS-X, PAN-X and XQuAD (every official language, + XQuAD ro) with their label files; returns expected scores."""
    rng = random.Random(0)
    expected: dict[str, dict[str, dict[str, float]]] = {}
    # PAWS-X
    rows, metrics = {}, {}
    for lang in TASKS["pawsx"].languages:
        golds = [rng.choice("01") for _ in range(7)]
        preds = [g if rng.random() < 0.6 else "10"[int(g)] for g in golds]
        rows[lang] = [{"doc_id": i, "doc": {"id": f"p-{lang}-{i}"}, "acc": [p, g]} for i, (p, g) in enumerate(zip(preds, golds))]
        metrics[lang] = {"acc": 100.0 * sum(p == g for p, g in zip(preds, golds)) / len(golds)}
        (labels / "pawsx").mkdir(parents=True, exist_ok=True)
        (labels / "pawsx" / f"test-{lang}.tsv").write_text("".join(g + "\n" for g in golds))
    write_run(root / system / "pawsx", system, "pawsx", rows, metrics)
    expected["pawsx"] = metrics
    # PAN-X
    tags = TASKS["panx"].labels
    rows, metrics = {}, {}
    for lang in TASKS["panx"].languages:
        golds = [[rng.choice(tags) for _ in range(rng.randint(1, 5))] for _ in range(4)]
        preds = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in golds]
        rows[lang] = [{"doc_id": i, "doc": {"id": f"x-{lang}-{i}"}, "f1": [g, p]} for i, (g, p) in enumerate(zip(golds, preds))]
        metrics[lang] = span_prf(golds, preds)
        (labels / "panx").mkdir(parents=True, exist_ok=True)
        (labels / "panx" / f"test-{lang}.tsv").write_text("".join("".join(t + "\n" for t in g) + "\n" for g in golds))
    write_run(root / system / "panx", system, "panx", rows, metrics)
    expected["panx"] = metrics
    # XQuAD (+ ro, which is not exported)
    rows, metrics = {}, {}
    for lang in TASKS["xquad"].all_languages:
        qas, golds, preds = [], {}, {}
        for i in range(5):
            qid = f"q-{lang}-{i}"
            golds[qid] = [ANSWERS[i]]
            preds[qid] = ANSWERS[i] if rng.random() < 0.5 else ANSWERS[(i + 1) % 5]
            qas.append({"id": qid, "question": "?", "answers": [{"text": ANSWERS[i], "answer_start": 0}]})
        scores = squad_scores(preds, golds)
        rows[lang] = [{"doc_id": i, "doc": {"id": qid}, "em": [qid, preds[qid], 0.0], "f1": 0.0}
                      for i, qid in enumerate(golds)]
        metrics[lang] = scores
        (labels / "xquad").mkdir(parents=True, exist_ok=True)
        squad = {"data": [{"paragraphs": [{"context": " ".join(ANSWERS), "qas": qas}]}]}
        (labels / "xquad" / f"test-{lang}.json").write_text(json.dumps(squad))
    write_run(root / system / "xquad", system, "xquad", rows, metrics)
    expected["xquad"] = {l: v for l, v in metrics.items() if l != "ro"}
    return expected


def test_export_is_scored_by_the_official_scorer_as_the_results_say(tmp_path):
    expected = make_system(tmp_path / "runs", tmp_path / "labels")
    done = export_predictions(collect([tmp_path / "runs"]), tmp_path / "submission")
    assert {p.parent.name for p in done.written} == {"pawsx", "panx", "xquad"}
    assert not (tmp_path / "submission" / "xquad" / "test-ro.json").exists()
    assert any(what == "xquad" and "ro" in why for what, why in done.not_exported)
    report = score_folder(tmp_path / "submission", tmp_path / "labels")
    for task, per_language in expected.items():
        for lang, metrics in per_language.items():
            for metric, value in metrics.items():
                assert report.tasks[task].per_language[lang][metric] == pytest.approx(value), (task, lang, metric)


def test_limited_runs_and_retrieval_are_not_exported_with_reasons(tmp_path):
    rows = {lang: [{"doc_id": 0, "doc": {"id": "a"}, "acc": ["1", "1"]}] for lang in TASKS["pawsx"].languages}
    metrics = {lang: {"acc": 100.0} for lang in TASKS["pawsx"].languages}
    write_run(tmp_path / "runs" / "s" / "pawsx", "s", "pawsx", rows, metrics, limit=1, original={"de": 2000})
    write_run(tmp_path / "runs" / "s" / "tatoeba", "s", "tatoeba", {}, {lang: {"acc": 50.0} for lang in TASKS["tatoeba"].languages})
    done = export_predictions(collect([tmp_path / "runs"]), tmp_path / "sub")
    reasons = dict(done.not_exported)
    assert "--limit" in reasons["xtreme-pawsx-de"] and "no samples file" in reasons["xtreme-tatoeba-de"]
    assert len(done.written) == len(TASKS["pawsx"].languages) - 1
    again = export_predictions(collect([tmp_path / "runs"]), tmp_path / "sub2", allow_partial=True)
    assert len(again.written) == len(TASKS["pawsx"].languages)


def test_export_needs_one_system(tmp_path):
    for name in ("a", "b"):
        write_run(tmp_path / name / "pawsx", name, "pawsx", {"de": [{"doc_id": 0, "acc": ["1", "1"]}]}, {"de": {"acc": 100.0}})
    with pytest.raises(ReportError, match="choose one with --system"):
        export_predictions(collect([tmp_path]), tmp_path / "out")
    done = export_predictions(collect([tmp_path]), tmp_path / "out", system="b")
    assert [p.name for p in done.written] == ["test-de.tsv"]
    assert any("not in the results" in why for _, why in done.not_exported)


def test_export_of_named_tasks_that_writes_less_exits_non_zero(tmp_path, capsys):
    """Issue 22: ``--tasks pawsx`` with one language run under --limit wrote the others and exited 0."""
    from harness_ext.cli import main

    rows = {lang: [{"doc_id": 0, "doc": {"id": "a"}, "acc": ["1", "1"]}] for lang in TASKS["pawsx"].languages}
    metrics = {lang: {"acc": 100.0} for lang in TASKS["pawsx"].languages}
    write_run(tmp_path / "runs" / "s" / "pawsx", "s", "pawsx", rows, metrics, limit=1, original={"de": 2000})
    assert main(["export", str(tmp_path / "runs"), "--out", str(tmp_path / "sub"), "--tasks", "pawsx"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --tasks pawsx: not every language of pawsx was exported")
    assert main(["export", str(tmp_path / "runs"), "--out", str(tmp_path / "sub2"), "--tasks", "pawsx",
                 "--allow-partial"]) == 0
