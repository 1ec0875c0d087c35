"""Retrieval metrics: BUCC 2018 pair P/R/F1 and Tatoeba top-1 accuracy.

As XTREME's evaluate.py reads them: a BUCC file has one ``<xx-id>\\t<en-id>`` pair
per line, and predictions and gold are compared as *sets* of pairs (duplicates
count once, order does not matter, the numbers of lines need not agree). A Tatoeba
file has one index per line: line ``i`` holds the index of the sentence retrieved
for query ``i`` (predictions) or of its translation (gold); compared line by line.
"""

from __future__ import annotations

from typing import Hashable, Iterable, Sequence

from harness_ext.metrics.classification import accuracy


def bucc_prf(
    predicted_pairs: Iterable[Sequence[str]], gold_pairs: Iterable[Sequence[str]]
) -> dict[str, float]:
    """Precision / recall / F1 (0-100) of mined pairs against gold pairs, set-based.

    Pairs may be tuples or lists (``line.split("\\t")``); all three scores are 0 when
    no predicted pair is correct, as in the official script.
    """
    predicted = {tuple(pair) for pair in predicted_pairs}
    gold = {tuple(pair) for pair in gold_pairs}
    correct = len(predicted & gold)
    if correct == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision = correct / len(predicted)
    recall = correct / len(gold)
    f1 = 2 * precision * recall / (precision + recall)
    return {"precision": 100.0 * precision, "recall": 100.0 * recall, "f1": 100.0 * f1}


def tatoeba_accuracy(predicted_indices: Sequence[Hashable], gold_indices: Sequence[Hashable]) -> float:
    """Top-1 accuracy (0-100): share of queries whose retrieved index equals the gold index.

    Values are compared with ``==``: the official scorer compares the stripped lines
    as strings, so pass ints on both sides or strings on both sides.
    """
    if len(predicted_indices) != len(gold_indices):
        raise ValueError(
            f"{len(predicted_indices)} predicted indices for {len(gold_indices)} gold indices; "
            "give one retrieved index per query, in query order"
        )
    return accuracy(list(predicted_indices), list(gold_indices))
