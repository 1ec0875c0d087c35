"""Reference cases for SQuAD v1.1 and MLQA EM/F1 (hand-computed from the definitions)."""

from __future__ import annotations

import re

import pytest

from harness_ext.metrics import mlqa, squad


# ------------------------------------------------------------------ SQuAD v1.1


def test_squad_normalisation():
    assert squad.normalize_answer("The  Cat's hat!") == "cats hat"
    assert squad.normalize_answer("an apple, a pear") == "apple pear"
    assert squad.normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert squad.normalize_answer("«Faust»") == "«faust»"  # only ASCII punctuation goes


def test_squad_exact_match_and_f1():
    assert squad.exact_match("the Eiffel Tower.", ["Eiffel Tower"]) == 100.0
    assert squad.exact_match("Eiffel", ["Eiffel Tower"]) == 0.0
    # pred {eiffel, tower, in, paris} vs gold {eiffel, tower}: P = 1/2, R = 1, F1 = 2/3
    assert squad.f1("Eiffel Tower in Paris", ["the Eiffel Tower"]) == pytest.approx(200 / 3)
    # best over golds: "paris france" gives P = 1, R = 1/2
    assert squad.f1("Paris", ["London", "Paris France"]) == pytest.approx(200 / 3)
    # repeated tokens count as often as they overlap: "new new york" vs "new york":
    # common = {new: 1, york: 1} = 2, P = 2/3, R = 1, F1 = 0.8
    assert squad.f1("new new york", ["new york"]) == pytest.approx(80.0)
    assert squad.f1("", ["x"]) == 0.0


def test_squad_scores_unanswered_question_scores_zero():
    golds = {"q1": ["Eiffel Tower"], "q2": ["Paris France"], "q3": ["1889"]}
    predictions = {"q1": "the Eiffel Tower", "q2": "Paris", "extra": "ignored"}
    scores = squad.squad_scores(predictions, golds)
    assert scores["em"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx((100 + 200 / 3 + 0) / 3)


def test_squad_bad_input():
    with pytest.raises(ValueError, match="at least one gold"):
        squad.f1("x", [])
    with pytest.raises(TypeError, match="list of answer strings"):
        squad.exact_match("x", "x")
    with pytest.raises(ValueError, match="no gold questions"):
        squad.squad_scores({}, {})


# ------------------------------------------------------------------ MLQA


def test_mlqa_chinese_is_segmented_per_character():
    # mixed segmentation: 电化电池 -> 电 化 电 池 ; vs 电 池: common {电:1, 池:1} = 2,
    # P = 2/4, R = 2/2, F1 = 2/3. SQuAD sees two different single tokens: 0.
    assert mlqa.normalize_answer("电化电池", "zh") == "电 化 电 池"
    assert mlqa.f1("电化电池", ["电池"], "zh") == pytest.approx(200 / 3)
    assert squad.f1("电化电池", ["电池"]) == 0.0
    # full-width punctuation is Unicode punctuation: removed by MLQA, kept by SQuAD
    assert mlqa.exact_match("电池。", ["电池"], "zh") == 100.0
    assert squad.exact_match("电池。", ["电池"]) == 0.0
    # latin runs are split on whitespace, CJK characters one by one
    assert mlqa.normalize_answer("iPhone 11手机", "zh") == "iphone 11 手 机"


def test_mlqa_arabic_removes_every_al():
    assert mlqa.normalize_answer("الكتاب", "ar") == "كتاب"
    assert mlqa.exact_match("الكتاب", ["كتاب"], "ar") == 100.0
    assert squad.exact_match("الكتاب", ["كتاب"]) == 0.0
    # the official pattern also removes ال inside a word: مال (money) -> م
    assert mlqa.normalize_answer("مال", "ar") == "م"
    # Arabic comma and question mark are punctuation
    assert mlqa.normalize_answer("الكتاب، لماذا؟", "ar") == "كتاب لماذا"
    official_pattern = re.compile("\\sال^|ال")  # evaluate_mlqa.py's ar article pattern
    for text in ("في البيت الكبير", "مال", "ال ال", " الولد"):
        expected = " ".join(official_pattern.sub(" ", text).split())
        assert mlqa.normalize_answer(text, "ar") == expected


def test_mlqa_german_articles_and_unicode_punctuation():
    assert mlqa.exact_match("Der Vertrag von Versailles", ["Vertrag von Versailles"], "de") == 100.0
    assert mlqa.exact_match("Der Vertrag von Versailles", ["Vertrag von Versailles"], "en") == 0.0
    assert squad.exact_match("Der Vertrag von Versailles", ["Vertrag von Versailles"]) == 0.0
    assert mlqa.exact_match("«Faust»", ["Faust"], "de") == 100.0
    # "dem" is an article, "demokratie" is not
    assert mlqa.normalize_answer("in dem Demokratie-Haus", "de") == "in demokratiehaus"


def test_mlqa_other_languages():
    assert mlqa.normalize_answer("¿La casa?", "es") == "casa"
    assert mlqa.normalize_answer("the house", "hi") == "the house"  # no articles for hi
    assert mlqa.normalize_answer("những cái bàn", "vi") == "bàn"


def test_mlqa_scores_and_errors():
    golds = {"a": ["电池"], "b": ["太阳能"]}
    scores = mlqa.mlqa_scores({"a": "电化电池", "b": "太阳能。"}, golds, "zh")
    assert scores["em"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx((200 / 3 + 100) / 2)
    with pytest.raises(ValueError, match="lang='fr'"):
        mlqa.normalize_answer("le chat", "fr")
    with pytest.raises(ValueError, match="lang='fr'"):
        mlqa.mlqa_scores({}, golds, "fr")
