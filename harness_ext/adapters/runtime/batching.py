"""Length-sorted batching with dynamic padding, shared by all adapters.

Padding every batch to the longest item *of that batch* after sorting by length is
what makes encoder evaluation cheap (see docs/benchmarks.md): a fixed pad to 128
costs ~5x on the CPU for Tatoeba-length sentences. Batches are also capped in
padded tokens (:class:`harness_ext.adapters.runtime.autobatch.BatchPlan`), and a batch that
runs out of memory is halved and retried instead of ending the run.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

from harness_ext.adapters.runtime.autobatch import BatchPlan, is_oom, release_device_memory

R = TypeVar("R")

T = TypeVar("T")


def longest_first(lengths: Sequence[int]) -> list[int]:
    """Indices by decreasing length; equal lengths keep input order (stable)."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def _as_plan(batch_size: int | BatchPlan | None, token_budget: int | None) -> BatchPlan:
    if isinstance(batch_size, BatchPlan):
        return batch_size
    if batch_size is None:
        from harness_ext.adapters.runtime.autobatch import automatic_plan

        plan = automatic_plan("cpu")
        if token_budget is not None:
            plan.token_budget = token_budget
        return plan
    return BatchPlan(batch_size=int(batch_size), token_budget=token_budget)


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int | BatchPlan, token_budget: int | None = None
) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    Longest first means an out-of-memory error happens on the first batch, not
    after an hour. With ``token_budget``, a batch also stops growing once
    ``len(batch) * longest`` would exceed the budget (a single over-long item
    still gets a batch of its own).
    """
    return list(iter_length_sorted_batches(lengths, _as_plan(batch_size, token_budget)))


def iter_length_sorted_batches(lengths: Sequence[int], plan: BatchPlan) -> Iterator[list[int]]:
    """Like :func:`length_sorted_batches`, but each batch is cut from ``plan`` only when it is
    asked for, so a plan shrunk by an out-of-memory error on one batch already governs the next."""
    order = longest_first(lengths)
    pos = 0
    while pos < len(order):
        size = plan.size_for(lengths[order[pos]], len(order) - pos)
        yield order[pos : pos + size]
        pos += size


def run_batched(
    items: Sequence[T],
    lengths: Sequence[int],
    batch_size: int | BatchPlan | None,
    fn: Callable[[list[T]], list],
    *,
    token_budget: int | None = None,
    desc: str | None = None,
    progress: bool = True,
) -> list:
    """Apply ``fn`` to length-sorted batches; results come back in input order.

    ``batch_size`` is a number, a :class:`BatchPlan` (e.g. from
    :func:`harness_ext.adapters.runtime.autobatch.plan_for`) or None (the CPU automatic
    plan). When ``fn`` runs out of memory on a batch of more than one item, the
    plan's token budget is halved and the same items are retried in smaller
    batches; the plan object keeps the smaller budget for later calls.
    """
    from harness_ext.adapters.runtime.pipeline import run_pipelined

    plan = _as_plan(batch_size, token_budget)
    # one function does the whole batch, so there is nothing to overlap: run it inline
    return run_pipelined(items, lengths, plan, fn, overlap=False, desc=desc, progress=progress)  # type: ignore[return-value]


def split_on_oom(
    fn: Callable[[list], R],
    chunk: list,
    merge: Callable[[R, R], R],
    *,
    plan: BatchPlan | None = None,
    longest: int | None = None,
) -> R:
    """``fn(chunk)``; on an out-of-memory error, the two halves separately, joined by ``merge``.

    Shared by the adapters that run a pre-built batch (embedding, text-to-text) so one
    oversized batch degrades to smaller ones instead of losing the run. With ``plan``
    (and ``longest``, the chunk's longest item in tokens), the plan is shrunk as
    :func:`run_batched` does, so batches cut from it later (see
    :func:`iter_length_sorted_batches`) start at the size that fits instead of running
    out of memory again.
    """
    try:
        return fn(chunk)
    except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are retried
        if len(chunk) == 1 or not is_oom(exc):
            raise
    release_device_memory()  # outside the except block, so the failed batch's tensors are gone
    if plan is None:
        logging.getLogger(__name__).warning("out of memory on a batch of %d; splitting it", len(chunk))
        half = len(chunk) // 2
        return merge(split_on_oom(fn, chunk[:half], merge), split_on_oom(fn, chunk[half:], merge))
    bound = max(1, longest or 1)
    plan.shrink(len(chunk), len(chunk) * bound)
    result: R | None = None
    pos = 0
    while pos < len(chunk):  # each piece is cut from the plan as it stands now, after any inner shrink
        size = plan.size_for(bound, len(chunk) - pos)
        part = split_on_oom(fn, chunk[pos : pos + size], merge, plan=plan, longest=bound)
        result = part if result is None else merge(result, part)
        pos += size
    return result  # type: ignore[return-value]


def pad_columns(
    columns: Mapping[str, Sequence[Sequence[int]]],
    rows: Sequence[int],
    pad_values: Mapping[str, int] | None = None,
    attention_mask: bool = True,
) -> dict[str, np.ndarray]:
    """Right-pad the ragged token lists ``columns[key][row]`` of ``rows`` into int64 arrays.

    One vectorised fill per key (no per-example Python beyond collecting the
    lists), so padding costs microseconds next to the forward pass. Adds an
    ``attention_mask`` unless ``columns`` has one or ``attention_mask=False``.
    """
    pad_values = pad_values or {}
    first_key = next(iter(columns))
    lengths = np.fromiter((len(columns[first_key][r]) for r in rows), dtype=np.int64, count=len(rows))
    longest = int(lengths.max()) if len(rows) else 0
    mask = np.arange(longest)[None, :] < lengths[:, None]
    total = int(lengths.sum())
    out: dict[str, np.ndarray] = {}
    for key, column in columns.items():
        array = np.full((len(rows), longest), pad_values.get(key, 0), dtype=np.int64)
        array[mask] = np.fromiter(itertools.chain.from_iterable(column[r] for r in rows), dtype=np.int64, count=total)
        out[key] = array
    if attention_mask and "attention_mask" not in out:
        out["attention_mask"] = mask.astype(np.int64)
    return out


def to_device(arrays: Mapping[str, np.ndarray], device: Any) -> dict[str, Any]:
    """numpy batch -> torch tensors on ``device``; on CUDA through pinned memory with
    non-blocking copies, so the copy overlaps the previous batch's kernels."""
    return move(host_tensors(arrays, device), device)


def host_tensors(arrays: Mapping[str, Any], device: Any) -> dict[str, Any]:
    """numpy arrays (or CPU tensors) -> CPU tensors, pinned when they are bound for CUDA.

    The half of :func:`to_device` that needs no device, so a pipeline's prepare
    stage (:mod:`harness_ext.adapters.runtime.pipeline`) can do it on a worker thread."""
    import torch

    cuda = str(device).startswith("cuda")
    out = {}
    for key, value in arrays.items():
        tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
        out[key] = tensor.pin_memory() if cuda else tensor
    return out


def move(tensors: Mapping[str, Any], device: Any) -> dict[str, Any]:
    """CPU tensors -> ``device`` (non-blocking from pinned memory; a no-op on the CPU)."""
    if str(device) == "cpu":
        return dict(tensors)
    cuda = str(device).startswith("cuda")
    return {key: tensor.to(device, non_blocking=cuda) for key, tensor in tensors.items()}


def chunks(seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``seq`` of at most ``size`` items."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
