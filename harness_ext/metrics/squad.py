"""SQuAD v1.1 exact match and F1, as XTREME scores XQuAD and TyDiQA-GoldP.

Same rules as the official ``evaluate-v1.1.py`` that XTREME ships as
``third_party/evaluate_squad.py``: lower-case, drop ASCII punctuation, drop the
English articles a/an/the, split on whitespace; F1 is the bag-of-tokens overlap;
each question takes the best score over its gold answers; a question without a
prediction scores 0. Per-example functions return 0-100 so that their mean is the
corpus score; :func:`squad_scores` accumulates on the 0-1 scale and multiplies by
100 at the end, exactly as the official script does.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable, Mapping, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, remove ASCII punctuation, the articles a/an/the and extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction_tokens: Sequence[str], gold_tokens: Sequence[str]) -> float:
    """Bag-of-tokens F1 on the 0-1 scale; 0 when nothing overlaps (also when both are empty)."""
    common = Counter(prediction_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(score: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    """Best score of ``prediction`` against any gold answer (the official max over ground truths)."""
    if isinstance(golds, str):
        raise TypeError("golds must be a list of answer strings, not one string")
    if not golds:
        raise ValueError("a question needs at least one gold answer")
    return max(score(prediction, gold) for gold in golds)


def _em_unit(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1_unit(prediction: str, gold: str) -> float:
    return token_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """100.0 when the normalised prediction equals some normalised gold answer, else 0.0."""
    return 100.0 * best_over_golds(_em_unit, prediction, golds)


def f1(prediction: str, golds: Sequence[str]) -> float:
    """Best token F1 (0-100) of the prediction against the gold answers."""
    return 100.0 * best_over_golds(_f1_unit, prediction, golds)


def corpus_scores(
    predictions: Mapping[str, str],
    golds: Mapping[str, Sequence[str]],
    em_unit: Callable[[str, str], float],
    f1_unit: Callable[[str, str], float],
) -> dict[str, float]:
    """Mean EM and F1 (0-100) over every gold question; unanswered questions score 0.

    Shared by SQuAD and MLQA, which differ only in the per-pair functions.
    Predictions for ids that are not gold questions are ignored, as in the official script.
    """
    if not golds:
        raise ValueError("no gold questions to score")
    em_total = f1_total = 0.0
    for qid, answers in golds.items():
        if qid not in predictions:
            continue
        em_total += best_over_golds(em_unit, predictions[qid], answers)
        f1_total += best_over_golds(f1_unit, predictions[qid], answers)
    return {"em": 100.0 * em_total / len(golds), "f1": 100.0 * f1_total / len(golds)}


def squad_scores(predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Corpus EM and F1 (0-100) of ``{id: answer}`` against ``{id: [gold answers]}``."""
    return corpus_scores(predictions, golds, _em_unit, _f1_unit)
