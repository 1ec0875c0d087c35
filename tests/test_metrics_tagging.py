"""Reference cases for the tagging metrics (seqeval 0.0.12 span semantics).

Expected values are hand-computed from the 0.0.12 rules (tag = first character,
type = text after the last '-', sentences joined by 'O'), or are the official
XTREME mock numbers.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from harness_ext.metrics.tagging import corpus_entities, get_entities, span_prf, token_accuracy
from harness_ext.reports.official import read_tags

MOCK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xtreme_mock"


def test_iob2_example_from_seqeval_docs():
    gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    # sentence 2 starts at offset 8: 7 tags + the 'O' separator
    assert corpus_entities(gold) == [("MISC", 3, 5), ("PER", 8, 9)]
    assert corpus_entities(pred) == [("MISC", 2, 5), ("PER", 8, 9)]
    assert span_prf(gold, pred) == {"precision": 50.0, "recall": 50.0, "f1": 50.0}


def test_f1_is_corpus_micro_not_mean_of_sentences():
    gold = [["B-PER", "O"], ["B-LOC", "O", "B-ORG", "B-PER"]]
    pred = [["B-PER", "O"], ["O", "O", "O", "O"]]
    # 1 correct of 1 predicted and 4 gold: P = 1, R = 1/4, F1 = 2 * 0.25 / 1.25 = 0.4
    # (a mean of per-sentence F1s would give 50)
    scores = span_prf(gold, pred)
    assert scores["precision"] == pytest.approx(100.0)
    assert scores["recall"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(40.0)


def test_chunk_rules_for_prefixed_tags():
    assert get_entities(["I-PER", "I-PER", "O"]) == [("PER", 0, 1)]  # I- after O opens a span
    assert get_entities(["B-PER", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1)]  # type change splits
    assert get_entities(["B-PER", "B-PER"]) == [("PER", 0, 0), ("PER", 1, 1)]


def test_chunk_rules_for_upos_tags_without_prefix():
    # NOUN: tag 'N', type 'NOUN'; a run of the same tag is one span
    assert get_entities(["NOUN", "NOUN", "VERB"]) == [("NOUN", 0, 1), ("VERB", 2, 2)]
    # SYM / SCONJ start with 'S' (single): every one is its own span
    assert get_entities(["SYM", "SYM"]) == [("SYM", 0, 0), ("SYM", 1, 1)]
    # INTJ starts with 'I' (inside): a run is one span
    assert get_entities(["INTJ", "INTJ"]) == [("INTJ", 0, 1)]
    assert corpus_entities([["NOUN", "X"], ["VERB"]]) == [("NOUN", 0, 0), ("X", 1, 1), ("VERB", 3, 3)]


def test_upos_span_f1_and_token_accuracy_hand_computed():
    gold = [["NOUN", "NOUN", "VERB"]]
    pred = [["NOUN", "ADJ", "VERB"]]
    # gold {NOUN(0,1), VERB(2,2)}, pred {NOUN(0,0), ADJ(1,1), VERB(2,2)}: 1 correct
    # P = 1/3, R = 1/2, F1 = (1/3) / (5/6) = 0.4
    scores = span_prf(gold, pred)
    assert scores["precision"] == pytest.approx(100 / 3)
    assert scores["recall"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(40.0)
    assert token_accuracy(gold, pred) == pytest.approx(200 / 3)


def _seqeval1_f1(gold, pred) -> float:
    from seqeval.metrics import f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1.x warns that UPOS tags "seem not to be NE tags"
        return 100.0 * f1_score(gold, pred)


def test_differs_from_seqeval_1x_on_cconj_sconj():
    from importlib.metadata import version

    assert version("seqeval").startswith("1.")
    gold, pred = [["CCONJ", "SCONJ"]], [["CCONJ", "VERB"]]
    # 0.0.12: gold {CCONJ(0,0), SCONJ(1,1)}, pred {CCONJ(0,0), VERB(1,1)} -> P = R = F1 = 1/2
    assert span_prf(gold, pred)["f1"] == pytest.approx(50.0)
    # 1.x types both as 'CONJ' and keeps only {CONJ(1,1)} for gold; pred {CONJ(0,0), ERB(1,1)}: 0 correct
    assert _seqeval1_f1(gold, pred) == pytest.approx(0.0)


def test_differs_from_seqeval_1x_on_sentence_final_x():
    gold, pred = [["NOUN", "X"]], [["NOUN", "VERB"]]
    # 0.0.12: gold {NOUN(0,0), X(1,1)}, pred {NOUN(0,0), VERB(1,1)} -> F1 = 1/2
    assert span_prf(gold, pred)["f1"] == pytest.approx(50.0)
    # 1.x gives X the separator's type '_', so the X span is never closed: gold {OUN(0,0)},
    # pred {OUN(0,0), ERB(1,1)} -> P = 1/2, R = 1, F1 = 2/3
    assert _seqeval1_f1(gold, pred) == pytest.approx(200 / 3)


_read_tag = read_tags  # the official scorer's reader of one-tag-per-line files


def test_official_udpos_mock_number_needs_0012_semantics():
    files = sorted((MOCK / "labels" / "udpos").glob("test-*.tsv"))
    assert len(files) == 33
    ours, v1 = [], []
    for label_file in files:
        gold, pred = _read_tag(label_file), _read_tag(MOCK / "predictions" / "udpos" / label_file.name)
        ours.append(span_prf(gold, pred)["f1"])
        v1.append(_seqeval1_f1(gold, pred))
    official = 70.21746048354693  # ../shared/data/README.md, udpos F1
    assert sum(ours) / len(ours) == pytest.approx(official, abs=1e-6)
    assert abs(sum(v1) / len(v1) - official) > 0.1


def test_length_mismatch_names_the_sentence():
    gold = [["B-PER", "O"], ["O", "O", "O"]]
    with pytest.raises(ValueError, match=r"sentence 1: 2 predicted tags for 3 gold tags"):
        span_prf(gold, [["B-PER", "O"], ["O", "O"]])
    with pytest.raises(ValueError, match=r"sentence 1"):
        token_accuracy(gold, [["B-PER", "O"], ["O", "O"]])
    with pytest.raises(ValueError, match=r"1 predicted sentences for 2 gold sentences"):
        span_prf(gold, [["B-PER", "O"]])
    with pytest.raises(ValueError, match=r"sentence 0, word 1"):
        span_prf([["O", "O"]], [["O", ""]])
    with pytest.raises(TypeError, match=r"sentence 0"):
        span_prf(["NOUN"], ["NOUN"])


def test_empty_corpus_scores_zero():
    assert span_prf([], []) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert token_accuracy([], []) == 0.0
    # no entities anywhere: 0 as in seqeval 0.0.12 (not undefined)
    assert span_prf([["O", "O"]], [["O", "O"]])["f1"] == 0.0
