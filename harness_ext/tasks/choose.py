"""A choice among each document's own candidates: XCOPA (XTREME-R).

Each document becomes one ``choose`` request ``(context, choices, labels)``; the answer is
the label of the chosen candidate (``choice1`` / ``choice2``) and the metric is accuracy,
as the official evaluate.py scores XCOPA (scoring as :class:`ClassifyTask`). A test set
whose gold was withheld (XTREME-R's download zeroes it) is answered, but its accuracy is
NaN: no number from fake labels.
"""

from __future__ import annotations

from harness_ext.requests import choose_args
from harness_ext.tasks.classify import ClassifyTask


class ChooseTask(ClassifyTask):
    """XCOPA in one language: which of the document's candidates is the more plausible."""

    REQUEST_KIND = "choose"

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [choose_args(doc["context"], tuple(doc["choices"]), self.spec.labels)]

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["label"] or ""
