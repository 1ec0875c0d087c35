"""LAReQA on XQuAD-R (XTREME-R): questions of one language rank the answer sentences of all 11.

``map@20`` of a leaf is the mean AP@20 (``utils_lareqa.average_precision_at_k``) over its
language's questions; a question's relevant candidates are the sentences holding its answer
in every language (the 11 parallel answers). Every language has XQuAD's 1,190 questions, so
the group's plain mean over languages equals the official mAP@20 over all questions
(``utils_lareqa.mean_avg_prec_at_k``). Questions are cut at 96 tokens and candidates
(sentence + paragraph) at 256, as ``scripts/run_eval_lareqa.sh``. The shared pool and the
ranking: :mod:`harness_ext.tasks.ranking`.
"""

from __future__ import annotations

from harness_ext.metrics.retrieval import average_precision_at_k
from harness_ext.tasks.ranking import K, RankingTask, RankItem
from xtreme_tasks.data import lareqa


class LareqaTask(RankingTask):
    """One question language of LAReQA; the pool holds every language's candidates."""

    QUERY_ROLE = "question"

    def cap(self, doc: dict) -> int:
        return lareqa.MAX_QUESTION_TOKENS if doc["role"] == "question" else lareqa.MAX_CANDIDATE_TOKENS

    def groups(self, doc: dict) -> tuple[str, ...]:
        return (doc["xling_id"],) if doc["role"] == "question" else tuple(doc["xling_ids"])

    def doc_to_target(self, doc, doc_to_target=None):
        return doc["xling_id"] if doc["role"] == "question" else " ".join(doc["xling_ids"])

    def score(self, items: list[RankItem]) -> float:
        queries, pool, indices = self.rank(items)
        relevant: dict[str, set[int]] = {}
        for position, candidate in enumerate(pool):
            for group in candidate.groups:
                relevant.setdefault(group, set()).add(position)
        for query, row in zip(queries, indices):
            targets = relevant.get(query.groups[0])
            if not targets:
                raise ValueError(f"{self.config.task}: no candidate of the pool holds the answer to question "
                                 f"{query.key}; the XQuAD-R files do not line up (re-download them)")
            query.ap = average_precision_at_k(targets, row.tolist(), K)
        return 100.0 * sum(query.ap for query in queries) / len(queries)
