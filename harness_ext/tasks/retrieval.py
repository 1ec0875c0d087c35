"""Retrieval tasks: Tatoeba and BUCC 2018 as ``embed`` requests + whole-corpus search.

Every sentence becomes one ``embed`` request; ``process_results`` only wraps the
returned vectors in a per-document item. The search happens in the metric's
aggregation, which lm-eval calls once with every document's item: that is the
only place where the whole corpus is visible, and both tasks need it (a sentence's
nearest neighbour depends on every other sentence).

* Tatoeba: ``acc`` = English sentence i searches the xx side (XTREME's direction,
  ``similarity_search(x=xx, y=en)``) and must find xx sentence i; ``acc_reverse``
  = xx searches English. Top-1 cosine, no margin.
* BUCC: LASER margin mining on dev and test (see :mod:`harness_ext.retrieval.mining`);
  the threshold is tuned on the dev gold and applied to test; ``f1``, ``precision``,
  ``recall`` of the test pairs. The official submission file ``test-<l>.tsv`` is
  written when ``XTREME_BUCC_PREDICTIONS_DIR`` is set (or ``metadata.predictions_dir``).
  BUCC's test gold is withheld by the benchmark (XTREME's download script deletes
  it): without it the scores are NaN, with a warning pointing to the submission file.

Search backend: ``auto`` (faiss GPU where it has kernels for the GPU, else torch's
exact search on the GPU, else faiss CPU; see :mod:`harness_ext.retrieval.search`);
override with ``XTREME_SEARCH_BACKEND=cpu|gpu|torch``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness_ext.metrics.retrieval import bucc_prf, tatoeba_accuracy
from harness_ext.requests import embed_args, vector_digest
from harness_ext.retrieval.mining import (
    best_f1_threshold,
    bucc_candidates,
    extract,
    tatoeba_predictions,
    write_submission,
)
from harness_ext.tasks.base import DocList, XtremeTask
from xtreme_tasks.data import load_checked

log = logging.getLogger(__name__)

SEARCH_BACKEND_ENV = "XTREME_SEARCH_BACKEND"
PREDICTIONS_DIR_ENV = "XTREME_BUCC_PREDICTIONS_DIR"


def search_backend() -> str:
    return os.environ.get(SEARCH_BACKEND_ENV, "auto")


def _vector(value: Any, where: str) -> np.ndarray:
    vector = np.asarray(value, dtype=np.float32)
    if vector.ndim != 1 or vector.size == 0:
        raise ValueError(f"{where}: an embed response must be a 1-d vector, got shape {vector.shape}")
    return vector


# =========================================================================== Tatoeba
@dataclass
class TatoebaItem:
    """One Tatoeba pair with its two vectors (what the aggregation searches over)."""

    index: int
    src: np.ndarray  # xx sentence
    tgt: np.ndarray  # English sentence
    #: set by the aggregation: the index retrieved for this pair's English query (``acc``) and xx query (``acc_reverse``)
    retrieved: int | None = None
    retrieved_reverse: int | None = None

    def __str__(self) -> str:
        """What ``--log_samples`` writes (``TATOEBA_LOGGED`` reads it back): the pair, what
        its queries retrieved and digests of the vectors, never the vectors themselves."""
        return (f"<tatoeba pair {self.index}: retrieved {self.retrieved}, reverse {self.retrieved_reverse}; "
                f"xx {vector_digest(self.src)}, en {vector_digest(self.tgt)}>")


#: reads :meth:`TatoebaItem.__str__` back (``harness_ext.reports.export`` writes Tatoeba predictions from it)
TATOEBA_LOGGED = re.compile(r"^<tatoeba pair (?P<index>\d+): retrieved (?P<retrieved>\d+|None), "
                            r"reverse (?P<reverse>\d+|None);")


def _tatoeba_matrices(items: list[TatoebaItem]) -> tuple[list[TatoebaItem], np.ndarray, np.ndarray, np.ndarray]:
    """The items in document order, their xx and English matrices, and the gold index of each row."""
    ordered = sorted(items, key=lambda item: item.index)
    xx = np.stack([item.src for item in ordered])
    en = np.stack([item.tgt for item in ordered])
    return ordered, xx, en, np.arange(len(ordered))


def tatoeba_acc(items: list[TatoebaItem]) -> float:
    """XTREME's Tatoeba accuracy: English queries, xx database, top-1 (0-100)."""
    if not items:
        return float("nan")
    ordered, xx, en, gold = _tatoeba_matrices(items)
    en_to_xx, _ = tatoeba_predictions(xx, en, backend=search_backend())
    for item, found in zip(ordered, en_to_xx.tolist()):
        item.retrieved = int(found)
    return tatoeba_accuracy(en_to_xx.tolist(), gold.tolist())


def tatoeba_acc_reverse(items: list[TatoebaItem]) -> float:
    """The other direction: xx queries, English database, top-1 (0-100)."""
    if not items:
        return float("nan")
    ordered, xx, en, gold = _tatoeba_matrices(items)
    _, xx_to_en = tatoeba_predictions(xx, en, backend=search_backend())
    for item, found in zip(ordered, xx_to_en.tolist()):
        item.retrieved_reverse = int(found)
    return tatoeba_accuracy(xx_to_en.tolist(), gold.tolist())


class TatoebaTask(XtremeTask):
    """One Tatoeba language: two ``embed`` requests (xx, English) per sentence pair."""

    REQUEST_KIND = "embed"

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [embed_args(doc["src"]), embed_args(doc["tgt"])]

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["index"]

    def process_results(self, doc: dict, results: list) -> dict:
        src, tgt = results
        where = f"{self.config.task} doc {doc['id']}"
        item = TatoebaItem(int(doc["index"]), _vector(src, where), _vector(tgt, where))
        return {"acc": item, "acc_reverse": item}

    def metric_aggregations(self) -> dict[str, Callable]:
        return {"acc": tatoeba_acc, "acc_reverse": tatoeba_acc_reverse}


# =========================================================================== BUCC
@dataclass
class BuccContext:
    """Per-task state shared by every item: options, and the mining result once computed.

    lm-eval calls the ``f1``, ``precision`` and ``recall`` aggregations separately
    with the same items; mining is the expensive part, so it runs once and the
    three metrics read the memoised result.
    """

    lang: str
    split: str  # "test" (tune on dev, score test) or "dev" (tune and score on dev)
    predictions_dir: str | None = None
    results: dict[tuple, dict[str, float]] = field(default_factory=dict, repr=False)

    def scores(self, items: list["BuccItem"]) -> dict[str, float]:
        signature = (len(items), hash(tuple(item.key for item in items)))
        if signature not in self.results:
            self.results = {signature: score_bucc(items, self)}  # keep only the latest
        return self.results[signature]

    def __getstate__(self):  # multi-rank gathering pickles items; the memo need not travel
        state = dict(self.__dict__)
        state["results"] = {}
        return state


@dataclass
class BuccItem:
    """One BUCC sentence with its vector and (xx side) gold partners."""

    split: str
    side: str
    sent_id: str
    text: str
    vector: np.ndarray
    gold: list[str] | None
    context: BuccContext

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.split, self.side, self.sent_id)

    def __str__(self) -> str:
        return f"<bucc {self.split} {self.side} {self.sent_id}, {vector_digest(self.vector)}>"


def _side(items: list[BuccItem], split: str, side: str) -> tuple[list[str], list[str], np.ndarray]:
    chosen = [item for item in items if item.split == split and item.side == side]
    if not chosen:
        raise ValueError(
            f"BUCC {split} has no {side} sentences among the evaluated documents; mining needs both sides of "
            f"dev and test (was --limit used? it cuts the corpus)"
        )
    return [i.sent_id for i in chosen], [i.text for i in chosen], np.stack([i.vector for i in chosen])


def _gold(items: list[BuccItem], split: str) -> set[tuple[str, str]] | None:
    xx = [item for item in items if item.split == split and item.side == "xx"]
    if not xx or any(item.gold is None for item in xx):
        return None
    return {(item.sent_id, en_id) for item in xx for en_id in item.gold}


def mine_split(items: list[BuccItem], split: str) -> dict[tuple[str, str], float]:
    xx_ids, xx_texts, xx_vectors = _side(items, split, "xx")
    en_ids, en_texts, en_vectors = _side(items, split, "en")
    return bucc_candidates(xx_ids, xx_texts, xx_vectors, en_ids, en_texts, en_vectors, backend=search_backend())


def score_bucc(items: list[BuccItem], context: BuccContext) -> dict[str, float]:
    """Mine dev, tune the threshold on its gold, mine the scored split, apply, score."""
    dev_gold = _gold(items, "dev")
    if not dev_gold:
        raise ValueError(f"BUCC {context.lang}: the dev (sample) gold is needed to tune the mining threshold")
    dev_candidates = mine_split(items, "dev")
    threshold = best_f1_threshold(dev_candidates, dev_gold)
    if context.split == "dev":
        candidates, gold = dev_candidates, dev_gold
    else:
        candidates, gold = mine_split(items, "test"), _gold(items, "test")
    predicted = extract(candidates, threshold)
    log.info("BUCC %s: threshold %.6f (tuned on dev), %d %s pairs predicted", context.lang, threshold,
             len(predicted), context.split)
    if context.predictions_dir and context.split == "test":
        path = Path(context.predictions_dir) / f"test-{context.lang}.tsv"
        write_submission(predicted, path)
        log.info("BUCC %s: wrote the submission file %s", context.lang, path)
    if gold is None:
        log.warning(
            "BUCC %s: no test gold (<l>-en.training.gold / test.gold); the benchmark withholds it, so f1/precision/"
            "recall are NaN. %s", context.lang,
            f"Submit {Path(context.predictions_dir) / f'test-{context.lang}.tsv'}." if context.predictions_dir
            else f"Set {PREDICTIONS_DIR_ENV} to write the submission file.",
        )
        return {"f1": math.nan, "precision": math.nan, "recall": math.nan, "threshold": threshold}
    return {**bucc_prf(predicted, gold), "threshold": threshold}


def bucc_f1(items: list[BuccItem]) -> float:
    return items[0].context.scores(items)["f1"] if items else float("nan")


def bucc_precision(items: list[BuccItem]) -> float:
    return items[0].context.scores(items)["precision"] if items else float("nan")


def bucc_recall(items: list[BuccItem]) -> float:
    return items[0].context.scores(items)["recall"] if items else float("nan")


class BuccTask(XtremeTask):
    """One BUCC language pair: an ``embed`` request per sentence of dev and test, both sides."""

    REQUEST_KIND = "embed"

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        metadata = self.config.metadata or {}
        split = "dev" if self.split in ("dev", "validation", "sample") else "test"
        self.context = BuccContext(
            lang=self.language, split=split,
            predictions_dir=metadata.get("predictions_dir") or os.environ.get(PREDICTIONS_DIR_ENV) or None,
        )

    def read_docs(self, data_dir: str | None) -> list[dict]:
        """Dev sentences always (the threshold is tuned on them), plus test when scoring test."""
        docs, check = load_checked(self.spec.name, self.language, "dev", data_dir=data_dir)
        if self.split not in ("dev", "validation", "sample"):
            test_docs, check = load_checked(self.spec.name, self.language, "test", data_dir=data_dir)
            docs += test_docs
        self.config.metadata["test_set"] = check.as_metadata()  # the scored split's check
        return docs

    def request_arguments(self, doc: dict) -> list[tuple]:
        return [embed_args(doc["text"])]

    def doc_to_target(self, doc, doc_to_target=None):
        return " ".join(doc["gold"] or [])

    def process_results(self, doc: dict, results: list) -> dict:
        (vector,) = results
        item = BuccItem(
            split=doc["split"], side=doc["side"], sent_id=doc["sent_id"], text=doc["text"],
            vector=_vector(vector, f"{self.config.task} doc {doc['id']}"),
            gold=None if doc.get("gold") is None else list(doc["gold"]), context=self.context,
        )
        return {"f1": item, "precision": item, "recall": item}

    def metric_aggregations(self) -> dict[str, Callable]:
        return {"f1": bucc_f1, "precision": bucc_precision, "recall": bucc_recall}
