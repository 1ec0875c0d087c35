"""Retrieval metrics: BUCC 2018 pair P/R/F1, Tatoeba top-1 accuracy, XTREME-R's LAReQA mAP@20 and Mewsli-X map@20.

As XTREME's evaluate.py reads them: a BUCC file has one ``<xx-id>\\t<en-id>`` pair
per line, and predictions and gold are compared as *sets* of pairs (duplicates
count once, order does not matter, the numbers of lines need not agree). A Tatoeba
file has one index per line: line ``i`` holds the index of the sentence retrieved
for query ``i`` (predictions) or of its translation (gold); compared line by line.
"""

from __future__ import annotations

from typing import Collection, Hashable, Iterable, Mapping, Sequence

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


# --------------------------------------------------------------------------- XTREME-R: ranked retrieval
def average_precision_at_k(relevant: Collection[Hashable], ranked: Sequence[Hashable], k: int | None = None) -> float:
    """AP@k of one query (0-1), LAReQA's definition (``utils_lareqa.average_precision_at_k``).

    Precision is summed at each rank (1-based) among the first ``k`` where a relevant item
    appears for the first time; the sum is divided by ``min(len(relevant), k)`` (all of
    ``relevant`` without ``k``), so a query with fewer relevant items than ``k`` can still
    reach 1. A query with no relevant item cannot be scored: ValueError.
    """
    if not relevant:
        raise ValueError("average_precision_at_k: a query needs at least one relevant item")
    targets = set(relevant)
    ranked = list(ranked[:k]) if k else list(ranked)
    hits, total, seen = 0, 0.0, set()
    for rank, item in enumerate(ranked, start=1):
        if item in targets and item not in seen:
            hits += 1
            total += hits / rank
        seen.add(item)
    return total / (min(len(targets), k) if k else len(targets))


def mean_average_precision_at_k(
    relevant: Sequence[Collection[Hashable]], ranked: Sequence[Sequence[Hashable]], k: int | None = 20
) -> float:
    """mAP@k (0-100): the mean of :func:`average_precision_at_k` over queries (LAReQA's number)."""
    if len(relevant) != len(ranked):
        raise ValueError(f"{len(ranked)} rankings for {len(relevant)} queries; give one ranking per query")
    if not ranked:
        return float("nan")
    return 100.0 * sum(average_precision_at_k(r, p, k) for r, p in zip(relevant, ranked)) / len(ranked)


def mean_reciprocal_rank_at_k(
    gold: Mapping[str, Sequence[str]], predictions: Mapping[str, Sequence[str]], k: int = 20
) -> float:
    """Mewsli-X's ``map@20`` (0-100), as ``utils_mewslix.evaluate(k=20)``: one gold entity per example,
    so AP@k is the reciprocal rank of the gold id among the first ``k`` predicted ids.

    ``gold`` maps each example id to a one-element list (the official labels file); an
    example without predictions scores 0, predictions for unknown ids are ignored.
    """
    total = 0.0
    for example_id, labels in gold.items():
        if not labels:
            raise ValueError(f"example {example_id!r} has no gold entity; the labels file gives one per example")
        target = str(labels[0]).strip()
        for rank, predicted in enumerate(list(predictions.get(example_id, []))[:k], start=1):
            if predicted == target:
                total += 1.0 / rank
                break
    return 100.0 * total / len(gold) if gold else 0.0
