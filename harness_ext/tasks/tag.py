"""Sequence tagging: UD-POS and PAN-X.

Each sentence becomes one ``tag`` request; the answer is one tag per word. Scores
are corpus-level, as XTREME's evaluate.py computes them: every sentence's
``(gold, predicted)`` pair reaches the aggregation, which scores all spans of the
corpus at once (micro P/R/F1 with seqeval 0.0.12 span semantics), not a mean of
per-sentence scores. UD-POS reports that F1 (the official number) and token
accuracy; PAN-X reports entity F1, precision and recall.
"""

from __future__ import annotations

from typing import Callable, Sequence

from harness_ext.adapters.formats.parse import count_unparsable, unparsable_item
from harness_ext.metrics.tagging import span_prf, token_accuracy
from harness_ext.requests import tag_args
from harness_ext.tasks.base import XtremeTask

Item = tuple[Sequence[str], Sequence[str]]


def _split(items: list[Item]) -> tuple[list[Sequence[str]], list[Sequence[str]]]:
    return [gold for gold, _ in items], [pred for _, pred in items]


def span_f1(items: list[Item]) -> float:
    return span_prf(*_split(items))["f1"]


def span_precision(items: list[Item]) -> float:
    return span_prf(*_split(items))["precision"]


def span_recall(items: list[Item]) -> float:
    return span_prf(*_split(items))["recall"]


def token_acc(items: list[Item]) -> float:
    return token_accuracy(*_split(items))


#: metric name (as in ``xtreme_tasks.table``) -> corpus-level aggregation
AGGREGATIONS: dict[str, Callable[[list[Item]], float]] = {
    "f1": span_f1,
    "precision": span_precision,
    "recall": span_recall,
    "token_acc": token_acc,
}


class TagTask(XtremeTask):
    """One UD-POS or PAN-X language: a ``tag`` request per sentence."""

    REQUEST_KIND = "tag"

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [tag_args(doc["words"], self.spec.labels)]

    def doc_to_target(self, doc, doc_to_target=None):
        return " ".join(doc["tags"])

    def process_results(self, doc: dict, results: list) -> dict:
        (response,) = results
        prediction = list(response)
        if len(prediction) != len(doc["words"]):
            raise ValueError(
                f"{self.config.task} doc {doc['id']}: {len(prediction)} tags predicted for {len(doc['words'])} words"
            )
        item = (list(doc["tags"]), prediction)
        return {**{name: item for name in self.spec.metrics}, **unparsable_item(response)}

    def metric_aggregations(self) -> dict[str, Callable[[list[Item]], float]]:
        unknown = [name for name in self.spec.metrics if name not in AGGREGATIONS]
        if unknown:
            raise ValueError(f"{self.spec.title}: no tagging aggregation for metrics {unknown}; known: {sorted(AGGREGATIONS)}")
        return {**{name: AGGREGATIONS[name] for name in self.spec.metrics}, "unparsable": count_unparsable}
