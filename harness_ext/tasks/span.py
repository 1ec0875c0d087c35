"""Extractive QA: XQuAD, MLQA and TyDiQA-GoldP.

Each document becomes one ``extract_span`` request ``(question, context)``; a QA head's
answer text is recovered as the official run_squad recovers it (whole words, see
``harness_ext/adapters/encoder/answer_text.py``; ``answer_text=offsets``: a substring of
the context). Scoring is the official one per task:
SQuAD v1.1 EM/F1 for XQuAD and TyDiQA, MLQA's language-aware normalisation (with
the context language) for MLQA; each question takes its best score over the gold
answers and a language's score is the mean over questions (0-100).

The ``em`` item carries ``(id, prediction, score)`` rather than the bare score so
that its aggregation, which sees every document at once (also after a multi-GPU
gather), can write the official ``{id: answer}`` submission file when asked
(task metadata ``predictions_dir`` or ``$XTREME_PREDICTIONS_DIR``).

Generated answers (text-to-text, prompted models) also get ``chrf``, a supplementary
metric outside the XTREME score (``harness_ext.metrics.chrf``), ``not_in_context`` (% of
answers that are no span of the context) and ``empty`` (how many answers are empty:
a model that ends its text at once; ``unparsable`` cannot say so, any text is an answer).
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

from harness_ext.adapters.formats.parse import count_unparsable, unparsable_item
from harness_ext.metrics import mlqa as mlqa_metrics
from harness_ext.metrics import squad as squad_metrics
from harness_ext.metrics.chrf import chrf_item, mean_chrf
from harness_ext.reports.submission import predictions_dir, qa_prediction_map, write_qa_predictions
from harness_ext.requests import span_args
from harness_ext.tasks.base import XtremeTask

log = logging.getLogger(__name__)


def _mean(scores: Sequence[float]) -> float:
    return math.fsum(scores) / len(scores) if scores else float("nan")


def not_in_context(answer: str, context: str) -> int:
    """1 when a generated answer is not a span of the context (empty answers included: no span), else 0."""
    text = str.strip(answer)
    return int(not text or text not in context)


def empty_answer(answer: str) -> int:
    """1 when a generated answer is empty (a model that ends its text at once answers nothing), else 0."""
    return int(not str.strip(answer))


def _count(flags: Sequence[int]) -> int:
    """How many answers were flagged (``empty``)."""
    return int(sum(flags))


def _percent(flags: Sequence[int]) -> float:
    """Share of flagged answers, 0-100 (``not_in_context``)."""
    return 100.0 * math.fsum(flags) / len(flags) if flags else float("nan")


class SpanTask(XtremeTask):
    """One QA task in one language; metrics ``em`` and ``f1`` (names as in the task table)."""

    REQUEST_KIND = "extract_span"

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [span_args(doc["question"], doc["context"])]

    def doc_to_target(self, doc, doc_to_target=None):
        return list(doc["answers"]["text"])

    def score(self, prediction: str, golds: Sequence[str], lang: str) -> tuple[float, float]:
        """(EM, F1) of one prediction, 0-100, with this task's official normalisation."""
        if self.spec.name == "mlqa":
            return mlqa_metrics.exact_match(prediction, golds, lang), mlqa_metrics.f1(prediction, golds, lang)
        return squad_metrics.exact_match(prediction, golds), squad_metrics.f1(prediction, golds)

    def process_results(self, doc: dict, results: list) -> dict:
        (prediction,) = results
        if not isinstance(prediction, str):
            raise TypeError(f"{doc['id']}: an extract_span answer must be a string, got {type(prediction).__name__}")
        em, f1 = self.score(prediction, doc["answers"]["text"], doc.get("lang") or self.language)
        item = {"em": (doc["id"], prediction, em), "f1": f1, **unparsable_item(prediction),
                **chrf_item(prediction, doc["answers"]["text"])}
        if "unparsable" in item:  # a generated answer (text-to-text or prompted LLM), not a span cut by a head
            item["not_in_context"] = not_in_context(prediction, doc["context"])
            item["empty"] = empty_answer(prediction)
        return item

    # ----------------------------------------------------------------- aggregation
    def _em_aggregation(self, items: list) -> float:
        root = predictions_dir(getattr(self.config, "metadata", None) if hasattr(self, "config") else None)
        if root is not None:
            predictions = qa_prediction_map((qid, answer) for qid, answer, _ in items)
            path = write_qa_predictions(root, self.spec.name, self.language, predictions)
            n_docs = len(self.dataset[self.split]) if getattr(self, "dataset", None) else len(items)
            if len(predictions) < n_docs:
                log.warning("%s: wrote %d of %d predictions to %s (--limit?)", self.config.task, len(predictions), n_docs, path)
            else:
                log.info("%s: predictions written to %s", self.config.task, path)
        return _mean([score for _, _, score in items])

    def metric_aggregations(self) -> dict[str, Callable[[list], float]]:
        task = self

        # a plain function, not the bound method: lm-eval's TaskConfig.to_dict deep-copies
        # metric_list, and copying a bound method would copy the whole task with its documents
        def mean_em(items: list) -> float:
            return task._em_aggregation(items)

        return {"em": mean_em, "f1": _mean, "unparsable": count_unparsable, "chrf": mean_chrf,
                "not_in_context": _percent, "empty": _count}
