"""Mewsli-X (XTREME-R): mentions of one language rank ~1M English entity descriptions.

``map@20`` of a leaf is ``utils_mewslix.evaluate(k=20)`` on its language (the reciprocal rank
of the gold QID among the 20 retrieved; one gold per mention); the group's plain mean over
the 11 languages is the official ``avg_map@20``. Inputs are cut at 64 tokens
(``scripts/run_eval_mewslix.sh``). The retrieved QIDs go to ``<dir>/mewslix/test-<lang>.json``
(``{example_id: [20 QIDs]}``, the official submission layout) when ``$XTREME_PREDICTIONS_DIR``
or ``metadata.predictions_dir`` is set. Test gold that the benchmark withholds (XTREME's
preprocessing blanks ``entity_id``) makes the score NaN with a warning naming the file to submit.
The shared pool and the ranking: :mod:`harness_ext.tasks.ranking`.
"""

from __future__ import annotations

import json
import logging
import math

from harness_ext.metrics.retrieval import mean_reciprocal_rank_at_k
from harness_ext.reports.submission import atomic_write_text, prediction_path, predictions_dir
from harness_ext.tasks.ranking import K, RankingTask, RankItem
from xtreme_tasks.data import mewslix

log = logging.getLogger(__name__)


class MewslixTask(RankingTask):
    """One mention language of Mewsli-X; the pool is the English candidate set."""

    QUERY_ROLE = "mention"

    def cap(self, doc: dict) -> int:
        return mewslix.MAX_TOKENS

    def groups(self, doc: dict) -> tuple[str, ...]:
        return (doc["gold"],) if doc["role"] == "mention" and doc.get("gold") else ()

    def doc_to_target(self, doc, doc_to_target=None):
        return (doc.get("gold") or "") if doc["role"] == "mention" else doc["entity_id"]

    def score(self, items: list[RankItem]) -> float:
        queries, _, _ = self.rank(items)
        predictions = {query.key: query.retrieved for query in queries}
        root = predictions_dir(self.config.metadata if isinstance(self.config.metadata, dict) else None)
        path = prediction_path(root, self.spec.name, self.language) if root is not None else None
        if path is not None and self.split == "test":
            atomic_write_text(path, json.dumps(predictions, ensure_ascii=False) + "\n")
            log.info("%s: predictions written to %s", self.config.task, path)
        if any(not query.groups for query in queries):
            log.warning("%s: no gold entity for the mentions (the benchmark withholds the test labels), so map@%d is "
                        "NaN; %s", self.config.task, K,
                        f"submit {path}" if path else "set XTREME_PREDICTIONS_DIR to write the submission file")
            return math.nan
        for query in queries:
            query.ap = mean_reciprocal_rank_at_k({query.key: list(query.groups)}, {query.key: query.retrieved}, K) / 100
        return mean_reciprocal_rank_at_k({q.key: list(q.groups) for q in queries}, predictions, K)
