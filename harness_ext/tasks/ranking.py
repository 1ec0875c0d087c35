"""XTREME-R's ranked retrieval (LAReQA, Mewsli-X): one leaf per query language, one shared pool.

The questions (mentions) of every language rank the SAME candidate pool: LAReQA's ~13k
answer sentences of 11 languages, Mewsli-X's ~1M entity descriptions. A leaf per language
(``xtreme-lareqa-de``: the German questions) keeps the per-language table, but embedding the
pool once per leaf would cost 11 times the work and, for Mewsli-X, 11M lm-eval requests.
So the pool is embedded by ONE leaf of the run, its owner:

* the first leaf of the task built in a run claims the pool (:class:`PoolStore`): its
  documents are its queries and the pool, the other leaves' only their queries; a leaf built
  again (same name), a store whose owner is gone, or one already scored starts a new run;
* every candidate becomes a :class:`RankItem` registered in the store (in ``process_results``,
  and again when lm-eval gathers items from other ranks to rank 0, so data-parallel runs see
  the whole pool);
* each leaf ranks its queries against the store's pool in its metric aggregation (after every
  leaf's ``process_results``, as lm-eval orders them): cosine, exact, top 20, the pool matrix
  stacked and normalised once (:mod:`harness_ext.retrieval.ranking`).

Every query and candidate is one ``embed`` request truncated to the official token limit
(``embed_args``' cap). ``--limit`` cuts documents and therefore the pool: refused in the
aggregation with that fix. ``--log_samples`` shows a digest per vector
(:class:`harness_ext.requests.EmbedVector`) and, per query, its id, the ids it retrieved and
its AP@20, never a vector.
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from harness_ext.requests import embed_args
from harness_ext.retrieval.ranking import normalize_rows, top_k
from harness_ext.tasks.base import XtremeTask
from harness_ext.tasks.retrieval import search_backend
from xtreme_tasks.data import load_checked

log = logging.getLogger(__name__)
K = 20
METRIC = f"map@{K}"


# --------------------------------------------------------------------------- the shared pool
class PoolStore:
    """The candidate pool of one task and split in this process, and which leaf embeds it."""

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.reset(None, "", 0)

    def reset(self, owner: Any, leaf: str, expected: int) -> None:
        self._owner = weakref.ref(owner) if owner is not None else (lambda: None)
        self.members: set[str] = {leaf} if leaf else set()
        self.expected = expected
        self.items: dict[str, RankItem] = {}
        self.scored = False
        self._matrix: np.ndarray | None = None

    def join(self, task: Any, leaf: str, expected: int) -> bool:
        """Register a leaf being built; True when it owns (embeds) the pool in this run."""
        if self.scored or leaf in self.members or self._owner() is None:
            self.reset(task, leaf, expected)
        else:
            self.members.add(leaf)
        return self._owner() is task

    def add(self, item: "RankItem") -> None:
        self.items.setdefault(item.key, item)
        self._matrix = None

    def pool(self, desc: str) -> tuple[list["RankItem"], np.ndarray]:
        """The candidates in document order and their normalised matrix (built once)."""
        ordered = sorted(self.items.values(), key=lambda item: item.order)
        if not ordered or len(ordered) != self.expected:
            raise ValueError(
                f"{desc}: {len(ordered)} of the pool's {self.expected} candidates were embedded; --limit cuts "
                f"documents and with them the shared pool: run without --limit"
            )
        if self._matrix is None or len(self._matrix) != len(ordered):
            self._matrix = matrix(ordered)
        self.scored = True
        return ordered, self._matrix

    def __reduce__(self):  # items travel between ranks; the store is found again by key
        return (store, (self.key,))


STORES: dict[tuple, PoolStore] = {}


def store(key: tuple) -> PoolStore:
    if key not in STORES:
        STORES[key] = PoolStore(key)
    return STORES[key]


@dataclass
class RankItem:
    """One query or candidate with its vector; a query learns what it retrieved in the aggregation."""

    role: str  # "query" or "candidate"
    key: str  # question uid / mention example id / candidate uid / QID
    lang: str
    vector: np.ndarray = field(repr=False)
    #: query: its relevance group (LAReQA xling_id, Mewsli-X gold QID; empty if withheld); candidate: groups it answers
    groups: tuple[str, ...] = ()
    #: candidate: its position in the pool documents
    order: int = 0
    store: PoolStore | None = field(default=None, repr=False)
    retrieved: list[str] = field(default_factory=list)
    ap: float | None = None

    def __post_init__(self) -> None:
        if self.role == "candidate" and self.store is not None:
            self.store.add(self)

    def __setstate__(self, state: dict) -> None:  # an item gathered from another rank joins this rank's pool
        self.__dict__.update(state)
        self.__post_init__()

    def __str__(self) -> str:  # what --log_samples writes
        if self.role == "candidate":
            return f"<candidate {self.key} ({self.lang})>"
        ap = "" if self.ap is None else f" ap@{K}={self.ap:.4f}"
        return f"<query {self.key} ({self.lang}) retrieved {self.retrieved}{ap}>"


def matrix(items: list[RankItem]) -> np.ndarray:
    """Stack vectors into one float32 matrix, L2-normalised in place (no second copy of a large pool)."""
    out = np.empty((len(items), np.asarray(items[0].vector).shape[-1]), dtype=np.float32)
    for row, item in enumerate(items):
        out[row] = np.asarray(item.vector, dtype=np.float32)
    return normalize_rows(out)


# --------------------------------------------------------------------------- the task
class RankingTask(XtremeTask):
    """One query language of a pooled ranking task; subclasses say how to score."""

    REQUEST_KIND = "embed"
    QUERY_ROLE = "question"

    def read_docs(self, data_dir: str | None) -> list[dict]:
        docs, check = load_checked(self.spec.name, self.language, self.split, data_dir=data_dir)
        self.config.metadata["test_set"] = check.as_metadata()
        queries = [d for d in docs if d["role"] == self.QUERY_ROLE]
        pool = [d for d in docs if d["role"] != self.QUERY_ROLE]
        self._order = {d["id"]: i for i, d in enumerate(pool)}
        self.store = store((self.spec.name, self.split, data_dir or "", len(pool), pool[0]["id"] if pool else ""))
        owner = self.store.join(self, self.config.task, len(pool))
        self.config.metadata["embeds_pool"] = owner
        return queries + pool if owner else queries

    def cap(self, doc: dict) -> int:
        raise NotImplementedError

    def groups(self, doc: dict) -> tuple[str, ...]:
        raise NotImplementedError

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [embed_args(doc["text"], self.cap(doc))]

    def process_results(self, doc: dict, results: list) -> dict:
        (vector,) = results
        vector = np.asarray(vector, dtype=np.float32)
        if vector.ndim != 1 or vector.size == 0:
            raise ValueError(f"{self.config.task} doc {doc['id']}: an embed response must be a 1-d vector, got {vector.shape}")
        query = doc["role"] == self.QUERY_ROLE
        key = doc.get("uid") or doc.get("example_id") or doc.get("entity_id") or doc["id"]
        item = RankItem("query" if query else "candidate", str(key), doc.get("lang", ""), vector, self.groups(doc),
                        0 if query else self._order[doc["id"]], self.store)
        return {METRIC: item}

    def metric_aggregations(self) -> dict[str, Callable]:
        task = self

        # a plain function, not the bound method: lm-eval deep-copies metric_list (see span.py)
        def aggregate(items: list[RankItem]) -> float:
            return task.aggregate(items)

        return {METRIC: aggregate}

    def rank(self, items: list[RankItem]) -> tuple[list[RankItem], list[RankItem], np.ndarray]:
        """``(queries, pool, top-K pool positions per query)``; each query's ``retrieved`` filled."""
        queries = [item for item in items if item.role == "query"]
        if not queries:
            raise ValueError(f"{self.config.task}: no queries to rank")
        pool, vectors = self.store.pool(self.config.task)
        _, indices = top_k(matrix(queries), vectors, K, backend=search_backend(), desc=self.config.task)
        for query, row in zip(queries, indices):
            query.retrieved = [pool[i].key for i in row]
        return queries, pool, indices

    def aggregate(self, items: list[RankItem]) -> float:
        memo = getattr(self, "_scored", None)
        signature = (len(items), hash(tuple(item.key for item in items)))
        if memo is None or memo[0] != signature:
            self._scored = (signature, self.score(items) if items else math.nan)
        return self._scored[1]

    def score(self, items: list[RankItem]) -> float:
        raise NotImplementedError
