"""BUCC bitext mining and Tatoeba top-1 retrieval with XTREME's (LASER's) semantics.

The official code is ``third_party/utils_retrieve.py`` of google-research/xtreme
(``mine_bitext`` + ``bucc_eval``). What it does, and what we reproduce:

1. Each side's sentences are de-duplicated (identical lines are embedded and
   searched once), vectors L2-normalised (cosine similarity = inner product).
2. Exact 4-NN source->target and target->source.
3. Ratio margin of a candidate pair: ``cos(x, y) / ((mean fwd 4-NN sim of x +
   mean bwd 4-NN sim of y) / 2)``; it discounts "hub" sentences close to everything.
4. ``retrieval='max'``: the best-margin target of every source sentence and the
   best-margin source of every target sentence are pooled, sorted by score and
   kept greedily one-to-one (a sentence is used at most once); score > 0.
5. Candidates are mapped back to sentence ids; a sentence that occurs more than
   once in its file has no unique id and is dropped (``read_sent2id``).
6. The threshold is the best-F1 cut on the dev (BUCC "sample") gold: walk the
   candidates by decreasing score, and at each new best F1 take the midpoint
   between this score and the next. Test pairs with score >= threshold are the
   prediction.

Tatoeba has no margin: English sentence i searches the xx side (top-1 cosine)
and is correct when it finds xx sentence i (``acc``); ``acc_reverse`` is xx -> en.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from harness_ext.retrieval.search import FlatIndex, l2_normalize

Pair = tuple[str, str]

MARGINS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "ratio": lambda sim, mean: sim / mean,
    "distance": lambda sim, mean: sim - mean,
    "absolute": lambda sim, mean: sim,
}


# --------------------------------------------------------------------------- de-duplication
def unique_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-occurrence order and, per input, its index among them."""
    position: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        inverse[i] = position.setdefault(text, len(position))
    return list(position), inverse


def first_occurrence_rows(inverse: np.ndarray) -> np.ndarray:
    """Row of the first occurrence of each unique item (for picking its vector)."""
    _, rows = np.unique(np.asarray(inverse, dtype=np.int64), return_index=True)
    return rows.astype(np.int64)


# --------------------------------------------------------------------------- margin mining
@dataclass
class Neighbours:
    """k-NN of every vector of one side in the other side, with the mean similarity."""

    sims: np.ndarray  # (n, k) cosine similarities, best first
    indices: np.ndarray  # (n, k) indices into the other side
    mean: np.ndarray  # (n,) mean of the k similarities

    @classmethod
    def search(cls, queries: np.ndarray, index: FlatIndex, k: int) -> "Neighbours":
        sims, indices = index.search(queries, k)
        return cls(sims, indices, sims.mean(axis=1))


def margin_scores(
    fwd: Neighbours, fwd_mean: np.ndarray, bwd_mean: np.ndarray, margin: str = "ratio"
) -> np.ndarray:
    """Margin score of every k-NN candidate: ``margin(sim, (fwd_mean[i] + bwd_mean[j]) / 2)``.

    ``fwd`` holds query i's candidates j; ``fwd_mean`` is indexed by i, ``bwd_mean``
    by j (for the backward direction pass the means the other way round).
    """
    denominator = (fwd_mean[:, None] + bwd_mean[fwd.indices]) / 2
    return MARGINS[margin](fwd.sims.astype(np.float64), denominator.astype(np.float64))


@dataclass
class Mined:
    """One-to-one mined pairs over unique sentences, by decreasing score."""

    src: np.ndarray  # indices into the unique source sentences
    trg: np.ndarray  # indices into the unique target sentences
    score: np.ndarray  # margin scores (float64)


def mine(
    x: np.ndarray,
    y: np.ndarray,
    k: int = 4,
    margin: str = "ratio",
    min_score: float = 0.0,
    backend: str = "auto",
) -> Mined:
    """LASER ``mine_bitext(mode='mine', retrieval='max')`` on unique sentence vectors.

    ``x`` (source) and ``y`` (target) need not be normalised; they are normalised
    here. Pairs are kept one-to-one by decreasing score and only when the score
    is above ``min_score`` (the official ``threshold=0``).
    """
    if margin not in MARGINS:
        raise ValueError(f"unknown margin {margin!r}; use one of {', '.join(MARGINS)}")
    x, y = l2_normalize(x), l2_normalize(y)
    if len(x) == 0 or len(y) == 0:
        return Mined(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    fwd = Neighbours.search(x, FlatIndex(y, backend=backend), min(k, len(y)))
    bwd = Neighbours.search(y, FlatIndex(x, backend=backend), min(k, len(x)))
    fwd_scores = margin_scores(fwd, fwd.mean, bwd.mean, margin)
    bwd_scores = margin_scores(bwd, bwd.mean, fwd.mean, margin)
    fwd_arg = fwd_scores.argmax(axis=1)
    bwd_arg = bwd_scores.argmax(axis=1)
    rows_x, rows_y = np.arange(len(x)), np.arange(len(y))
    src = np.concatenate([rows_x, bwd.indices[rows_y, bwd_arg]])
    trg = np.concatenate([fwd.indices[rows_x, fwd_arg], rows_y])
    scores = np.concatenate([fwd_scores[rows_x, fwd_arg], bwd_scores[rows_y, bwd_arg]])
    return _one_to_one(src, trg, scores, min_score)


def _one_to_one(src: np.ndarray, trg: np.ndarray, scores: np.ndarray, min_score: float) -> Mined:
    """Greedy one-to-one selection by decreasing score (the official 'max' retrieval)."""
    order = np.argsort(-scores, kind="stable")
    seen_src: set[int] = set()
    seen_trg: set[int] = set()
    keep: list[int] = []
    for i in order:
        s, t = int(src[i]), int(trg[i])
        if s in seen_src or t in seen_trg:
            continue
        seen_src.add(s)
        seen_trg.add(t)
        if scores[i] > min_score:
            keep.append(int(i))
    keep_arr = np.asarray(keep, dtype=np.int64)
    return Mined(src[keep_arr], trg[keep_arr], scores[keep_arr])


# --------------------------------------------------------------------------- ids and BUCC candidates
def unique_ids(ids: Sequence[str], texts: Sequence[str]) -> dict[str, str]:
    """Stripped text -> id for texts that occur exactly once (``read_sent2id``)."""
    seen: dict[str, str] = {}
    repeated: set[str] = set()
    for sid, text in zip(ids, texts):
        key = text.strip()
        if key in seen:
            repeated.add(key)
        else:
            seen[key] = sid
    for key in repeated:
        del seen[key]
    return seen


def bucc_candidates(
    src_ids: Sequence[str],
    src_texts: Sequence[str],
    src_vectors: np.ndarray,
    trg_ids: Sequence[str],
    trg_texts: Sequence[str],
    trg_vectors: np.ndarray,
    k: int = 4,
    margin: str = "ratio",
    backend: str = "auto",
) -> dict[Pair, float]:
    """Mined ``(src_id, trg_id) -> margin score`` for one BUCC split (before thresholding).

    Rows of ``*_vectors`` align with ``*_texts``; duplicates are removed before
    search (first occurrence kept) and dropped from the candidates afterwards.
    """
    src_unique, src_inverse = unique_texts(src_texts)
    trg_unique, trg_inverse = unique_texts(trg_texts)
    x = np.asarray(src_vectors)[first_occurrence_rows(src_inverse)]
    y = np.asarray(trg_vectors)[first_occurrence_rows(trg_inverse)]
    mined = mine(x, y, k=k, margin=margin, backend=backend)
    src_map = unique_ids(src_ids, src_texts)
    trg_map = unique_ids(trg_ids, trg_texts)
    candidates: dict[Pair, float] = {}
    for s, t, score in zip(mined.src, mined.trg, mined.score):
        src_id = src_map.get(src_unique[s].strip())
        trg_id = trg_map.get(trg_unique[t].strip())
        if src_id is None or trg_id is None:
            continue
        pair = (src_id, trg_id)
        candidates[pair] = max(float(score), candidates.get(pair, float(score)))
    return candidates


# --------------------------------------------------------------------------- threshold
def _sorted_candidates(candidates: Mapping[Pair, float]) -> list[tuple[Pair, float]]:
    return sorted(candidates.items(), key=lambda item: -item[1])


def best_f1_threshold(candidates: Mapping[Pair, float], gold: Iterable[Pair]) -> float:
    """The official ``bucc_optimize``: best-F1 cut on gold, midpoint to the next score.

    Walking candidates by decreasing score, every prefix is a possible extraction;
    the threshold is set half-way between the last kept score and the next one so
    that ``score >= threshold`` reproduces exactly that prefix. When the best prefix
    is all candidates (the official code would index past the end), the threshold
    is the last score itself. With no correct candidate at all it is 0 (as official).
    """
    gold = set(gold)
    items = _sorted_candidates(candidates)
    extracted = correct = 0
    best_f1 = 0.0
    threshold = 0.0
    for i, (pair, score) in enumerate(items):
        extracted += 1
        correct += pair in gold
        if correct == 0:
            continue
        precision, recall = correct / extracted, correct / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_f1 = f1
            threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return threshold


def extract(candidates: Mapping[Pair, float], threshold: float) -> list[Pair]:
    """Pairs with ``score >= threshold``, best first (``bucc_extract``)."""
    return [pair for pair, score in _sorted_candidates(candidates) if score >= threshold]


def write_submission(pairs: Iterable[Pair], path) -> None:
    """The official prediction file: ``<xx-id>\\t<en-id>`` per line (``test-<xx>.tsv``)."""
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for src_id, trg_id in pairs:
            handle.write(f"{src_id}\t{trg_id}\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- Tatoeba
def top1(queries: np.ndarray, database: np.ndarray, backend: str = "auto") -> np.ndarray:
    """Index of the nearest (cosine) database vector for every query."""
    index = FlatIndex(l2_normalize(database), backend=backend)
    _, indices = index.search(l2_normalize(queries), 1)
    return indices[:, 0]


def tatoeba_predictions(xx: np.ndarray, en: np.ndarray, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """``(en->xx, xx->en)`` top-1 predictions; row i of ``xx`` translates row i of ``en``.

    XTREME's direction is the first: ``similarity_search(x=xx, y=en)`` indexes the
    xx sentences and searches them with the English ones.
    """
    return top1(en, xx, backend), top1(xx, en, backend)
