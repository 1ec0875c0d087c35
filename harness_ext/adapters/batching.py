"""Length-sorted batching with dynamic padding, shared by all adapters.

Padding every batch to the longest item *of that batch* after sorting by length is
what makes encoder evaluation cheap (see docs/benchmarks.md): a fixed pad to 128
costs ~5x on the CPU for Tatoeba-length sentences.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def length_sorted_batches(lengths: Sequence[int], batch_size: int, token_budget: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    Longest first means an out-of-memory error happens on the first batch, not
    after an hour. With ``token_budget``, a batch also stops growing once
    ``len(batch) * longest`` would exceed the budget.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        candidate_longest = max(longest, lengths[i])
        too_many = len(current) >= batch_size
        too_big = token_budget is not None and current and (len(current) + 1) * candidate_longest > token_budget
        if current and (too_many or too_big):
            batches.append(current)
            current, candidate_longest = [], lengths[i]
        current.append(i)
        longest = candidate_longest
    if current:
        batches.append(current)
    return batches


def run_batched(
    items: Sequence[T],
    lengths: Sequence[int],
    batch_size: int,
    fn: Callable[[list[T]], list],
    *,
    desc: str | None = None,
    progress: bool = True,
) -> list:
    """Apply ``fn`` to length-sorted batches; results come back in input order."""
    from tqdm.auto import tqdm

    results: list = [None] * len(items)
    batches = length_sorted_batches(lengths, batch_size)
    for batch in tqdm(batches, desc=desc, disable=not progress or len(batches) < 2, leave=False):
        outputs = fn([items[i] for i in batch])
        if len(outputs) != len(batch):
            raise RuntimeError(f"batch function returned {len(outputs)} results for {len(batch)} inputs")
        for i, out in zip(batch, outputs):
            results[i] = out
    return results


def chunks(seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
