"""Reference cases for BUCC pair P/R/F1 and Tatoeba accuracy (hand-computed)."""

from __future__ import annotations

import pytest

from harness_ext.metrics.retrieval import bucc_prf, tatoeba_accuracy


def test_bucc_set_based_prf():
    predicted = [("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-3")]
    gold = [("de-1", "en-1"), ("de-2", "en-9")]
    # 1 correct: P = 1/3, R = 1/2, F1 = (1/3) / (5/6) = 0.4
    scores = bucc_prf(predicted, gold)
    assert scores["precision"] == pytest.approx(100 / 3)
    assert scores["recall"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(40.0)


def test_bucc_duplicates_and_order_do_not_count():
    gold = [["de-1", "en-1"], ["de-2", "en-2"]]  # lists, as line.split("\t") gives
    predicted = [("de-2", "en-2"), ("de-1", "en-1"), ("de-1", "en-1")]
    assert bucc_prf(predicted, gold) == {"precision": 100.0, "recall": 100.0, "f1": 100.0}
    # a pair is directed: (en, de) is not (de, en)
    assert bucc_prf([("en-1", "de-1")], gold)["f1"] == 0.0


def test_bucc_nothing_correct_is_zero():
    assert bucc_prf([], [("a", "b")]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert bucc_prf([("a", "c")], [("a", "b")]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_tatoeba_accuracy():
    assert tatoeba_accuracy([3, 1, 2], [3, 2, 2]) == pytest.approx(200 / 3)
    # the official scorer compares the lines as strings
    assert tatoeba_accuracy(["07", "8"], ["7", "8"]) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="2 predicted indices for 3 gold indices"):
        tatoeba_accuracy([1, 2], [1, 2, 3])
