"""Top-k cosine ranking of queries against one large candidate pool (LAReQA, Mewsli-X).

Both XTREME-R retrieval tasks rank with unit-length encodings and inner products: the
official LAReQA/Mewsli-X models L2-normalise their [CLS] encodings and Mewsli-X also
``faiss.normalize_L2``s the candidates (``--dist cosine``), so ranking by the dot product of
our L2-normalised vectors is the official ranking for any encoder.

The pool is searched in blocks of rows (:func:`pool_block_rows`) so that the memory the
search adds on top of the pool matrix is one block (faiss keeps its own copy of what it
indexes) plus ``queries x k`` results, whatever the pool size: Mewsli-X's 1M x 768 float32
pool is 2.9 GiB and a whole-pool faiss index would double it. The top ``k`` of each block
are merged into the running top ``k`` (exact: the best ``k`` of the union is among the best
``k`` of each block). One block when the pool fits the budget (always on a GPU with room).
Search backends as :mod:`harness_ext.retrieval.search` (faiss GPU / torch / faiss CPU).
"""

from __future__ import annotations

import numpy as np

from harness_ext.progress import bar
from harness_ext.retrieval.search import FlatIndex, as_float32, default_device, resolve_backend

#: bytes of pool vectors indexed at once on the CPU (faiss copies a block into its index)
CPU_BLOCK_BYTES = 512 << 20
#: on a GPU the whole pool goes in one index unless it is larger than this
GPU_BLOCK_BYTES = 8 << 30


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """L2-normalise the rows of a float32 matrix in place (zero rows stay zero); returns it."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def pool_block_rows(rows: int, dim: int, on_gpu: bool, block_bytes: int | None = None) -> int:
    """Pool rows per block: the byte budget (GPU or CPU) divided by one row's size."""
    budget = block_bytes or (GPU_BLOCK_BYTES if on_gpu else CPU_BLOCK_BYTES)
    return max(1, min(rows, budget // max(1, dim * 4)))


def merge_top_k(scores: np.ndarray, indices: np.ndarray, new_scores: np.ndarray, new_indices: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of two ``(n, *)`` top lists, best first (ties: the lower pool index first)."""
    all_scores = np.concatenate([scores, new_scores], axis=1)
    all_indices = np.concatenate([indices, new_indices], axis=1)
    order = np.lexsort((all_indices, -all_scores), axis=1)[:, :k]
    return np.take_along_axis(all_scores, order, axis=1), np.take_along_axis(all_indices, order, axis=1)


def top_k(
    queries: np.ndarray,
    pool: np.ndarray,
    k: int,
    backend: str = "auto",
    block_bytes: int | None = None,
    desc: str = "rank",
) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, indices)`` of the ``k`` pool rows with the largest inner product per query, best first.

    Callers pass L2-normalised rows (:func:`normalize_rows`) for cosine ranking. ``k`` is capped
    at the pool size.
    """
    queries, pool = as_float32(queries), as_float32(pool)
    k = min(int(k), len(pool))
    if k <= 0 or len(queries) == 0:
        raise ValueError("top_k needs at least one query and one pool row")
    resolved = resolve_backend(backend)
    on_gpu = resolved == "gpu" or (resolved == "torch" and default_device(backend, None) == "cuda")
    step = pool_block_rows(len(pool), pool.shape[1], on_gpu, block_bytes)
    scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    indices = np.zeros((len(queries), 0), dtype=np.int64)
    blocks = range(0, len(pool), step)
    with bar(len(pool), f"{desc} {len(queries)}x{len(pool)}", unit="row", show=len(blocks) > 1) as shown:
        for start in blocks:
            block = pool[start : start + step]
            block_scores, block_indices = FlatIndex(block, backend=backend).search(queries, min(k, len(block)))
            if len(blocks) == 1:
                return block_scores, block_indices
            scores, indices = merge_top_k(scores, indices, block_scores, block_indices + start, k)
            shown.update(len(block))
    return scores, indices
