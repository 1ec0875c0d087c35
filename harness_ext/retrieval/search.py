"""Exact inner-product k-nearest-neighbour search over L2-normalised vectors.

Why exact: XTREME's BUCC and Tatoeba numbers come from ``faiss.IndexFlatIP`` /
``IndexFlatL2`` (exhaustive search); an approximate index would change the scores.

Backends (``backend=``):

* ``"cpu"``: ``faiss.IndexFlatIP`` (multi-threaded BLAS);
* ``"gpu"``: the same flat index on the GPUs faiss has kernels for
  (:mod:`harness_ext.retrieval.faiss_env`), on one GPU when the database is small
  and sharded over all of them when it is large (more than
  :data:`SHARD_ABOVE_BYTES`); GPU resources are made once per process and
  torch's cache is emptied first. ``k`` above faiss's GPU limit (2048) is served
  by torch on the same GPU;
* ``"torch"``: exact ``matmul`` + ``topk`` in full float32 precision (no TF32),
  on ``device`` (CPU unless told): the fallback when faiss is absent, broken or
  has no kernels for the GPU, and the reference the tests check faiss against;
* ``"auto"``: ``"gpu"`` when faiss can run on the GPUs, else ``"torch"`` on the
  GPU when torch sees one, else ``"cpu"`` (``"torch"`` on the CPU without faiss).

A broken faiss install (two wheels over each other, missing GPU symbols, any
import error) is named once in a warning with the fix, and the search goes on
without it.

Queries are processed in blocks (``block_size`` rows at a time), so the only
memory that grows with the corpus is the database itself plus ``block_size x k``
results: mining millions of sentences does not need an ``n x n`` score matrix.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from harness_ext.progress import bar
from harness_ext.retrieval import faiss_env

log = logging.getLogger(__name__)

Backend = Literal["auto", "cpu", "gpu", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "cpu", "gpu", "torch")

#: queries per block; 65536 x k results is small, and faiss itself tiles the
#: query x database product internally, so this only bounds our own buffers
DEFAULT_BLOCK_SIZE = 65536
#: torch backend: most query x database similarities computed at once (float32: 256 MiB);
#: measured (bench/bench_retrieval_scale.py, docs/benchmarks.md): N=20k x 20k peaked at 1.8 GiB before
TORCH_MAX_SCORES = 1 << 26
#: the same on a GPU (1 GiB of scores): fewer, larger matmul + topk launches for BUCC-size databases
TORCH_MAX_SCORES_GPU = 1 << 28


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


#: databases up to this size go on one GPU; larger ones are sharded over every usable GPU
SHARD_ABOVE_BYTES = 4 << 30


def faiss_gpu_count() -> int:
    """GPUs faiss can run on here: a working GPU build with kernels for the device (0 otherwise)."""
    return len(faiss_env.faiss_gpus())


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` -> ``gpu``, ``torch`` (on a GPU) or ``cpu``; a faiss backend that cannot run falls back to torch."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown search backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "auto":
        if faiss_gpu_count() > 0:
            return "gpu"
        if faiss_env.torch_cuda_available():
            return "torch"
        return "cpu" if faiss_env.faiss_module() is not None else "torch"
    if backend == "gpu" and faiss_gpu_count() == 0:
        if not faiss_env.torch_cuda_available():
            raise RuntimeError(
                "search backend 'gpu' needs a visible GPU (and, for faiss on it, "
                f"{faiss_env.GPU_FIX}); use backend='auto' to fall back to the CPU"
            )
        log.warning("faiss cannot run on this GPU; backend 'gpu' uses torch's exact search on it")
        return "torch"
    if backend == "cpu" and faiss_env.faiss_module() is None:
        return "torch"
    return backend


def default_device(backend: str, requested: str | None) -> str:
    """Where the torch backend runs: as requested, else the GPU under ``auto``/``gpu``, else the CPU."""
    if requested:
        return requested
    return "cuda" if backend in ("auto", "gpu") and faiss_env.torch_cuda_available() else "cpu"


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
        self._device = default_device(backend, device)
        if self.backend == "cpu":
            index = faiss_env.faiss_module().IndexFlatIP(self.dim)
            index.add(self.database)
            self._index = index
        elif self.backend == "gpu":
            self._index = self._gpu_index()
        else:
            self._torch_database()

    def _gpu_index(self) -> object:
        faiss = faiss_env.faiss_module()
        gpus = list(faiss_env.faiss_gpus())
        faiss_env.free_torch_cache()
        cpu_index = faiss.IndexFlatIP(self.dim)
        if self.database.nbytes <= SHARD_ABOVE_BYTES or len(gpus) == 1:
            gpus = [self._home_gpu(gpus)]
        options = faiss.GpuMultipleClonerOptions()
        options.shard = len(gpus) > 1  # split a large database instead of copying it to each GPU
        resources = [faiss_env.gpu_resources(faiss, g) for g in gpus]
        index = faiss.index_cpu_to_gpu_multiple_py(resources, cpu_index, options, gpus)
        index.add(self.database)
        return index

    @staticmethod
    def _home_gpu(gpus: list[int]) -> int:
        """This process's GPU when faiss may use it (data-parallel ranks each have one), else the first usable."""
        try:
            import torch

            current = torch.cuda.current_device() if torch.cuda.is_initialized() else gpus[0]
        except Exception:  # noqa: BLE001
            current = gpus[0]
        return current if current in gpus else gpus[0]

    def _torch_database(self):
        if self._torch_db is None:
            import torch

            self._torch_db = torch.from_numpy(self.database).to(self._device)
        return self._torch_db

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
        block_size = max(1, block_size)
        with bar(n, f"search {n}x{len(self)}", unit="query", show=n > block_size) as shown:
            for start in range(0, n, block_size):
                stop = min(n, start + block_size)
                scores[start:stop], indices[start:stop] = self._search_block(queries[start:stop], k)
                shown.update(stop - start)
        return scores, indices

    def _search_block(self, block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is not None and not (self.backend == "gpu" and k > faiss_env.GPU_MAX_K):
            return self._index.search(block, k)
        return torch_topk(block, self._torch_database(), k)


def torch_topk(block: np.ndarray, database, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner products of ``block`` against a torch ``database``, in full float32.

    The query x database scores exist only :data:`TORCH_MAX_SCORES` at a time: a whole
    65536-query block against 50k vectors would be a 13 GB matrix (rows are independent,
    results identical). TF32 is switched off for the product, so a GPU ranks the
    neighbours as faiss does, ties aside.
    """
    import torch

    budget = TORCH_MAX_SCORES_GPU if database.device.type == "cuda" else TORCH_MAX_SCORES
    rows = max(1, budget // max(1, len(database)))
    values, indices = [], []
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.no_grad():
            for start in range(0, len(block), rows):
                q = torch.from_numpy(block[start : start + rows]).to(database.device)
                top = torch.topk(q @ database.T, k, dim=1, largest=True, sorted=True)
                values.append(top.values.cpu().numpy())
                indices.append(top.indices.cpu().numpy().astype(np.int64))
    finally:
        torch.set_float32_matmul_precision(precision)
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
