"""Sentence(-pair) classification: XNLI and PAWS-X."""

from __future__ import annotations

import math

from harness_ext.adapters.formats.parse import count_unparsable, unparsable_item
from harness_ext.metrics.classification import accuracy
from harness_ext.requests import classify_args
from harness_ext.tasks.base import XtremeTask


def _accuracy_of_items(items: list[tuple[str, str | None]]) -> float:
    """Accuracy of (prediction, gold) items; NaN when a gold label is withheld (``None``)."""
    if any(gold is None for _, gold in items):
        return math.nan
    predictions, labels = zip(*items) if items else ((), ())
    return accuracy(predictions, labels)


class ClassifyTask(XtremeTask):
    """Each document becomes one ``classify`` request; the answer is a label name."""

    REQUEST_KIND = "classify"

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [classify_args(doc["text_a"], doc.get("text_b"), self.spec.labels)]

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["label"]

    def process_results(self, doc: dict, results: list) -> dict:
        (prediction,) = results
        return {"acc": (prediction, doc["label"]), **unparsable_item(prediction)}

    def metric_aggregations(self):
        return {"acc": _accuracy_of_items, "unparsable": count_unparsable}
