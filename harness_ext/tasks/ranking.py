"""XTREME-R's ranked retrieval tasks: LAReQA (XQuAD-R) and Mewsli-X, as ``embed`` requests.

Each is ONE leaf task holding every query language and the one candidate pool, because
the pool is shared: LAReQA's ~13k answer sentences of 11 languages answer the questions of
all 11 languages, and Mewsli-X's ~1M entity descriptions serve the mentions of all 11
mention languages (a leaf per language would embed the pool 11 times). Every query and
every candidate is one ``embed`` request, truncated to the official token limits
(``embed_args``' cap). The ranking runs in the aggregation, where the whole pool is
visible (:mod:`harness_ext.retrieval.ranking`: cosine, exact, top 20, pool in blocks).

* LAReQA ``map@20``: the mean AP@20 over all questions (``utils_lareqa.mean_avg_prec_at_k``),
  relevant = the candidates holding the answer in every language; ``map@20_<lang>``: the same
  mean over the questions of one language (not an official number, for the per-language table).
* Mewsli-X ``map@20_<lang>``: ``utils_mewslix.evaluate(k=20)`` on one mention language;
  ``map@20``: their plain mean (the official ``avg_map@20``). Predictions (20 QIDs per
  mention) go to ``<dir>/mewslix/test-<lang>.json`` when ``$XTREME_PREDICTIONS_DIR`` (or
  ``metadata.predictions_dir``) is set: the official submission layout. Test gold that the
  benchmark withholds (blank ``entity_id``) makes the scores NaN with a warning.

``--log_samples``: responses print as a digest (:class:`harness_ext.requests.EmbedVector`),
and each query's item as its id, the ids it retrieved and its AP, never a vector.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from harness_ext.metrics.retrieval import average_precision_at_k, mean_reciprocal_rank_at_k
from harness_ext.reports.submission import atomic_write_text, predictions_dir, prediction_path
from harness_ext.requests import embed_args
from harness_ext.retrieval.ranking import normalize_rows, top_k
from harness_ext.tasks.base import XtremeTask
from harness_ext.tasks.retrieval import search_backend
from xtreme_tasks.data import lareqa, mewslix

log = logging.getLogger(__name__)
K = 20


@dataclass
class RankItem:
    """One query or candidate with its vector; a query learns what it retrieved in the aggregation."""

    role: str  # "query" or "candidate"
    key: str  # question uid / example id / candidate uid / QID
    lang: str
    vector: np.ndarray = field(repr=False)
    #: query: its relevance group (LAReQA xling_id, Mewsli-X gold QID or None); candidate: groups it answers
    groups: tuple[str, ...] = ()
    context: "RankingContext | None" = field(default=None, repr=False)
    retrieved: list[str] = field(default_factory=list)
    ap: float | None = None

    def __str__(self) -> str:  # what --log_samples writes
        if self.role == "candidate":
            return f"<candidate {self.key} ({self.lang})>"
        ap = "" if self.ap is None else f" ap@{K}={self.ap:.4f}"
        return f"<query {self.key} ({self.lang}) retrieved {self.retrieved}{ap}>"


@dataclass
class RankingContext:
    """Per-task state: the scoring function and its memoised result (one ranking serves every metric)."""

    score: Callable[[list[RankItem]], dict[str, float]]
    results: dict[tuple, dict[str, float]] = field(default_factory=dict, repr=False)

    def scores(self, items: list[RankItem]) -> dict[str, float]:
        signature = (len(items), hash(tuple(item.key for item in items)))
        if signature not in self.results:
            self.results = {signature: self.score(items)}
        return self.results[signature]

    def __getstate__(self):  # multi-rank gathering pickles items; the memo need not travel
        state = dict(self.__dict__)
        state["results"] = {}
        return state


def _matrix(items: list[RankItem]) -> np.ndarray:
    """Stack vectors into one float32 matrix, L2-normalised in place (no second copy of a large pool)."""
    out = np.empty((len(items), np.asarray(items[0].vector).shape[-1]), dtype=np.float32)
    for row, item in enumerate(items):
        out[row] = np.asarray(item.vector, dtype=np.float32)
    return normalize_rows(out)


def rank(items: list[RankItem], desc: str) -> tuple[list[RankItem], list[RankItem], np.ndarray]:
    """``(queries, candidates, top-K candidate positions per query)``, queries and pool in document order."""
    queries = [item for item in items if item.role == "query"]
    pool = [item for item in items if item.role == "candidate"]
    if not queries or not pool:
        raise ValueError(f"{desc}: the documents hold {len(queries)} queries and {len(pool)} candidates; ranking needs "
                         "both (was --limit used? it cuts the pool: run without it)")
    _, indices = top_k(_matrix(queries), _matrix(pool), K, backend=search_backend(), desc=desc)
    for query, row in zip(queries, indices):
        query.retrieved = [pool[i].key for i in row]
    return queries, pool, indices


def _metric(name: str) -> Callable[[list[RankItem]], float]:
    def aggregate(items: list[RankItem]) -> float:
        return items[0].context.scores(items).get(name, math.nan) if items else math.nan

    aggregate.__name__ = f"aggregate_{name.replace('@', '_at_')}"
    return aggregate


class RankingTask(XtremeTask):
    """A pooled ranking leaf: every query and candidate document is one capped ``embed`` request."""

    REQUEST_KIND = "embed"
    QUERY_ROLE = "question"
    LANGUAGES: tuple[str, ...] = ()

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.context = RankingContext(score=self.score)

    def cap(self, doc: dict) -> int:
        raise NotImplementedError

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [embed_args(doc["text"], self.cap(doc))]

    def groups(self, doc: dict) -> tuple[str, ...]:
        raise NotImplementedError

    def process_results(self, doc: dict, results: list) -> dict:
        (vector,) = results
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim != 1 or vector.size == 0:
            raise ValueError(f"{self.config.task} doc {doc['id']}: an embed response must be a 1-d vector, got {vector.shape}")
        role = "query" if doc["role"] == self.QUERY_ROLE else "candidate"
        key = doc.get("uid") or doc.get("example_id") or doc.get("entity_id") or doc["id"]
        item = RankItem(role, str(key), doc.get("lang", ""), vector, self.groups(doc), self.context)
        return {name: item for name in self.metric_aggregations()}

    def metric_aggregations(self) -> dict[str, Callable]:
        names = [f"map@{K}"] + [f"map@{K}_{lang}" for lang in self.LANGUAGES]
        return {name: _metric(name) for name in names}

    def score(self, items: list[RankItem]) -> dict[str, float]:
        raise NotImplementedError


# =========================================================================== LAReQA
class LareqaTask(RankingTask):
    """LAReQA on XQuAD-R: 11 languages of questions, one pool of ~13k answer sentences."""

    QUERY_ROLE = "question"
    LANGUAGES = lareqa.LANGUAGES

    def cap(self, doc: dict) -> int:
        return lareqa.MAX_QUESTION_TOKENS if doc["role"] == "question" else lareqa.MAX_CANDIDATE_TOKENS

    def groups(self, doc: dict) -> tuple[str, ...]:
        return (doc["xling_id"],) if doc["role"] == "question" else tuple(doc["xling_ids"])

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["xling_id"] if doc["role"] == "question" else " ".join(doc["xling_ids"])

    def score(self, items: list[RankItem]) -> dict[str, float]:
        queries, pool, indices = rank(items, "LAReQA")
        relevant: dict[str, set[int]] = {}
        for position, candidate in enumerate(pool):
            for group in candidate.groups:
                relevant.setdefault(group, set()).add(position)
        by_lang: dict[str, list[float]] = {}
        for query, row in zip(queries, indices):
            targets = relevant.get(query.groups[0])
            if not targets:
                raise ValueError(f"LAReQA question {query.key}: no candidate in the pool holds its answer "
                                 "(was --limit used? it cuts the pool: run without it)")
            query.ap = average_precision_at_k(targets, row.tolist(), K)
            by_lang.setdefault(query.lang, []).append(query.ap)
        everything = [ap for aps in by_lang.values() for ap in aps]
        out = {f"map@{K}": 100.0 * sum(everything) / len(everything)}
        out.update({f"map@{K}_{lang}": 100.0 * sum(aps) / len(aps) for lang, aps in by_lang.items()})
        return out


# =========================================================================== Mewsli-X
class MewslixTask(RankingTask):
    """Mewsli-X: mentions of 11 languages, one pool of English entity descriptions (~1M)."""

    QUERY_ROLE = "mention"
    LANGUAGES = mewslix.LANGUAGES

    def cap(self, doc: dict) -> int:
        return mewslix.MAX_TOKENS

    def groups(self, doc: dict) -> tuple[str, ...]:
        return ((doc["gold"],) if doc.get("gold") else ()) if doc["role"] == "mention" else ()

    def doc_to_target(self, doc, doc_to_target=None):
        return (doc.get("gold") or "") if doc["role"] == "mention" else doc["entity_id"]

    def score(self, items: list[RankItem]) -> dict[str, float]:
        queries, _, _ = rank(items, "Mewsli-X")
        per_lang: dict[str, dict[str, list[str]]] = {}
        gold: dict[str, dict[str, list[str]]] = {}
        for query in queries:
            per_lang.setdefault(query.lang, {})[query.key] = query.retrieved
            gold.setdefault(query.lang, {})[query.key] = list(query.groups)
        root = predictions_dir(self.config.metadata if isinstance(self.config.metadata, dict) else None)
        if root is not None and self.split == "test":
            import json

            for lang, predictions in per_lang.items():
                path = prediction_path(root, self.spec.name, lang, "json")
                atomic_write_text(path, json.dumps(predictions, ensure_ascii=False) + "\n")
            log.info("Mewsli-X: predictions written to %s", prediction_path(root, self.spec.name, "<lang>", "json"))
        out: dict[str, float] = {}
        withheld = []
        for lang in self.LANGUAGES:
            labels = gold.get(lang, {})
            if not labels or any(not g for g in labels.values()):
                withheld.append(lang)
                out[f"map@{K}_{lang}"] = math.nan
                continue
            out[f"map@{K}_{lang}"] = mean_reciprocal_rank_at_k(labels, per_lang[lang], K)
            for query in queries:
                if query.lang == lang:
                    query.ap = mean_reciprocal_rank_at_k({query.key: labels[query.key]}, {query.key: query.retrieved}, K) / 100
        if withheld:
            log.warning("Mewsli-X: no gold entity for %s (the benchmark withholds the test labels); their map@%d and "
                        "the average are NaN. %s", " ".join(withheld), K,
                        "Submit the predictions written above." if root else
                        "Set XTREME_PREDICTIONS_DIR to write the submission files.")
        values = [out[f"map@{K}_{lang}"] for lang in self.LANGUAGES]
        out[f"map@{K}"] = math.nan if withheld else sum(values) / len(values)
        return out
