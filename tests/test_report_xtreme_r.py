"""XTREME-R beside XTREME in the reports: a results folder with both versions' runs gives one
leaderboard per version, each row from its own version's runs, scored with that version's
tasks, languages and categories (the official evaluate.py ``--xtreme_version xtreme-r``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness_ext.reports.official import infer_benchmark, score_folder
from harness_ext.reports.results import all_scores, collect, run_benchmarks
from harness_ext.reports.tables import read_csv, report_tables, to_csv
from test_report_tables import FIXTURES, HAND
from xtreme_tasks.table import BENCHMARKS, XTREME_R_ADDED

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
R = BENCHMARKS["xtreme-r"]
#: one value per task (per metric), the added languages of UD-POS get another, so that
#: their presence in the XTREME-R average is visible
VALUES = {
    "xnli": {"acc": 71.0}, "xcopa": {"acc": 61.0}, "udpos": {"f1": 80.0}, "panx": {"f1": 60.0},
    "xquad": {"em": 60.0, "f1": 80.0}, "mlqa": {"em": 50.0, "f1": 70.0}, "tydiqa": {"em": 40.0, "f1": 60.0},
    "tatoeba": {"acc": 50.0}, "mewslix": {"map@20": 30.0}, "lareqa": {"map@20": 20.0},
}
UDPOS_ADDED = 30.0
#: sys-a's XTREME score, from the hand computation of test_report_tables
XTREME_SYS_A = sum(HAND.values()) / 9


def task_score(task: str) -> float:
    if task == "udpos":
        langs = R.languages["udpos"]
        return sum(UDPOS_ADDED if l in XTREME_R_ADDED["udpos"] else 80.0 for l in langs) / len(langs)
    values = VALUES[task]
    return sum(values.values()) / len(values)


def xtreme_r_run() -> dict:
    results, subtasks = {}, {R.umbrella: [R.task_group(t) for t in R.tasks]}
    for task in R.tasks:
        spec = R.spec(task)
        subtasks[R.task_group(task)] = [spec.leaf(l) for l in spec.languages]
        for lang in spec.languages:
            values = dict(VALUES[task])
            if task == "udpos" and lang in XTREME_R_ADDED["udpos"]:
                values = {"f1": UDPOS_ADDED}
            results[spec.leaf(lang)] = {"alias": spec.leaf(lang), **{f"{m},none": v for m, v in values.items()}}
    return {"results": results, "group_subtasks": subtasks, "groups": {},
            "config": {"model": "xtreme", "model_args": "system=sys-a", "limit": None},
            "date": 1767500000.0, "lm_eval_version": "0.4.13"}


@pytest.fixture()
def folder(tmp_path) -> Path:
    """sys-a's two XTREME runs (the committed fixtures) and one newer XTREME-R run of the same system."""
    shutil.copytree(FIXTURES / "sys-a", tmp_path / "sys-a")
    (tmp_path / "sys-a" / "run3").mkdir()
    (tmp_path / "sys-a" / "run3" / "results_2026-01-04T10-00-00.000000.json").write_text(json.dumps(xtreme_r_run()))
    return tmp_path


def test_runs_are_tagged_by_the_groups_they_ran():
    assert run_benchmarks(xtreme_r_run()) == ("xtreme-r",)
    assert run_benchmarks({"results": {"xtreme-xnli-en": {}}, "group_subtasks": {"xtreme_xnli": ["xtreme-xnli-en"]}}) == ("xtreme",)
    assert run_benchmarks({"results": {"xtreme-xcopa-et": {}}}) == ("xtreme-r",)  # a task only XTREME-R has
    assert run_benchmarks({"results": {"xtreme-xnli-en": {}}}) == ("xtreme",)  # shared leaves: XTREME
    both = {"results": {}, "group_subtasks": {"xtreme": [], "xtreme-r": []}}
    assert run_benchmarks(both) == ("xtreme", "xtreme-r")


def test_each_row_is_scored_under_its_own_benchmark(folder):
    scores = all_scores(collect([folder]))
    assert set(scores) == {"sys-a", "sys-a@xtreme-r"}
    xtreme, r = scores["sys-a"], scores["sys-a@xtreme-r"]
    assert (xtreme.benchmark, r.benchmark) == ("xtreme", "xtreme-r") and xtreme.name == r.name == "sys-a"
    # the XTREME row ignores the newer XTREME-R run (its XNLI is 71 everywhere): numbers unchanged
    assert xtreme.xtreme == pytest.approx(XTREME_SYS_A)
    expected = {task: task_score(task) for task in R.tasks}
    assert r.task_scores == pytest.approx(expected)
    assert r.xtreme == pytest.approx(sum(expected.values()) / 10)
    assert r.categories == pytest.approx({
        "classification": (expected["xnli"] + expected["xcopa"]) / 2,
        "structured_prediction": (expected["udpos"] + expected["panx"]) / 2,
        "qa": (expected["xquad"] + expected["mlqa"] + expected["tydiqa"]) / 3,
        "retrieval": (expected["tatoeba"] + expected["mewslix"]) / 2,  # LAReQA is in no category
        "multi_choice": expected["xcopa"],
    })
    assert "pawsx" not in r.tasks and "xcopa" not in xtreme.tasks


def test_an_xtreme_r_row_needs_all_ten_tasks(folder):
    run = xtreme_r_run()
    run["results"] = {k: v for k, v in run["results"].items() if not k.startswith("xtreme-lareqa-")}
    (folder / "sys-a" / "run3" / "results_2026-01-04T10-00-00.000000.json").write_text(json.dumps(run))
    r = all_scores(collect([folder]))["sys-a@xtreme-r"]
    assert r.xtreme is None and r.missing == ("lareqa",) and r.status() == "incomplete: no lareqa"
    assert r.categories["retrieval"] is not None  # its categories do not need LAReQA


def test_an_xtreme_r_partial_cell_is_explained_as_xtreme_r(folder):
    run = xtreme_r_run()
    run["results"] = {k: v for k, v in run["results"].items() if k != "xtreme-xcopa-et"}
    (folder / "sys-a" / "run3" / "results_2026-01-04T10-00-00.000000.json").write_text(json.dumps(run))
    board = {t.name: t for t in report_tables(all_scores(collect([folder])))}["leaderboard_xtreme-r"]
    marks = [n for n in board.notes if n.startswith("†")]
    assert len(marks) == 1 and "not an XTREME-R score (XTREME-R never averages over fewer)" in marks[0], board.notes


def test_report_has_one_leaderboard_per_benchmark(folder):
    tables = {t.name: t for t in report_tables(all_scores(collect([folder])))}
    assert {"leaderboard", "leaderboard_xtreme-r", "languages_xnli", "languages_xtreme-r_xcopa",
            "languages_xtreme-r_udpos"} <= set(tables)
    board = read_csv(to_csv(tables["leaderboard_xtreme-r"]))
    assert list(board[0])[:8] == ["System", "XTREME-R", "Classification", "Struct. pred.", "QA", "Retrieval",
                                  "Multi-choice", "XNLI"]
    assert float(board[0]["XTREME-R"]) == pytest.approx(sum(task_score(t) for t in R.tasks) / 10)
    udpos = tables["languages_xtreme-r_udpos"]
    assert udpos.header[3:] == list(R.languages["udpos"])  # the added languages are official here
    assert float(read_csv(to_csv(tables["leaderboard"]))[0]["XTREME"]) == pytest.approx(XTREME_SYS_A)


def test_report_command_takes_the_benchmark(folder, capsys):
    from harness_ext.cli import main

    assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "### XTREME leaderboard" in out and "### XTREME-R leaderboard" in out
    assert main(["report", str(folder), "--benchmark", "xtreme-r"]) == 0
    out = capsys.readouterr().out
    assert "### XTREME-R leaderboard" in out and "### XTREME leaderboard" not in out
    assert main(["report", str(folder), "--benchmark", "xtreme-q"]) == 2
    assert "--benchmark 'xtreme-q': unknown benchmark version; use one of xtreme, xtreme-r" in capsys.readouterr().err


def test_score_xcopa_predictions_folder_as_xtreme_r(tmp_path):
    """Official layout xcopa/test-<lang>.jsonl; labels from the real XCOPA test files."""
    preds, labels = tmp_path / "pred" / "xcopa", tmp_path / "labels" / "xcopa"
    preds.mkdir(parents=True)
    labels.mkdir(parents=True)
    expected = []
    for lang in R.languages["xcopa"]:
        rows = [json.loads(l) for l in (SHARED / "xcopa" / lang / f"test.{lang}.jsonl").read_text().splitlines() if l]
        (labels / f"test-{lang}.jsonl").write_text("".join(json.dumps({"label": r["label"]}) + "\n" for r in rows))
        (preds / f"test-{lang}.jsonl").write_text("".join('{"label": 0}\n' for _ in rows))
        expected.append(100.0 * sum(r["label"] == 0 for r in rows) / len(rows))
    assert infer_benchmark(tmp_path / "pred") == "xtreme-r"
    report = score_folder(tmp_path / "pred", tmp_path / "labels")
    assert report.benchmark == "xtreme-r"
    assert report.tasks["xcopa"].score == pytest.approx(sum(expected) / len(expected))
    assert report.xtreme_score is None and "xnli" in report.missing
    assert report.categories == {"multi_choice": pytest.approx(sum(expected) / len(expected))}
    (preds / "test-et.jsonl").write_text('{"label": 0}\nnot json\n')
    from harness_ext.reports.official import ReportError

    with pytest.raises(ReportError, match=r"test-et.jsonl:2: not a JSON line"):
        score_folder(tmp_path / "pred", tmp_path / "labels")


def test_score_data_dir_renders_xcopa_gold_from_the_test_data(tmp_path, capsys):
    """``xtreme-eval score --data-dir``: XCOPA's labels come from the local test files, as the task read them."""
    from harness_ext.cli import main

    preds = tmp_path / "pred" / "xcopa"
    preds.mkdir(parents=True)
    expected = []
    for lang in R.languages["xcopa"]:
        rows = [json.loads(l) for l in (SHARED / "xcopa" / lang / f"test.{lang}.jsonl").read_text().splitlines() if l]
        (preds / f"test-{lang}.jsonl").write_text("".join('{"label": 1}\n' for _ in rows))
        expected.append(100.0 * sum(r["label"] == 1 for r in rows) / len(rows))
    capsys.readouterr()
    assert main(["score", "--predictions", str(tmp_path / "pred"), "--data-dir", str(SHARED), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"]["xcopa"]["score"] == pytest.approx(sum(expected) / len(expected))
    # XTREME-R's own download zeroes the test labels: no gold, one line, exit 2
    zeroed = tmp_path / "zeroed" / "xcopa"
    zeroed.mkdir(parents=True)
    for lang in R.languages["xcopa"]:
        rows = (SHARED / "xcopa" / lang / f"test.{lang}.jsonl").read_text().splitlines()
        (zeroed / f"test-{lang}.jsonl").write_text("".join(json.dumps({**json.loads(l), "label": 0}) + "\n" for l in rows if l))
    assert main(["score", "--predictions", str(tmp_path / "pred"), "--data-dir", str(tmp_path / "zeroed")]) == 2
    assert "XCOPA test gold is not in the data" in capsys.readouterr().err


def test_score_data_dir_renders_mewslix_gold(tmp_path):
    from harness_ext.reports.labels import write_labels
    from harness_ext.reports.official import ReportError
    from helpers import mewslix_files as files

    root = files.write_sharded(tmp_path / "data")
    preds = tmp_path / "pred" / "mewslix"
    preds.mkdir(parents=True)
    (preds / "test-de.json").write_text("{}")
    (written,) = write_labels(root, tmp_path / "pred", tmp_path / "labels")
    assert written == tmp_path / "labels" / "mewslix" / "test-de.json"
    gold = json.loads(written.read_text())
    assert list(gold.values()) == [[files.MENTIONS["de"][1]]]
    blanked = files.write_sharded(tmp_path / "blanked", blank_labels=True)
    with pytest.raises(ReportError, match="Mewsli-X test gold is not in the data"):
        write_labels(blanked, tmp_path / "pred", tmp_path / "labels2")
