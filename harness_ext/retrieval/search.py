"""Exact inner-product k-nearest-neighbour search over L2-normalised vectors.

Why exact: XTREME's BUCC and Tatoeba numbers come from ``faiss.IndexFlatIP`` /
``IndexFlatL2`` (exhaustive search); an approximate index would change the scores.

Backends (``backend=``):

* ``"cpu"``: ``faiss.IndexFlatIP`` (multi-threaded BLAS);
* ``"gpu"``: the same flat index cloned to *all* visible GPUs and sharded
  (``faiss.index_cpu_to_all_gpus(..., co.shard=True)``), so a database larger
  than one GPU's memory is split across GPUs; needs a faiss GPU build;
* ``"torch"``: a plain ``matmul`` + ``topk`` reference (on CPU unless ``device``
  says otherwise), used by the tests to check the faiss paths;
* ``"auto"``: ``"gpu"`` when faiss has GPU support and sees a GPU, else ``"cpu"``.

Queries are processed in blocks (``block_size`` rows at a time), so the only
memory that grows with the corpus is the database itself plus ``block_size x k``
results: mining millions of sentences does not need an ``n x n`` score matrix.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

Backend = Literal["auto", "cpu", "gpu", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "cpu", "gpu", "torch")

#: queries per block; 65536 x k results is small, and faiss itself tiles the
#: query x database product internally, so this only bounds our own buffers
DEFAULT_BLOCK_SIZE = 65536
#: torch backend: most query x database similarities computed at once (float32: 256 MiB);
#: measured (bench/bench_retrieval_scale.py, docs/benchmarks.md): N=20k x 20k peaked at 1.8 GiB before
TORCH_MAX_SCORES = 1 << 26


def as_float32(x: np.ndarray) -> np.ndarray:
    """C-contiguous float32 2-d view/copy, as faiss requires."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-d array of vectors, got shape {x.shape}")
    return x


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Return a float32 copy with unit-length rows (zero rows stay zero).

    A copy, unlike ``faiss.normalize_L2``, because callers' arrays may be
    memory-mapped cache files or responses that lm-eval still holds.
    """
    x = np.array(x, dtype=np.float32, copy=True, order="C")
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def faiss_gpu_count() -> int:
    """GPUs usable by faiss (0 for a CPU-only faiss build or no GPU)."""
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss is a hard dependency
        return 0
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except Exception:  # pragma: no cover - broken driver
        return 0


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` -> ``gpu`` or ``cpu``; an explicit ``gpu`` without a GPU build is an error."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown search backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "gpu" if faiss_gpu_count() > 0 else "cpu"
    if backend == "gpu" and faiss_gpu_count() == 0:
        raise RuntimeError(
            "search backend 'gpu' needs a faiss GPU build and a visible GPU "
            "(pip install 'xtreme-harness[gpu]' on a CUDA machine); use backend='auto' to fall back to the CPU"
        )
    return backend


class FlatIndex:
    """An exact inner-product index over one database, reusable for many query sets.

    Mining searches the same database with several query sets (and Tatoeba
    searches both directions), so building the (GPU) index once pays off.
    """

    def __init__(self, database: np.ndarray, backend: str = "auto", device: str | None = None) -> None:
        self.database = as_float32(database)
        self.backend = resolve_backend(backend)
        self.dim = self.database.shape[1]
        self._index = None
        self._torch_db = None
        self._device = device
        if self.backend in ("cpu", "gpu"):
            import faiss

            index = faiss.IndexFlatIP(self.dim)
            if self.backend == "gpu":
                options = faiss.GpuMultipleClonerOptions()
                options.shard = True  # split the database across GPUs instead of copying it to each
                index = faiss.index_cpu_to_all_gpus(index, co=options)
            index.add(self.database)
            self._index = index
        else:
            import torch

            self._torch_db = torch.from_numpy(self.database).to(device or "cpu")

    def __len__(self) -> int:
        return self.database.shape[0]

    def search(self, queries: np.ndarray, k: int, block_size: int = DEFAULT_BLOCK_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products for each query: ``(scores[n, k], indices[n, k])``, best first.

        ``k`` is capped at the database size (as the official scripts do with
        ``min(y.shape[0], neighborhood)``).
        """
        queries = as_float32(queries)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {queries.shape[1]}, the database {self.dim}")
        k = min(int(k), len(self))
        if k <= 0:
            raise ValueError("k must be >= 1 and the database must not be empty")
        n = queries.shape[0]
        scores = np.empty((n, k), dtype=np.float32)
        indices = np.empty((n, k), dtype=np.int64)
        for start in range(0, n, max(1, block_size)):
            stop = min(n, start + block_size)
            scores[start:stop], indices[start:stop] = self._search_block(queries[start:stop], k)
        return scores, indices

    def _search_block(self, block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is not None:
            return self._index.search(block, k)
        import torch

        # queries x database scores exist only TORCH_MAX_SCORES at a time: a whole 65536-query
        # block against 50k vectors would be a 13 GB matrix (rows are independent, results identical)
        rows = max(1, TORCH_MAX_SCORES // max(1, len(self)))
        values, indices = [], []
        with torch.no_grad():
            for start in range(0, len(block), rows):
                q = torch.from_numpy(block[start : start + rows]).to(self._torch_db.device)
                top = torch.topk(q @ self._torch_db.T, k, dim=1, largest=True, sorted=True)
                values.append(top.values.cpu().numpy())
                indices.append(top.indices.cpu().numpy().astype(np.int64))
        return np.concatenate(values), np.concatenate(indices)


def knn(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    backend: str = "auto",
    block_size: int = DEFAULT_BLOCK_SIZE,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One-shot exact inner-product k-NN (vectors are expected to be L2-normalised)."""
    return FlatIndex(database, backend=backend, device=device).search(queries, k, block_size=block_size)
