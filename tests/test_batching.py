"""Batching utilities: order is kept, token budgets are respected, padding is exact."""

from __future__ import annotations

import random

import numpy as np
import pytest

from harness_ext.adapters.runtime.autobatch import BatchPlan
from harness_ext.adapters.runtime.batching import chunks, length_sorted_batches, pad_columns, run_batched, to_device


def _lengths(n: int = 200, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 120) for _ in range(n)]


def test_batches_cover_every_index_once_longest_first():
    lengths = _lengths()
    batches = length_sorted_batches(lengths, 16)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert all(len(b) <= 16 for b in batches)


def test_equal_lengths_keep_input_order():
    assert length_sorted_batches([3, 5, 3, 5, 3], 2) == [[1, 3], [0, 2], [4]]


@pytest.mark.parametrize("budget", [1, 50, 128, 1000, 4096])
def test_token_budget_bounds_padded_tokens(budget):
    lengths = _lengths()
    for batch in length_sorted_batches(lengths, 64, token_budget=budget):
        padded = len(batch) * max(lengths[i] for i in batch)
        # a single item longer than the budget still gets a batch of its own
        assert padded <= budget or len(batch) == 1
        assert len(batch) <= 64


def test_budget_fills_batches_greedily():
    # 10 items of length 10, budget 35 -> batches of 3, 3, 3, 1
    assert [len(b) for b in length_sorted_batches([10] * 10, 64, token_budget=35)] == [3, 3, 3, 1]


def test_plan_and_number_give_the_same_batches():
    lengths = _lengths()
    assert length_sorted_batches(lengths, BatchPlan(8, 300)) == length_sorted_batches(lengths, 8, 300)


def test_run_batched_returns_results_in_input_order():
    lengths = _lengths(101)
    items = [f"item-{i}" for i in range(len(lengths))]
    seen_sizes = []

    def fn(batch):
        seen_sizes.append(len(batch))
        return [s.upper() for s in batch]

    assert run_batched(items, lengths, 7, fn, progress=False) == [s.upper() for s in items]
    assert sum(seen_sizes) == len(items) and max(seen_sizes) <= 7


def test_run_batched_respects_token_budget_and_checks_result_count():
    lengths = _lengths(60)
    padded = []

    def fn(batch):
        padded.append(len(batch) * max(lengths[i] for i in batch))
        return list(batch)

    assert run_batched(list(range(60)), lengths, 32, fn, token_budget=200, progress=False) == list(range(60))
    assert all(p <= 200 or p <= max(lengths) for p in padded)
    with pytest.raises(RuntimeError, match="returned 0 results"):
        run_batched([1, 2], [1, 1], 2, lambda batch: [], progress=False)


def test_run_batched_does_not_swallow_other_errors():
    def fn(batch):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_batched([1, 2, 3], [1, 2, 3], 2, fn, progress=False)


def test_pad_columns_pads_right_with_mask():
    columns = {"input_ids": [[5, 6, 7], [8], [9, 10]], "token_type_ids": [[0, 0, 1], [0], [0, 1]]}
    out = pad_columns(columns, [2, 1, 0], {"input_ids": 99})
    assert out["input_ids"].tolist() == [[9, 10, 99], [8, 99, 99], [5, 6, 7]]
    assert out["token_type_ids"].tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert out["attention_mask"].tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert all(a.dtype == np.int64 for a in out.values())


def test_pad_columns_matches_tokenizer_pad(minilm_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path))
    texts = ["a short one", "a much longer sentence with quite a few more words in it", "mid length text here"]
    encoding = tokenizer(texts, return_attention_mask=False)
    columns = {k: encoding[k] for k in ("input_ids", "token_type_ids")}
    ours = pad_columns(columns, [1, 0, 2], {"input_ids": tokenizer.pad_token_id})
    theirs = tokenizer.pad([{k: encoding[k][i] for k in columns} for i in (1, 0, 2)], return_tensors="np")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert ours[key].tolist() == theirs[key].tolist()


def test_to_device_on_cpu_shares_memory():
    arrays = {"input_ids": np.arange(6, dtype=np.int64).reshape(2, 3)}
    tensors = to_device(arrays, "cpu")
    assert tensors["input_ids"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_chunks():
    assert [list(c) for c in chunks(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_split_on_oom_halves_until_the_batch_fits_and_keeps_order():
    import torch

    from harness_ext.adapters.runtime.batching import split_on_oom

    sizes: list[int] = []

    def fn(chunk: list[int]) -> list[int]:
        sizes.append(len(chunk))
        if len(chunk) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return [x * 10 for x in chunk]

    assert split_on_oom(fn, list(range(7)), lambda a, b: a + b) == [x * 10 for x in range(7)]
    assert max(s for s in sizes if s <= 2) <= 2 and sizes[0] == 7

    def other_error(chunk: list[int]) -> list[int]:
        raise ValueError("not a memory problem")

    import pytest

    with pytest.raises(ValueError):
        split_on_oom(other_error, [1, 2, 3], lambda a, b: a + b)
