"""The one loop over batches: prepare ahead, run on the caller's thread, finish behind.

Why: on an accelerator the forward pass is fast, and the CPU work around it
(padding and pinning a batch, copying results back, decoding them) runs in series
with it unless it overlaps (docs/benchmarks.md, "keeping an accelerator busy").
:func:`run_pipelined` therefore splits a batch's work in three stages:

* ``prepare(items) -> P`` on a worker thread, up to ``depth`` batches ahead:
  padding, numpy -> tensors, pinning on CUDA (no device work, so it cannot run out
  of device memory);
* ``forward(P) -> O`` on the calling thread: copy to the device, the model, the
  small device-side reductions (argmax, gathers). On CUDA this only queues
  kernels, so the loop moves on to the next batch at once;
* ``finish(items, O) -> list`` on a second worker thread, up to ``depth`` batches
  behind: ``.cpu()`` (the wait for the device) and the Python decoding.

Batches are cut from a :class:`~harness_ext.adapters.autobatch.BatchPlan` on the
calling thread, longest first, so the order and composition of batches are exactly
those of the sequential loop (``overlap=False`` runs the same stages inline, one
after the other, and is what the tests compare against). Results come back in
input order. An out-of-memory error in ``forward`` halves the plan's token budget,
drops the batches prepared from the old plan and re-cuts from the failed batch
(the plan object keeps the smaller budget for later calls). An exception in a
worker is re-raised on the calling thread as the same exception object; on any
exit the workers are stopped after their current item (queues are bounded by
``depth``, so nothing waits forever).
"""

from __future__ import annotations

import contextlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Sequence

from harness_ext.adapters.autobatch import BatchPlan, is_oom, release_device_memory

#: batches prepared ahead of / finished behind the one running
DEFAULT_DEPTH = 2


class _Done:
    """A finished value with the part of the ``Future`` interface the loop uses (sequential mode)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value

    def cancel(self) -> bool:
        return False


def _no_grad() -> contextlib.AbstractContextManager:
    """``torch.inference_mode`` is per thread: the workers need it as much as the caller."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return contextlib.nullcontext()
    return torch.inference_mode()


def _call(fn: Callable, *args: Any) -> Any:
    with _no_grad():
        return fn(*args)


def _identity(items: list) -> list:
    return items


def _progress_bar(total: int, desc: str | None, show: bool):
    """One bar per long phase; the pipeline is the single place adapters iterate batches."""
    from harness_ext.progress import bar

    return bar(total, desc or "batches", unit="item", show=show)


def run_pipelined(
    items: Sequence[Any],
    lengths: Sequence[int],
    plan: BatchPlan,
    forward: Callable[[Any], Any],
    *,
    prepare: Callable[[list], Any] | None = None,
    finish: Callable[[list, Any], Any] | None = None,
    collect: Callable[[list[int], Any], None] | None = None,
    overlap: bool = True,
    depth: int = DEFAULT_DEPTH,
    desc: str | None = None,
    progress: bool = True,
) -> list | None:
    """Run ``finish(batch, forward(prepare(batch)))`` over length-sorted batches of ``items``.

    Without ``collect``, ``finish`` (or ``forward`` when there is no ``finish``) must
    return one result per item, and the list of results in input order is returned.
    With ``collect``, it is called on the calling thread as ``collect(indices,
    finished)`` for every batch, in batch order, and nothing is returned (for
    adapters that stream results, e.g. embeddings flushed to a cache).
    ``overlap=False`` runs the same stages inline (the sequential reference).
    """
    from harness_ext.adapters.batching import longest_first

    prepare = prepare or _identity
    depth = max(1, int(depth))
    n = len(items)
    order = longest_first(lengths)
    results: list = [None] * n
    pools: list[ThreadPoolExecutor] = []
    if overlap:
        prep_pool = ThreadPoolExecutor(1, thread_name_prefix="xtreme-prepare")
        pools.append(prep_pool)
        fin_pool = ThreadPoolExecutor(1, thread_name_prefix="xtreme-finish") if finish else None
        if fin_pool:
            pools.append(fin_pool)

    def submit(pool_index: int, fn: Callable, *args: Any) -> Future | _Done:
        if not overlap:
            return _Done(_call(fn, *args))
        return pools[pool_index].submit(_call, fn, *args)

    def store(batch: list[int], outputs: Any) -> None:
        if collect is not None:
            collect(batch, outputs)
            return
        if len(outputs) != len(batch):
            raise RuntimeError(f"batch function returned {len(outputs)} results for {len(batch)} inputs")
        for i, out in zip(batch, outputs):
            results[i] = out

    ahead: deque[tuple[list[int], Any]] = deque()  # cut and prepared (or being prepared)
    behind: deque[tuple[list[int], Any]] = deque()  # run and being finished
    done = 0  # items in order[:done] have been run
    cut = 0  # items in order[:cut] have been cut into batches
    show = progress and n > plan.batch_size
    try:
        with _progress_bar(n, desc, show) as bar:
            while done < n:
                while len(ahead) < depth and cut < n:
                    batch = order[cut : cut + plan.size_for(lengths[order[cut]], n - cut)]
                    cut += len(batch)
                    ahead.append((batch, submit(0, prepare, [items[i] for i in batch])))
                batch, pending = ahead.popleft()
                prepared = pending.result()  # a worker's exception is re-raised here as itself
                out_of_memory = False
                try:
                    outputs = _call(forward, prepared)
                except Exception as exc:  # noqa: BLE001 - re-raised unless it is an OOM we can halve
                    if len(batch) == 1 or not is_oom(exc):
                        raise
                    out_of_memory = True
                if out_of_memory:  # outside the except block, so the failed batch's tensors are freed
                    del prepared
                    for _, stale in ahead:
                        stale.cancel()
                    ahead.clear()
                    release_device_memory()
                    plan.shrink(len(batch), len(batch) * max(1, lengths[batch[0]]))
                    cut = done
                    continue
                del prepared
                done += len(batch)
                if finish is None:
                    store(batch, outputs)
                else:
                    behind.append((batch, submit(1, finish, [items[i] for i in batch], outputs)))
                    while len(behind) > depth:
                        store(behind[0][0], behind.popleft()[1].result())
                bar.update(len(batch))
            while behind:
                store(behind[0][0], behind.popleft()[1].result())
    finally:
        for queue in (ahead, behind):
            for _, pending in queue:
                pending.cancel()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
    return None if collect is not None else results


def overlap_enabled(settings: Any) -> bool:
    """``--model_args pipeline=false`` runs the stages in series (for comparison and debugging)."""
    extra = getattr(settings, "extra", None) or {}
    value = extra.get("pipeline", True)
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("0", "false", "no", "off")
