"""The pipeline's batch feed and sorted waves (issue 15, second round).

* waves on an accelerator are cut from the requests sorted by characters; the
  answers come back in input order and equal the one-wave answers (real MiniLM,
  real data, one example per batch so that no padding can change a number);
* the first batch is made on the calling thread and does not wait for the next
  wave's encoding; later batches are prepared on the worker while the device runs;
* errors in any stage, including the encoding of the first or a later wave,
  surface as themselves without hanging; out-of-memory halving still works when
  the failing batch is the first one (made on the caller) or one from a later wave.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_pipeline import (  # noqa: E402
    _minilm, _raises_as_itself_without_hanging, _requests, _tatoeba, _ud, _workers_alive, _xquad)

from harness_ext.adapters.encoder import classify, embed, span, tag  # noqa: E402
from harness_ext.adapters.runtime.autobatch import BatchPlan  # noqa: E402
from harness_ext.adapters.runtime.pipeline import Wave, WavePlan, first_wave, plan_waves, run_waves, wave_bounds  # noqa: E402
from harness_ext.adapters.runtime.settings import AdapterSettings  # noqa: E402
from xtreme_tasks.table import UPOS_TAGS  # noqa: E402

XNLI = ("entailment", "neutral", "contradiction")


def _waves(on: bool, **kwargs) -> AdapterSettings:
    return AdapterSettings(extra={"pipeline": True, "waves": on}, **kwargs)


# ----------------------------------------------------------------- sorted waves: same answers, input order
def test_wave_plan_sorts_by_size_stably_and_restores_input_order():
    sizes = [3, 9, 3, 1, 9, 5]
    plan = plan_waves(sizes, 2, AdapterSettings(), "cuda")
    assert plan.order == [1, 4, 5, 0, 2, 3]  # largest first; equal sizes keep input order
    assert plan.bounds == wave_bounds(6, 2)
    assert plan.arrange("abcdef") == ["b", "e", "f", "a", "c", "d"]
    assert plan.restore(plan.arrange("abcdef")) == list("abcdef")
    assert np.array_equal(plan.restore(np.asarray(plan.arrange(range(6)))), np.arange(6))  # rows of an array
    one = plan_waves(sizes, 2, AdapterSettings(), "cpu")  # the CPU default: one wave, input order untouched
    assert one.order is None and one.bounds == [(0, 6)] and one.arrange("abcdef") == list("abcdef")
    with pytest.raises(RuntimeError, match="5 results for 6 requests"):
        plan.restore([1, 2, 3, 4, 5])
    assert first_wave(BatchPlan(512)) == 16 and first_wave(BatchPlan(4)) == 4


@pytest.mark.parametrize("kind", ["classify", "tag", "extract_span", "embed"])
def test_sorted_waves_answer_like_one_wave_in_input_order(minilm_path, shared_data, kind):
    """One example per batch, so the batches' make-up cannot change a number: any difference is a mix-up."""
    if kind == "classify":
        loaded = _minilm(minilm_path, "sequence-classification", XNLI)
        requests = _requests([(t, "", XNLI) for t in _tatoeba(shared_data, 60)])
        run = lambda on: classify.answer(loaded, requests, _waves(on, batch_size=1))  # noqa: E731
    elif kind == "tag":
        loaded = _minilm(minilm_path, "token-classification", UPOS_TAGS)
        sentences = _ud(shared_data, 40)
        requests = _requests([(" ".join(w), tuple(w), UPOS_TAGS) for w in sentences])
        run = lambda on: tag.answer(loaded, requests, _waves(on, batch_size=1, max_length=24, stride=8))  # noqa: E731
    elif kind == "extract_span":
        loaded = _minilm(minilm_path, "question-answering")
        requests = _requests(_xquad(shared_data, 24))
        run = lambda on: span.answer(loaded, requests, _waves(on, batch_size=1, max_length=96, stride=32))  # noqa: E731
    else:
        loaded = _minilm(minilm_path, "encoder")
        requests = _requests([(t,) for t in _tatoeba(shared_data, 60)])
        run = lambda on: np.stack(embed.answer(loaded, requests, _waves(on, batch_size=1, use_cache=False)))  # noqa: E731
    waved, single = run(True), run(False)
    if kind == "embed":
        assert np.array_equal(waved, single) and len(np.unique(waved.round(4), axis=0)) == len(requests)
    else:
        assert waved == single and len(waved) == len(requests)
    assert not _workers_alive()


def test_sorted_waves_keep_a_paragraphs_questions_together(shared_data):
    """QA waves are sorted by context length, stably: each context still falls in one wave, encoded once."""
    pairs = _xquad(shared_data, 200)
    plan = plan_waves([len(c) for _, c in pairs], 4, AdapterSettings(), "cuda", largest=2048)
    arranged = plan.arrange(pairs)
    wave_of: dict[str, set[int]] = {}
    for k, (lo, hi) in enumerate(plan.bounds):
        for _, context in arranged[lo:hi]:
            wave_of.setdefault(context, set()).add(k)
    split = [c for c, ks in wave_of.items() if len(ks) > 1]
    # a paragraph can only straddle a wave boundary, never be spread through the order
    assert len(split) <= len(plan.bounds) - 1
    positions: dict[str, list[int]] = {}
    for i, (_, context) in enumerate(arranged):
        positions.setdefault(context, []).append(i)
    assert all(p[-1] - p[0] == len(p) - 1 for p in positions.values())  # contiguous


# ----------------------------------------------------------------- the feed: who makes which batch, and when
def test_first_batch_is_made_on_the_caller_and_does_not_wait_for_the_next_wave():
    caller = threading.get_ident()
    events: list[tuple[str, int, float]] = []
    lengths = [10] * 64

    def encode(lo, hi):
        if lo > 0:
            time.sleep(0.3)  # a slow second wave
        events.append(("encoded", lo, time.perf_counter()))
        return Wave(list(range(lo, hi)), lengths[lo:hi])

    def prepare(items):
        events.append(("prepare-on-caller" if threading.get_ident() == caller else "prepare-on-worker", items[0],
                       time.perf_counter()))
        return items

    def forward(items):
        events.append(("forward", items[0], time.perf_counter()))
        time.sleep(0.02)
        return items

    out = run_waves(wave_bounds(64, 16), encode, BatchPlan(8), forward, prepare=prepare,
                    finish=lambda b, o: [i * 2 for i in o], progress=False)
    assert [r for _, results in out for r in results] == [i * 2 for i in range(64)]
    first_forward = next(t for name, _, t in events if name == "forward")
    wave_1_encoded = next(t for name, lo, t in events if name == "encoded" and lo == 16)
    assert first_forward < wave_1_encoded  # the device started without waiting for wave 1
    assert [name for name, *_ in events if name.startswith("prepare")][0] == "prepare-on-caller"
    assert sum(name == "prepare-on-caller" for name, *_ in events) == 1
    # batch 2 was prepared on the worker while batch 1 ran
    second_prepare = [t for name, _, t in events if name == "prepare-on-worker"][0]
    forwards = [t for name, _, t in events if name == "forward"]
    assert second_prepare < forwards[1] and second_prepare < forwards[0] + 0.02
    assert not _workers_alive()


@pytest.mark.parametrize("failing_wave", [0, 2])
def test_an_encoding_error_in_the_first_or_a_later_wave_surfaces_as_itself(failing_wave):
    raised = ValueError(f"bad input in wave {failing_wave}")
    bounds = wave_bounds(100, 8)

    def encode(lo, hi):
        if (lo, hi) == bounds[failing_wave]:
            raise raised
        return Wave(list(range(lo, hi)), [3] * (hi - lo))

    _raises_as_itself_without_hanging(
        lambda: run_waves(bounds, encode, BatchPlan(4), lambda b: b, prepare=list, finish=lambda b, o: o,
                          progress=False),
        raised,
    )


@pytest.mark.parametrize("overlap", [True, False])
def test_oom_on_the_first_batch_and_in_later_waves_halves_and_gives_every_answer(overlap):
    rng = random.Random(2)
    lengths = [rng.randint(5, 60) for _ in range(300)]
    capacity = 400
    ooms = []

    def encode(lo, hi):
        return Wave(list(range(lo, hi)), lengths[lo:hi])

    def forward(batch):
        if len(batch) * max(lengths[i] for i in batch) > capacity:
            ooms.append(len(batch))
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return batch

    plan = BatchPlan(batch_size=64, token_budget=8192)
    out = run_waves(wave_bounds(300, 16), encode, plan, forward, prepare=list,
                    finish=lambda b, o: [i + 1000 for i in o], overlap=overlap, progress=False)
    assert [r for _, results in out for r in results] == [i + 1000 for i in range(300)]
    assert ooms and plan.halvings == len(ooms) and plan.token_budget <= capacity
    assert not _workers_alive()
