"""Tagging metrics for UD-POS and PAN-X, with the span semantics of seqeval 0.0.12.

Why our own chunker: XTREME's evaluate.py scores both UD-POS and PAN-X with
``seqeval.metrics.f1_score`` as it was in seqeval 0.0.12, and the published
numbers depend on that version's chunking. seqeval 1.x parses a label differently
(type = text after the first character and the first ``-``, ``'_'`` when empty),
which changes spans for UPOS tags that carry no ``B-``/``I-`` prefix: ``CCONJ`` and
``SCONJ`` both become type ``CONJ``, and ``X`` gets the same type as the ``O``
sentence separator so a sentence-final ``X`` is never closed. Pinning an old seqeval
would drag an unmaintained dependency along, so the 0.0.12 rules are reproduced here
(about thirty lines) and tests compare them with the installed seqeval 1.x on cases
where the two disagree.

The 0.0.12 rules, for a label ``L``:
  * ``tag = L[0]`` and ``type = L.split("-")[-1]`` (so ``"NOUN"`` is tag ``N``, type
    ``NOUN``; ``"B-PER"`` is tag ``B``, type ``PER``);
  * sentences are joined with an ``"O"`` between them (and one at the end), so spans
    carry corpus-wide offsets and never cross a sentence boundary;
  * precision / recall / F1 are micro-averaged over the whole corpus: sets of
    ``(type, start, end)`` spans, one set for gold and one for predictions.

All scores are on the official 0-100 scale.
"""

from __future__ import annotations

from typing import Sequence

Span = tuple[str, int, int]

# The chunk-boundary rules of seqeval 0.0.12 (its end_of_chunk / start_of_chunk), written as tables.
_ENDS_AFTER = {"E", "S"}
_END_PAIRS = {("B", "B"), ("B", "S"), ("B", "O"), ("I", "B"), ("I", "S"), ("I", "O")}
_STARTS_AT = {"B", "S"}
_START_PAIRS = {("E", "E"), ("E", "I"), ("S", "E"), ("S", "I"), ("O", "E"), ("O", "I")}


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in _ENDS_AFTER or (prev_tag, tag) in _END_PAIRS:
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in _STARTS_AT or (prev_tag, tag) in _START_PAIRS:
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(labels: Sequence[str]) -> list[Span]:
    """Spans ``(type, start, end)`` (end inclusive) of one flat label sequence, as seqeval 0.0.12."""
    prev_tag, prev_type, begin = "O", "", 0
    spans: list[Span] = []
    for i, label in enumerate([*labels, "O"]):
        tag, type_ = label[0], label.split("-")[-1]
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            spans.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return spans


def corpus_entities(seqs: Sequence[Sequence[str]]) -> list[Span]:
    """Spans over a corpus of sentences: sentences joined by ``"O"``, as seqeval 0.0.12 does."""
    flat: list[str] = []
    for sentence in seqs:
        flat.extend(sentence)
        flat.append("O")
    return get_entities(flat)


def _check(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> None:
    """Same number of sentences, same length per sentence, no empty or non-string tags."""
    if len(gold_seqs) != len(pred_seqs):
        raise ValueError(
            f"{len(pred_seqs)} predicted sentences for {len(gold_seqs)} gold sentences; "
            "give one tag sequence per gold sentence, in the same order"
        )
    for i, (gold, pred) in enumerate(zip(gold_seqs, pred_seqs)):
        for name, seq in (("gold", gold), ("predicted", pred)):
            if isinstance(seq, str):
                raise TypeError(f"sentence {i}: {name} tags must be a sequence of tags, not a string")
        if len(gold) != len(pred):
            raise ValueError(
                f"sentence {i}: {len(pred)} predicted tags for {len(gold)} gold tags; "
                "predict exactly one tag per word"
            )
        for name, seq in (("gold", gold), ("predicted", pred)):
            for j, tag in enumerate(seq):
                if not isinstance(tag, str) or not tag:
                    raise ValueError(f"sentence {i}, word {j}: {name} tag {tag!r} is not a non-empty string")


def span_prf(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> dict[str, float]:
    """Corpus-level micro precision / recall / F1 (0-100) of spans, as XTREME's seqeval 0.0.12.

    ``gold_seqs`` and ``pred_seqs`` are lists of sentences, each a list of tags; they
    must have the same number of sentences and the same length per sentence
    (``ValueError`` naming the sentence otherwise).
    """
    _check(gold_seqs, pred_seqs)
    gold = set(corpus_entities(gold_seqs))
    pred = set(corpus_entities(pred_seqs))
    correct = len(gold & pred)
    precision = correct / len(pred) if pred else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": 100.0 * precision, "recall": 100.0 * recall, "f1": 100.0 * f1}


def token_accuracy(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]) -> float:
    """Percentage of words whose predicted tag equals the gold tag, over the corpus (0-100).

    Not the official UD-POS number (that is :func:`span_prf`'s F1); reported alongside it
    because it is what most POS literature calls accuracy. 0.0 for an empty corpus.
    """
    _check(gold_seqs, pred_seqs)
    total = sum(len(gold) for gold in gold_seqs)
    if total == 0:
        return 0.0
    correct = sum(g == p for gold, pred in zip(gold_seqs, pred_seqs) for g, p in zip(gold, pred))
    return 100.0 * correct / total
