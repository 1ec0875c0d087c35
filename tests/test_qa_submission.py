"""Writing QA predictions in the official submission layout."""

from __future__ import annotations

import json
import os

import pytest

from harness_ext.reports import submission


def test_layout_and_round_trip(tmp_path):
    predictions = {"56beb4343aeaaa14008c925b": "308", "q-zh": "北京", "q-ar": "القاهرة"}
    path = submission.write_qa_predictions(tmp_path, "xquad", "zh", predictions)
    assert path == tmp_path / "xquad" / "test-zh.json"
    text = path.read_text(encoding="utf-8")
    assert "北京" in text  # UTF-8, not \\u escapes: readable and what the official reader gets either way
    assert json.loads(text) == predictions == submission.read_qa_predictions(path)


def test_tydiqa_is_written_as_test_too(tmp_path):
    path = submission.write_qa_predictions(tmp_path, "tydiqa", "fi", {"finnish--1-0": "x"})
    assert path.name == "test-fi.json"


def test_replacing_is_atomic(tmp_path, monkeypatch):
    path = submission.write_qa_predictions(tmp_path, "mlqa", "de", {"a": "old"})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        submission.write_qa_predictions(tmp_path, "mlqa", "de", {"a": "new"})
    assert submission.read_qa_predictions(path) == {"a": "old"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["test-de.json"], "temporary file removed"


def test_conflicting_answers_for_one_id_are_refused():
    with pytest.raises(submission.SubmissionError, match="answered twice"):
        submission.qa_prediction_map([("q1", "a"), ("q1", "b")])
    assert submission.qa_prediction_map([("q1", "a"), ("q1", "a")]) == {"q1": "a"}
    with pytest.raises(submission.SubmissionError, match="not answer text"):
        submission.qa_prediction_map([("q1", ["a"])])


def test_predictions_dir_prefers_metadata(tmp_path, monkeypatch):
    monkeypatch.delenv(submission.PREDICTIONS_DIR_ENV, raising=False)
    assert submission.predictions_dir({}) is None
    monkeypatch.setenv(submission.PREDICTIONS_DIR_ENV, str(tmp_path / "env"))
    assert submission.predictions_dir(None) == tmp_path / "env"
    assert submission.predictions_dir({"predictions_dir": str(tmp_path / "meta")}) == tmp_path / "meta"
