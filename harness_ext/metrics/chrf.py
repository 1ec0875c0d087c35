"""chrF for generated answers: a supplementary metric, never part of the XTREME score.

EM/F1 are the official QA metrics. A text-to-text or prompted model writes its answer
rather than pointing into the context, and character n-gram F-score (chrF, sacrebleu's
implementation with its defaults: chrF2, character order 6, no word n-grams) shows how
close a wrong answer came, with no tokenisation to choose per language. It is reported
only for generated answers (responses carrying parse information), as ``chrf``: each
question takes its best sentence-level chrF over the gold answers, and a language's
value is the mean over questions (0-100). The report shows it beside EM/F1; the task
score stays (EM + F1) / 2.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Sequence

from harness_ext.adapters.formats.parse import parse_info


@lru_cache(maxsize=1)
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


def sentence_chrf(prediction: str, golds: Sequence[str]) -> float:
    """Best sentence-level chrF of ``prediction`` over the gold answers (0-100)."""
    metric = _chrf()
    return max((metric.sentence_score(str(prediction), [gold]).score for gold in golds), default=0.0)


def chrf_item(prediction: Any, golds: Sequence[str]) -> dict[str, float]:
    """``{"chrf": value}`` for a generated answer, ``{}`` for an extracted span (encoder heads)."""
    return {} if parse_info(prediction) is None else {"chrf": sentence_chrf(prediction, golds)}


def mean_chrf(items: Sequence[float]) -> float:
    """Aggregation: the mean over questions."""
    return math.fsum(items) / len(items) if items else float("nan")
