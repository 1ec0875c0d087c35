"""Accuracy, as XTREME's evaluate.py computes it for XNLI, PAWS-X (and Tatoeba)."""

from __future__ import annotations

from typing import Sequence


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    """Percentage of exact matches (0-100); lengths must agree."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        return 0.0
    return 100.0 * sum(p == g for p, g in zip(predictions, labels)) / len(labels)
