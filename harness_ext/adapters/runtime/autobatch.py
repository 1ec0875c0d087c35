"""Automatic batch size: how many examples (and padded tokens) go into one forward pass.

Why a *plan* and not one number: batches are sorted longest first and padded per
batch (:mod:`harness_ext.adapters.runtime.batching`), so a fixed example count either
wastes memory on short inputs or overflows on long ones. A :class:`BatchPlan`
caps both the examples (``batch_size``) and the padded tokens
(``len(batch) * longest``, ``token_budget``) of a batch.

``batch_size=None`` ("auto", ``--model_args batch_size=auto``) means:

* **GPU**: start large (``max_batch_size`` examples, :data:`GPU_START_TOKENS`
  tokens) and halve on out-of-memory. Because the longest batch comes first, an
  OOM happens on the first batch, is caught by ``run_batched``, the budget is
  halved and the same inputs are retried: the run ends up at the largest budget
  (within a factor of two) that fits. The plan is kept per loaded model
  (:func:`plan_for`), so the next language starts at the size that worked.
* **CPU**: no OOM to find (the machine swaps or the kernel kills us long before),
  and bigger is *not* faster: on the 2-core AMD EPYC of ``docs/benchmarks.md``
  (``bench/bench_batch_sweep.py``, 1 thread), all-MiniLM-L6-v2's forward passes over
  1000 Tatoeba sentences took 2.9 CPU-s with 512-1024-token batches, 3.2 s at 2048,
  3.3 s at 4096 and 6.1 s with 256 sentences per batch; 384-token QA windows took
  6.6 s at 1024 tokens and 13.9 s at 64 windows per batch. Activations that stay in
  cache win, so the CPU default is a token budget of :data:`CPU_ACTIVATION_BUDGET` /
  hidden size (1024 tokens for hidden 384, 512 for 768, 384 for 1024: within 2 % of
  the best budget in both sweeps; the scaling with hidden size is a cache-size
  argument, measured only at 384, and with more threads a bigger budget may pay off)
  and at most :data:`CPU_MAX_BATCH` examples.

An explicit ``batch_size`` is used as given; it too is halved (with a warning)
rather than crashing a long run if a batch does not fit.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

log = logging.getLogger(__name__)

#: CPU: padded tokens x hidden size per batch (1024 tokens at hidden 384)
CPU_ACTIVATION_BUDGET = 393_216
#: CPU: most examples per batch with the automatic plan
CPU_MAX_BATCH = 64
#: GPU: padded tokens of the first automatic batch; halved until it fits
GPU_START_TOKENS = 65_536
#: substrings of out-of-memory errors that are not ``torch.OutOfMemoryError`` (cuBLAS/cuDNN, CPU allocator, MPS)
OOM_MESSAGES = (
    "out of memory",
    "cublas_status_alloc_failed",
    "cudnn_status_not_supported",
    "can't allocate memory",
    "not enough memory",
)

R = TypeVar("R")


@dataclass
class BatchPlan:
    """Most examples and most padded tokens per batch; shrinks in place on OOM."""

    batch_size: int
    token_budget: int | None = None
    automatic: bool = False
    #: how many times an OOM halved this plan (reported by the benchmarks)
    halvings: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, got {self.token_budget}")

    def size_for(self, longest: int, remaining: int) -> int:
        """Examples in the next batch, whose longest (first) example has ``longest`` tokens."""
        size = min(self.batch_size, remaining)
        if self.token_budget is not None:
            size = min(size, self.token_budget // max(1, longest))
        return max(1, size)

    def shrink(self, failed_size: int, failed_tokens: int) -> None:
        """Halve after a batch of ``failed_size`` examples / ``failed_tokens`` padded tokens ran out of memory.

        The token budget is halved (not the example cap), so batches of shorter
        inputs later in the run can still hold more examples.
        """
        if failed_size <= 1:
            raise ValueError("a batch of one example cannot be halved")
        self.token_budget = max(1, failed_tokens // 2)
        self.halvings += 1
        log.warning(
            "out of memory on a batch of %d examples (%d padded tokens); continuing with at most %d tokens per batch",
            failed_size, failed_tokens, self.token_budget,
        )


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error of any torch device."""
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):  # pragma: no cover - torch is a dependency
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or any(m in str(exc).lower() for m in OOM_MESSAGES)
    )


def release_device_memory() -> None:
    """Free what a failed batch left behind (the caller must have left its ``except`` block)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def hidden_size(model: Any) -> int | None:
    """The encoder's hidden size from its config, if it says."""
    config = getattr(model, "config", None)
    for name in ("hidden_size", "d_model", "dim", "n_embd"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def is_gpu(device: Any) -> bool:
    text = str(device)
    return text.startswith("cuda") or text.startswith("xpu") or text.startswith("mps")


def automatic_plan(device: Any, model: Any = None, max_batch_size: int = 512) -> BatchPlan:
    """The starting plan for ``batch_size=auto`` on ``device`` (see the module docstring)."""
    if is_gpu(device):
        return BatchPlan(batch_size=max_batch_size, token_budget=GPU_START_TOKENS, automatic=True)
    hidden = hidden_size(model) or 768
    return BatchPlan(
        batch_size=min(CPU_MAX_BATCH, max_batch_size),
        token_budget=max(64, CPU_ACTIVATION_BUDGET // hidden),
        automatic=True,
    )


def plan_batches(settings: Any, model: Any = None, device: Any = None) -> BatchPlan:
    """A fresh plan from adapter settings: the given ``batch_size``, or automatic when it is None."""
    device = device if device is not None else getattr(settings, "device", "cpu")
    max_batch = int(getattr(settings, "max_batch_size", 512) or 512)
    if getattr(settings, "batch_size", None):
        return BatchPlan(batch_size=int(settings.batch_size))
    return automatic_plan(device, model, max_batch)


def _plan_device(loaded: Any, settings: Any) -> Any:
    device = getattr(settings, "device", None)
    model = getattr(loaded, "model", None)
    if device is None and model is not None:
        try:
            device = next(model.parameters()).device
        except (AttributeError, StopIteration, TypeError):
            device = "cpu"
    return device


def _plan_key(device: Any, settings: Any) -> tuple:
    return ("_batch_plan", str(device), getattr(settings, "batch_size", None), getattr(settings, "max_batch_size", None))


def plan_for(loaded: Any, settings: Any) -> BatchPlan:
    """The plan for one loaded checkpoint, kept in ``loaded.extra`` so an OOM halving is
    remembered for the rest of the run (the next language does not OOM again)."""
    model = getattr(loaded, "model", None)
    device = _plan_device(loaded, settings)
    memo = getattr(loaded, "extra", None)
    if not isinstance(memo, dict):
        return plan_batches(settings, model, device)
    key = _plan_key(device, settings)
    if key not in memo:
        memo[key] = plan_batches(settings, model, device)
    return memo[key]


def remember_plan(loaded: Any, settings: Any, plan: BatchPlan) -> None:
    """Make :func:`plan_for` return ``plan`` for this checkpoint and settings (e.g. a
    benchmark that simulates an accelerator on the CPU runs the accelerator's plan)."""
    if not isinstance(getattr(loaded, "extra", None), dict):
        raise TypeError(f"{type(loaded).__name__} has no 'extra' dict to keep a batch plan in")
    loaded.extra[_plan_key(_plan_device(loaded, settings), settings)] = plan


def find_batch_size(probe: Callable[[int], R], start: int, minimum: int = 1) -> int:
    """Largest size ``<= start`` (halving from ``start``) for which ``probe(size)`` runs without OOM.

    For callers that want a number before the run (e.g. to report it); adapters
    need not call it, because ``run_batched`` halves on the real batches.
    """
    size = start
    while True:
        try:
            probe(size)
            return size
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is an OOM
            if not is_oom(exc) or size <= minimum:
                raise
        release_device_memory()
        log.info("batch of %d does not fit; trying %d", size, max(minimum, size // 2))
        size = max(minimum, size // 2)
