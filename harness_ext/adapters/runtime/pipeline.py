"""The one loop over batches: prepare ahead, run on the caller's thread, finish behind.

Why: on an accelerator the forward pass is fast, and the CPU work around it
(tokenising, padding and pinning a batch, copying results back, decoding them)
runs in series with it unless it overlaps (docs/benchmarks.md, "keeping an
accelerator busy"). :func:`run_waves` therefore splits the work in stages:

* ``encode(lo, hi) -> Wave``: tokenising a wave of requests, on an encoding worker
  one wave ahead (the first wave on the thread that needs it, so nothing waits for
  a thread to start);
* ``prepare(items) -> P`` on a prepare worker that **cuts the next batch from the
  plan and pads it**, keeping up to ``depth`` batches ready: padding, numpy ->
  tensors, pinning on CUDA (no device work, so it cannot run out of device memory).
  The first batch is made on the calling thread while the worker waits at a gate,
  so the device starts after one small wave's tokenising and nothing else;
* ``forward(P) -> O`` on the calling thread: copy to the device, the model, the
  small device-side reductions (argmax, gathers). On CUDA this only queues
  kernels, so the loop takes the next prepared batch at once;
* ``finish(items, O) -> list`` on a finishing worker, up to ``depth`` batches
  behind: ``.cpu()`` (the wait for the device) and the Python decoding. The last
  batch is finished on the calling thread (nothing is left to overlap).

On an accelerator the requests come in **waves** (:func:`plan_waves`): a first wave
of 16, then doubling, cut from the requests sorted by an estimate of their size
(characters), so batches stay as tightly padded as with one global sort while the
device starts early. On the CPU there is one wave in input order (the batches of
before). Batches are cut from a :class:`~harness_ext.adapters.runtime.autobatch.BatchPlan`
in order, longest first within a wave, so the order and composition of batches are
exactly those of the sequential loop (``overlap=False`` runs the same stages inline,
one after the other, and is what the tests compare against). Results come back in
input order. An out-of-memory error in ``forward`` halves the plan's token budget,
stops the prepare worker (dropping the batches prepared from the old plan) and
re-cuts from the failed batch (the plan object keeps the smaller budget for later
calls). An exception in a worker is re-raised on the calling thread as the same
exception object; on any exit the workers are stopped after their current item
(queues are bounded by ``depth``, so nothing waits forever).
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections import deque
from dataclasses import dataclass
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from harness_ext.adapters.runtime.autobatch import BatchPlan, is_oom, release_device_memory

#: batches prepared ahead of / finished behind the one running
DEFAULT_DEPTH = 2
#: seconds a thread may hold the GIL while another wants it, during a pipelined run (Python's default: 0.005)
SWITCH_INTERVAL = 0.0005


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


def _progress_bar(total: int | None, desc: str | None, show: bool):
    """One bar per long phase; the pipeline is the single place adapters iterate batches."""
    from harness_ext.progress import bar

    return bar(total, desc or "batches", unit="item", show=show)


@dataclass
class Wave:
    """A slice of the requests, encoded: the units to batch (examples, windows) and their token lengths."""

    items: Sequence[Any]
    lengths: Sequence[int]
    #: whatever the adapter needs to assemble answers for this slice (windows, offsets, ...)
    extra: Any = None


def wave_bounds(n: int, first: int, largest: int = 8192) -> list[tuple[int, int]]:
    """Contiguous request ranges: ``first`` requests, then doubling up to ``largest``.

    Why waves: batches are sorted by token length, so all lengths must be known
    before the first batch; tokenising everything up front is then CPU time the
    device waits for (on this CPU ~19 ms per 1000 short sentences, a third of the
    forward time at F = 50). A small first wave starts the device early, and each
    next wave is tokenised on a worker while the previous one runs."""
    bounds, lo, size = [], 0, max(1, first)
    while lo < n:
        bounds.append((lo, min(n, lo + size)))
        lo += size
        size = min(largest, size * 2)
    return bounds


def request_waves(n: int, first: int, settings: Any, device: Any, largest: int = 8192) -> list[tuple[int, int]]:
    """:func:`wave_bounds` on an accelerator; one wave (everything tokenised first, one global
    length sort) on the CPU, or as ``--model_args waves=true|false`` says.

    Why not waves on the CPU: there the tokeniser and the model share the same cores, so
    there is nothing to hide, while smaller sorted pools make batches of more mixed
    lengths: bench_adapters' classify went from 1.01x to 0.82-0.90x the floor with
    waves on this CPU."""
    from harness_ext.adapters.runtime.autobatch import is_gpu

    extra = getattr(settings, "extra", None) or {}
    value = extra.get("waves")
    if value is None:
        on = is_gpu(device)
    else:
        on = value if isinstance(value, bool) else str(value).strip().lower() not in ("0", "false", "no", "off")
    return wave_bounds(n, first, largest) if on else ([(0, n)] if n else [])


def first_wave(plan: BatchPlan) -> int:
    """Requests in the first wave: 16 (fewer if the plan's batches are smaller), so the device starts soon.

    Why so few: everything in the first wave is tokenised before the first forward
    pass, and the waves are sorted longest first, so the first wave holds the most
    expensive requests: the 64 longest UD sentences took 21 ms to tokenise on one
    core here (WordPiece, pre-split words), the 16 longest ~5 ms. The waves double
    after it, so the plan's full batches come a few batches later."""
    return max(1, min(16, plan.batch_size))


@dataclass
class WavePlan:
    """Which requests go into which wave: ``bounds`` are ranges of ``order``, the requests
    sorted by an estimate of their size, largest first (``order`` is None for one wave).

    Why sorted: batches are length-sorted only *within* a wave. Waves cut from the input
    order hold every length, so a wave of one or two full accelerator batches (up to 512
    examples) is padded to its longest input: 2-3x the padded tokens of a global sort for
    Tatoeba-like lengths. Waves cut from an estimate-sorted order (characters, known
    without tokenising) keep the padding of a global sort and the longest-first order
    that makes an out-of-memory error happen on the first batch."""

    bounds: list[tuple[int, int]]
    order: list[int] | None = None

    def arrange(self, values: Sequence[Any]) -> list:
        """``values`` (one per request, input order) in wave order."""
        return list(values) if self.order is None else [values[i] for i in self.order]

    def restore(self, values: Any) -> Any:
        """Results in wave order -> input order: a list, or the rows of an array (then an array)."""
        if self.order is None:
            return values if isinstance(values, np.ndarray) else list(values)
        if len(values) != len(self.order):
            raise RuntimeError(f"{len(values)} results for {len(self.order)} requests")
        if isinstance(values, np.ndarray):
            rows = np.empty_like(values)
            rows[np.asarray(self.order)] = values
            return rows
        out: list = [None] * len(values)
        for position, request in enumerate(self.order):
            out[request] = values[position]
        return out


def plan_waves(
    sizes: Sequence[int], first: int, settings: Any, device: Any, largest: int = 8192
) -> WavePlan:
    """:func:`request_waves` for requests of estimated ``sizes`` (e.g. characters); with more
    than one wave, the waves are cut from the requests sorted by size, largest first
    (stable). One wave keeps the input order, so the CPU default is unchanged."""
    bounds = request_waves(len(sizes), first, settings, device, largest)
    if len(bounds) <= 1:
        return WavePlan(bounds)
    return WavePlan(bounds, sorted(range(len(sizes)), key=list(sizes).__getitem__, reverse=True))  # stable


class _Feed:
    """Runs a generator of prepared batches on a worker thread, at most ``depth`` batches ahead.

    Why a thread of its own that cuts *and* prepares: when only the calling thread
    cut batches (between two forward passes), nothing was prepared while the
    device ran, and the first batch of every wave waited for that wave's encoding
    even when a batch was ready (bench_overlap: 8 ms of a 100 ms run before the
    first forward pass). The worker keeps ``depth`` batches ready; the calling
    thread only takes them."""

    def __init__(self, batches: Iterator[Any], depth: int) -> None:
        self._queue: queue.Queue = queue.Queue(max(1, depth))
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(batches,), name="xtreme-prepare", daemon=True)
        self._thread.start()

    def go(self) -> None:
        """Let the worker take over ``batches`` (the caller may pull items from it until then)."""
        self._go.set()

    def _put(self, message: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, batches: Iterator[Any]) -> None:
        while not self._go.wait(0.05):
            if self._stop.is_set():
                return
        try:
            with _no_grad():
                for entry in batches:
                    if not self._put(("batch", entry)):
                        return
            if self._put(("end", None)):
                self._ended.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, re-raised there as itself
            self._put(("error", exc))

    def exhausted(self) -> bool:
        """True when all that is left is the end (so the batch just run was the last)."""
        return self._ended.is_set() and self._queue.qsize() == 1

    def get(self) -> Any:
        """The next prepared batch, or None after the last; a worker's exception is re-raised as itself."""
        kind, value = self._queue.get()
        if kind == "error":
            raise value
        return value if kind == "batch" else None

    def close(self) -> None:
        """Stop after the current item and wait for the thread (batches already prepared are dropped)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.01)
        self._thread.join()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


class _Inline:
    """The same interface as :class:`_Feed`, with the batches made on the calling thread (sequential mode)."""

    def __init__(self, batches: Iterator[Any], depth: int) -> None:
        self._batches = batches

    def go(self) -> None:
        pass

    def exhausted(self) -> bool:
        return False

    def get(self) -> Any:
        return next(self._batches, None)

    def close(self) -> None:
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()


def run_waves(
    bounds: Sequence[tuple[int, int]],
    encode: Callable[[int, int], Wave],
    plan: BatchPlan,
    forward: Callable[[Any], Any],
    *,
    prepare: Callable[[list], Any] | None = None,
    finish: Callable[[list, Any], Any] | None = None,
    collect: Callable[[int, list[int], Any], None] | None = None,
    overlap: bool = True,
    depth: int = DEFAULT_DEPTH,
    desc: str | None = None,
    progress: bool = True,
    total: int | None = None,
) -> list[tuple[Wave, list]]:
    """Run ``finish(batch, forward(prepare(batch)))`` over the waves ``encode(lo, hi)`` for ``bounds``.

    Wave ``k + 1`` is encoded on a worker while wave ``k``'s batches run. Within a
    wave, units are batched longest first by ``plan``. Returns ``(wave, results)``
    per wave, results in the wave's unit order; with ``collect`` (called on the
    calling thread as ``collect(k, unit indices, finished)`` in batch order) the
    results are not kept.
    """
    from harness_ext.adapters.runtime.batching import longest_first

    prepare = prepare or _identity
    depth = max(1, int(depth))
    encoder = ThreadPoolExecutor(1, thread_name_prefix="xtreme-encode") if overlap else None
    finisher = ThreadPoolExecutor(1, thread_name_prefix="xtreme-finish") if overlap else None

    # the workers run Python (tokeniser glue, padding, decoding) while the caller waits for the device;
    # with the default 5 ms switch interval the caller can wait that long for the GIL after each batch
    switch_interval = sys.getswitchinterval()
    if overlap:
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL))

    # written only by the batch maker (the feed's thread, or the caller in sequential mode); the caller
    # reads wave k only after receiving one of its batches, and restarts the maker only after stopping it
    waves: list[Wave] = []
    orders: list[list[int]] = []
    results: list[list] = []
    encoding: deque[Any] = deque()  # encode futures of the next waves
    next_wave = 0

    def submit_encode(lo: int, hi: int) -> Future | _Done:
        if encoder is None:
            return _Done(_call(encode, lo, hi))
        return encoder.submit(_call, encode, lo, hi)

    def wave(k: int) -> bool:
        """Make wave ``k`` available (encoding one more ahead); False past the last."""
        nonlocal next_wave
        while len(waves) <= k:
            if not encoding and next_wave < len(bounds):  # nothing under way (the start): encode it here,
                w = _call(encode, *bounds[next_wave])  # then start the encoder on the next ones (not before:
                next_wave += 1  # on a small machine they would share the cores while the device waits)
            elif not encoding:
                return False
            else:
                w = encoding.popleft().result()  # an encoding error is re-raised here as itself
            while next_wave < len(bounds) and len(encoding) < 2:
                encoding.append(submit_encode(*bounds[next_wave]))
                next_wave += 1
            if len(w.items) != len(w.lengths):
                raise RuntimeError(f"wave has {len(w.items)} items but {len(w.lengths)} lengths")
            results.append([] if collect is not None else [None] * len(w.items))
            orders.append(longest_first(w.lengths))
            waves.append(w)
        return True

    def batches(k: int, pos: int) -> Iterator[tuple[int, int, list[int], Any]]:
        """Prepared batches from position ``pos`` of wave ``k`` on, each cut from ``plan`` as it stands."""
        while wave(k):
            order, lengths = orders[k], waves[k].lengths
            if pos >= len(order):
                k, pos = k + 1, 0
                continue
            batch = order[pos : pos + plan.size_for(lengths[order[pos]], len(order) - pos)]
            items = waves[k].items
            yield k, pos, batch, _call(prepare, [items[i] for i in batch])
            pos += len(batch)

    def start(k: int, pos: int) -> tuple[Any, _Feed | _Inline]:
        """The first batch from (``k``, ``pos``), made on this thread, and a feed for the rest.

        Why the first here: handing it over from a worker that has just started costs
        a thread start and two wake-ups before the device has anything to do. The
        worker is started first but waits until the first batch is made: started after
        it, its first steps held the GIL while the caller still waited in
        ``Thread.start`` (1-3.5 ms before the first forward pass on the 2-core box)."""
        made = batches(k, pos)
        feed = (_Feed if overlap else _Inline)(made, depth)
        try:
            first = next(made, None)
        except BaseException:
            feed.close()
            raise
        feed.go()
        return first, feed

    def store(k: int, batch: list[int], outputs: Any) -> None:
        if collect is not None:
            collect(k, batch, outputs)
            return
        if len(outputs) != len(batch):
            raise RuntimeError(f"batch function returned {len(outputs)} results for {len(batch)} inputs")
        for i, out in zip(batch, outputs):
            results[k][i] = out

    behind: deque[tuple[int, list[int], Any]] = deque()  # (wave, batch, finishing)
    show = progress and (total is None or total > plan.batch_size)
    feed: _Feed | _Inline | None = None
    clean = False
    try:
        with _progress_bar(total, desc, show) as bar:
            entry, feed = start(0, 0)
            while True:
                if entry is None:
                    break
                k, pos, batch, prepared = entry
                out_of_memory = False
                try:
                    outputs = _call(forward, prepared)
                except Exception as exc:  # noqa: BLE001 - re-raised unless it is an OOM we can halve
                    if len(batch) == 1 or not is_oom(exc):
                        raise
                    out_of_memory = True
                if out_of_memory:  # outside the except block, so the failed batch's tensors are freed
                    del prepared, entry
                    feed.close()  # drops the batches prepared from the old plan
                    release_device_memory()
                    plan.shrink(len(batch), len(batch) * max(1, waves[k].lengths[batch[0]]))
                    entry, feed = start(k, pos)  # re-cut from the failed batch with the smaller plan
                    continue
                del prepared
                entry = None
                last = feed.exhausted()
                if finish is None:
                    store(k, batch, outputs)
                elif finisher is None or last:  # the last batch: nothing left to overlap, no hand-off
                    while behind:
                        k0, b0, f0 = behind.popleft()
                        store(k0, b0, f0.result())
                    store(k, batch, _call(finish, [waves[k].items[i] for i in batch], outputs))
                else:
                    behind.append((k, batch, finisher.submit(_call, finish, [waves[k].items[i] for i in batch], outputs)))
                    while len(behind) > depth:
                        k0, b0, f0 = behind.popleft()
                        store(k0, b0, f0.result())
                bar.update(len(batch))
                entry = feed.get()
            while behind:
                k0, b0, f0 = behind.popleft()
                store(k0, b0, f0.result())
        clean = True
    finally:
        if feed is not None:
            feed.close()
        for future in [*encoding, *(entry[-1] for entry in behind)]:
            future.cancel()
        executors = [executor for executor in (encoder, finisher) if executor is not None]
        for executor in executors:  # wake them all, then wait: one wake-up latency, not one each
            executor.shutdown(wait=False, cancel_futures=not clean)
        for executor in executors:
            executor.shutdown(wait=True)
        sys.setswitchinterval(switch_interval)
    return list(zip(waves, results))


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
    """:func:`run_waves` over one wave that is already encoded (``items`` with their ``lengths``).

    Without ``collect``, ``finish`` (or ``forward`` when there is no ``finish``) must
    return one result per item, and the list of results in input order is returned.
    With ``collect``, it is called as ``collect(indices, finished)`` for every batch,
    in batch order, and nothing is returned. ``overlap=False`` runs the same stages
    inline (the sequential reference).
    """
    if len(items) != len(lengths):
        raise ValueError(f"{len(items)} items but {len(lengths)} lengths")
    if not items:
        return None if collect is not None else []
    one = Wave(items, lengths)
    out = run_waves(
        [(0, len(items))], lambda lo, hi: one, plan, forward, prepare=prepare, finish=finish,
        collect=(lambda k, batch, outputs: collect(batch, outputs)) if collect is not None else None,
        overlap=overlap, depth=depth, desc=desc, progress=progress, total=len(items),
    )
    return None if collect is not None else out[0][1]


def overlap_enabled(settings: Any) -> bool:
    """``--model_args pipeline=false`` runs the stages in series (for comparison and debugging)."""
    extra = getattr(settings, "extra", None) or {}
    value = extra.get("pipeline", True)
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("0", "false", "no", "off")
