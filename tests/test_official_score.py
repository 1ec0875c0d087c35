"""The official scorer on XTREME's own mock submission, and its error messages.

Expected numbers: ../shared/data/README.md (the official evaluate.py on xtreme_mock);
precision / recall of panx, udpos and bucc2018 from the official evaluate_test.py
(TASK2AVG_SCORES). Category means are hand-computed from those numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness_ext.reports.official import ReportError, score_command, score_folder
from xtreme_tasks.table import TASK_ORDER

MOCK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xtreme_mock"
PREDICTIONS, LABELS = MOCK / "predictions", MOCK / "labels"

ACCURACY = {"pawsx": 51.42857142857143, "xnli": 30.666666666666668, "tatoeba": 53.611111111111114}
F1 = {"panx": 57.50793650793652, "udpos": 70.21746048354693, "bucc2018": 55.0}
PRECISION_RECALL = {  # evaluate_test.py
    "panx": (54.729166666666664, 62.750000000000014),
    "udpos": (71.02232625883823, 69.54982073976082),
    "bucc2018": (55.0, 55.0),
}
EM_F1 = {
    "xquad": (77.27272727272727, 79.9586776859504),
    "mlqa": (57.142857142857146, 81.76870748299321),
    "tydiqa": (88.88888888888889, 97.22222222222223),
}
OVERALL = 62.17319850507246
TOL = 1e-6


@pytest.fixture(scope="module")
def mock_report():
    return score_folder(PREDICTIONS, LABELS)


def test_every_official_task_number(mock_report):
    tasks = mock_report.tasks
    assert list(tasks) == list(TASK_ORDER)
    for name, value in ACCURACY.items():
        assert tasks[name].averages["acc"] == pytest.approx(value, abs=TOL), name
        assert tasks[name].score == pytest.approx(value, abs=TOL), name
    for name, value in F1.items():
        assert tasks[name].averages["f1"] == pytest.approx(value, abs=TOL), name
        assert tasks[name].score == pytest.approx(value, abs=TOL), name
        precision, recall = PRECISION_RECALL[name]
        assert tasks[name].averages["precision"] == pytest.approx(precision, abs=TOL), name
        assert tasks[name].averages["recall"] == pytest.approx(recall, abs=TOL), name
    for name, (em, f1) in EM_F1.items():
        assert tasks[name].averages["em"] == pytest.approx(em, abs=TOL), name
        assert tasks[name].averages["f1"] == pytest.approx(f1, abs=TOL), name
        assert tasks[name].score == pytest.approx((em + f1) / 2, abs=TOL), name


def test_xtreme_score_and_categories(mock_report):
    assert mock_report.complete and mock_report.missing == ()
    assert mock_report.xtreme_score == pytest.approx(OVERALL, abs=TOL)
    qa = [(em + f1) / 2 for em, f1 in EM_F1.values()]
    assert mock_report.categories == pytest.approx({
        "classification": (ACCURACY["xnli"] + ACCURACY["pawsx"]) / 2,
        "structured_prediction": (F1["udpos"] + F1["panx"]) / 2,
        "qa": sum(qa) / 3,
        "retrieval": (F1["bucc2018"] + ACCURACY["tatoeba"]) / 2,
    }, abs=TOL)
    # the mock also holds XTREME-R's Mewsli-X: not an XTREME task, named as XTREME-R's
    assert mock_report.benchmark == "xtreme" and len(mock_report.notes) == 1
    assert "ignored folder(s) mewslix (not XTREME tasks; mewslix: XTREME-R (--benchmark xtreme-r))" in mock_report.notes[0]


def test_per_language_scores_cover_every_language(mock_report):
    udpos = mock_report.tasks["udpos"]
    assert len(udpos.per_language) == 33
    assert set(udpos.per_language["en"]) == {"f1", "precision", "recall", "token_acc"}
    assert len(mock_report.tasks["tatoeba"].per_language) == 36
    assert len(mock_report.tasks["panx"].per_language) == 40


def test_subset_of_tasks_is_incomplete_not_averaged():
    report = score_folder(PREDICTIONS, LABELS, tasks=["xnli,pawsx", "mlqa"])
    assert list(report.tasks) == ["xnli", "pawsx", "mlqa"]
    assert not report.complete
    assert report.xtreme_score is None
    assert set(report.missing) == set(TASK_ORDER) - {"xnli", "pawsx", "mlqa"}
    assert report.categories == pytest.approx({"classification": (ACCURACY["xnli"] + ACCURACY["pawsx"]) / 2})
    as_dict = report.to_dict()
    assert as_dict["complete"] is False and as_dict["xtreme_score"] is None
    assert as_dict["tasks"]["mlqa"]["averages"]["em"] == pytest.approx(EM_F1["mlqa"][0], abs=TOL)


# ------------------------------------------------------------------ folders built from the mock


def _layout(tmp_path: Path, tasks=TASK_ORDER) -> tuple[Path, Path]:
    """predictions/ and labels/ under tmp_path whose task folders link to the mock data."""
    pred, labels = tmp_path / "predictions", tmp_path / "labels"
    for root, source in ((pred, PREDICTIONS), (labels, LABELS)):
        root.mkdir()
        for task in tasks:
            (root / task).symlink_to(source / task, target_is_directory=True)
    return pred, labels


def _editable(root: Path, task: str) -> Path:
    """Turn a linked task folder into a real one of per-file links, so one file can be replaced."""
    source = (root / task).resolve()
    (root / task).unlink()
    (root / task).mkdir()
    for file in source.iterdir():
        (root / task / file.name).symlink_to(file)
    return root / task


def _replace(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text, encoding="utf-8")


def test_missing_task_folders_are_reported(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("xnli", "udpos", "tatoeba"))
    report = score_folder(pred, labels)
    assert list(report.tasks) == ["xnli", "udpos", "tatoeba"]
    assert report.missing == ("pawsx", "panx", "xquad", "mlqa", "tydiqa", "bucc2018")
    assert report.xtreme_score is None
    assert report.tasks["udpos"].score == pytest.approx(F1["udpos"], abs=TOL)

    assert score_command(pred, labels, None, as_json=False) == 0
    out = capsys.readouterr().out
    assert "XTREME score: incomplete, 6 of 9 tasks not scored" in out
    assert "pawsx, panx, xquad, mlqa, tydiqa, bucc2018" in out


def test_score_command_table_and_json(capsys):
    assert score_command(PREDICTIONS, LABELS, None, as_json=False) == 0
    out = capsys.readouterr().out
    assert "XTREME score: 62.17" in out
    assert "TyDiQA-GoldP" in out and "EM 88.89" in out

    assert score_command(PREDICTIONS, LABELS, ["tydiqa"], as_json=True) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["complete"] is False and data["xtreme_score"] is None
    assert data["tasks"]["tydiqa"]["score"] == pytest.approx(sum(EM_F1["tydiqa"]) / 2, abs=TOL)
    assert data["tasks"]["tydiqa"]["score_metrics"] == ["em", "f1"]

    assert score_command(PREDICTIONS, LABELS, None, as_json=True) == 0
    assert json.loads(capsys.readouterr().out)["xtreme_score"] == pytest.approx(OVERALL, abs=TOL)


def test_unanswered_questions_score_zero_with_a_note(tmp_path):
    pred, labels = _layout(tmp_path, tasks=("xquad",))
    folder = _editable(pred, "xquad")
    _replace(folder / "test-en.json", "{}")
    (folder / "test-ro.json").write_text("{}", encoding="utf-8")  # not part of the XTREME score
    task = score_folder(pred, labels).tasks["xquad"]
    assert task.per_language["en"] == {"em": 0.0, "f1": 0.0}
    assert "ro" not in task.per_language
    assert any("questions have no prediction and score 0" in note and "test-en.json" in note for note in task.notes)
    assert any("ignored test-ro.json" in note for note in task.notes)


# ------------------------------------------------------------------ bad input: exit 2, file and fix named


def _fails(capsys, pred, labels, *needles, tasks=None) -> str:
    assert score_command(pred, labels, tasks, as_json=False) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    for needle in needles:
        assert needle in captured.err
    return captured.err


def test_missing_folder(tmp_path, capsys):
    _fails(capsys, tmp_path / "nope", LABELS, str(tmp_path / "nope"), "does not exist", "one subfolder per task")
    _fails(capsys, PREDICTIONS, tmp_path / "nolabels", "labels folder", "does not exist")
    (tmp_path / "empty").mkdir()
    _fails(capsys, tmp_path / "empty", LABELS, "holds no task folders")


def test_language_with_predictions_but_no_labels(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("xnli",))
    (_editable(labels, "xnli") / "test-de.tsv").unlink()
    _fails(capsys, pred, labels, "predictions without labels for xnli", str(labels / "xnli" / "test-de.tsv"),
           "point --labels at")


def test_task_with_predictions_but_no_labels(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("xnli",))
    (labels / "xnli").unlink()
    _fails(capsys, pred, labels, "predictions for xnli but no labels", str(labels / "xnli"))


def test_language_without_predictions(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("pawsx",))
    (_editable(pred, "pawsx") / "test-ko.tsv").unlink()
    _fails(capsys, pred, labels, "pawsx has no predictions for 1 of its 7 languages (ko)",
           str(pred / "pawsx" / "test-ko.tsv"), "--tasks")


def test_mismatched_line_counts(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("xnli",))
    path = _editable(pred, "xnli") / "test-de.tsv"
    lines = (LABELS / "xnli" / "test-de.tsv").read_text(encoding="utf-8").splitlines()
    _replace(path, "\n".join(lines[:-1]) + "\n")
    _fails(capsys, pred, labels, f"{path} has {len(lines) - 1} lines but", "one predicted label per line")


def test_tag_sentence_length_mismatch_names_file_and_sentence(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("udpos",))
    path = _editable(pred, "udpos") / "test-en.tsv"
    lines = (PREDICTIONS / "udpos" / "test-en.tsv").read_text(encoding="utf-8").splitlines()
    _replace(path, "\n".join(lines[1:]) + "\n")  # first sentence one tag short
    _fails(capsys, pred, labels, str(path), "sentence 0:", "predicted tags for", "one tag per word")


def test_tag_sentence_count_mismatch(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("panx",))
    path = _editable(pred, "panx") / "test-de.tsv"
    text = (PREDICTIONS / "panx" / "test-de.tsv").read_text(encoding="utf-8")
    _replace(path, text.strip().rsplit("\n\n", 1)[0] + "\n")  # drop the last sentence
    _fails(capsys, pred, labels, str(path), "sentences but", "blank line after each sentence")


def test_unparsable_or_wrongly_shaped_json(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("mlqa",))
    path = _editable(pred, "mlqa") / "test-zh.json"
    _replace(path, '{"id": "answer",')
    _fails(capsys, pred, labels, f"{path} is not valid JSON", "line 1", "one JSON object")
    _replace(path, '["answer"]')
    _fails(capsys, pred, labels, str(path), "not a list")
    _replace(path, '{"q": 3}')
    _fails(capsys, pred, labels, str(path), "question 'q' is a int", "write the answer text")


def test_broken_labels_json(tmp_path, capsys):
    pred, labels = _layout(tmp_path, tasks=("tydiqa",))
    path = _editable(labels, "tydiqa") / "test-fi.json"
    _replace(path, '{"data": [{"title": "no paragraphs"}]}')
    _fails(capsys, pred, labels, str(path), "SQuAD v1.1 JSON")


def test_bad_task_selection(tmp_path, capsys):
    _fails(capsys, PREDICTIONS, LABELS, "unknown task(s) xcopa", "xnli, pawsx", tasks=["xnli", "xcopa"])
    pred, labels = _layout(tmp_path, tasks=("xnli",))
    _fails(capsys, pred, labels, "no predictions for tatoeba", str(pred / "tatoeba"), tasks=["tatoeba"])
    with pytest.raises(ReportError):
        score_folder(pred, labels, tasks=["tatoeba"])
