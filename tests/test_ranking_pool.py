"""The shared candidate pool of LAReQA / Mewsli-X leaves (harness_ext.tasks.ranking.PoolStore):
which leaf embeds it in a run, and that items gathered from other ranks join rank 0's pool."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from harness_ext.tasks.ranking import PoolStore, RankItem, store


class Leaf:  # stands in for a task object (the store keeps a weak reference to its owner)
    pass


def test_first_leaf_built_owns_the_pool_and_a_new_run_starts_over():
    pool = PoolStore(("t", "test", "", 3, "c0"))
    ar, de = Leaf(), Leaf()
    assert pool.join(ar, "x-ar", 3) and not pool.join(de, "x-de", 3)
    pool.scored = True  # a leaf ranked: the run is over
    en = Leaf()
    assert pool.join(en, "x-en", 3) and pool.members == {"x-en"}
    again = Leaf()  # the same leaf built again: a new run, even before any scoring
    assert pool.join(again, "x-en", 3)
    alone = Leaf()
    del again
    import gc

    gc.collect()  # the owner is gone: the next leaf built owns the pool
    assert pool.join(alone, "x-fr", 3)


def test_pool_is_complete_before_ranking_and_items_cross_ranks():
    key = ("task-under-test", "test", "", 2, "c0")
    shared = store(key)
    shared.reset(Leaf(), "x-ar", 2)
    first = RankItem("candidate", "c0", "en", np.ones(4, dtype=np.float32), order=0, store=shared)
    with pytest.raises(ValueError, match="--limit"):
        shared.pool("x-ar")  # 1 of 2 candidates
    other_rank = RankItem("candidate", "c1", "en", np.arange(4, dtype=np.float32), order=1, store=shared)
    shared.items.pop("c1")
    copy = pickle.loads(pickle.dumps(other_rank))  # what lm-eval's gather hands rank 0
    assert copy.store is shared and "c1" in shared.items
    ordered, matrix = shared.pool("x-ar")
    assert [item.key for item in ordered] == ["c0", "c1"] and first in ordered
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-6)
