"""Exact k-NN: faiss CPU, torch matmul+topk and (when present) faiss GPU agree."""

from __future__ import annotations

import numpy as np
import pytest

from harness_ext.retrieval import search
from harness_ext.retrieval.search import FlatIndex, knn, l2_normalize, resolve_backend


def random_unit(n: int, dim: int, seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    return random_unit(700, 48, 0), random_unit(1300, 48, 1)


def brute_force(queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries.astype(np.float64) @ database.astype(np.float64).T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


@pytest.mark.parametrize("k", [1, 4, 10])
def test_faiss_cpu_and_torch_return_identical_neighbours(vectors, k):
    queries, database = vectors
    cpu_scores, cpu_ids = knn(queries, database, k, backend="cpu")
    torch_scores, torch_ids = knn(queries, database, k, backend="torch")
    ref_scores, ref_ids = brute_force(queries, database, k)
    np.testing.assert_array_equal(cpu_ids, torch_ids)
    np.testing.assert_array_equal(cpu_ids, ref_ids)
    np.testing.assert_allclose(cpu_scores, torch_scores, atol=1e-5)
    np.testing.assert_allclose(cpu_scores, ref_scores, atol=1e-5)
    assert cpu_ids.dtype == np.int64 and cpu_scores.dtype == np.float32


def test_blocks_do_not_change_results(vectors):
    queries, database = vectors
    whole = knn(queries, database, 4, backend="cpu", block_size=10**6)
    for backend in ("cpu", "torch"):
        blocked = knn(queries, database, 4, backend=backend, block_size=37)
        np.testing.assert_array_equal(whole[1], blocked[1])
        np.testing.assert_allclose(whole[0], blocked[0], atol=1e-5)


def test_blocked_search_keeps_memory_bounded(monkeypatch, vectors):
    """Every call into the index sees at most block_size queries."""
    queries, database = vectors
    index = FlatIndex(database, backend="cpu")
    seen: list[int] = []
    original = index._search_block

    def spy(block, k):
        seen.append(len(block))
        return original(block, k)

    monkeypatch.setattr(index, "_search_block", spy)
    index.search(queries, 4, block_size=128)
    assert max(seen) == 128 and sum(seen) == len(queries) and len(seen) == 6


def test_k_is_capped_at_database_size():
    database = random_unit(3, 8, 2)
    scores, ids = knn(random_unit(5, 8, 3), database, 4, backend="cpu")
    assert ids.shape == (5, 3)
    assert sorted(ids[0].tolist()) == [0, 1, 2]


def test_normalize_is_a_copy_and_handles_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    y = l2_normalize(x)
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0]])
    assert x[0, 0] == 3.0  # input untouched


def test_auto_backend_falls_back_to_cpu_without_faiss_gpu(monkeypatch):
    monkeypatch.setattr(search, "faiss_gpu_count", lambda: 0)
    monkeypatch.setattr(search.faiss_env, "torch_cuda_available", lambda: False)
    assert resolve_backend("auto") == "cpu"
    with pytest.raises(RuntimeError, match="needs a visible GPU"):
        resolve_backend("gpu")
    with pytest.raises(ValueError, match="unknown search backend"):
        resolve_backend("annoy")


def test_dimension_mismatch_is_an_error(vectors):
    queries, database = vectors
    with pytest.raises(ValueError, match="dimension"):
        knn(queries[:, :10], database, 1, backend="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(search.faiss_gpu_count() == 0, reason="needs a faiss GPU build with kernels for a visible GPU (faiss-gpu>=1.15.1)")
def test_faiss_gpu_matches_cpu(vectors):
    queries, database = vectors
    cpu_scores, cpu_ids = knn(queries, database, 4, backend="cpu")
    gpu_scores, gpu_ids = knn(queries, database, 4, backend="gpu", block_size=256)
    np.testing.assert_array_equal(cpu_ids, gpu_ids)
    np.testing.assert_allclose(cpu_scores, gpu_scores, atol=1e-5)
