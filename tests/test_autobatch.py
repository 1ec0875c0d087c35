"""Automatic batch size: halving on a simulated out-of-memory error, CPU/GPU starting plans."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from harness_ext.adapters.runtime import autobatch
from harness_ext.adapters.runtime.autobatch import BatchPlan, automatic_plan, find_batch_size, is_oom, plan_batches, plan_for
from harness_ext.adapters.runtime.batching import run_batched
from harness_ext.adapters.runtime.settings import AdapterSettings


class FakeDevice:
    """Runs a 'batch' when its padded tokens fit, else raises torch's OOM error (as CUDA would)."""

    def __init__(self, capacity_tokens: int, lengths: list[int]) -> None:
        self.capacity = capacity_tokens
        self.lengths = lengths
        self.ooms = 0
        self.ran: list[int] = []  # padded tokens of each batch that ran

    def __call__(self, batch: list[int]) -> list[int]:
        tokens = len(batch) * max(self.lengths[i] for i in batch)
        if tokens > self.capacity:
            self.ooms += 1
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {tokens} tokens")
        self.ran.append(tokens)
        return [i * 10 for i in batch]


def test_is_oom_recognises_device_errors_only():
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory."))
    assert is_oom(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert is_oom(RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory"))
    assert is_oom(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_oom(RuntimeError("size mismatch"))
    assert not is_oom(ValueError("out of memory"))  # not a device error type


def test_run_batched_halves_on_oom_and_keeps_results():
    lengths = [100] * 40 + [10] * 200
    device = FakeDevice(capacity_tokens=1000, lengths=lengths)
    plan = BatchPlan(batch_size=64, token_budget=8000, automatic=True)
    out = run_batched(list(range(len(lengths))), lengths, plan, device, progress=False)
    assert out == [i * 10 for i in range(len(lengths))]
    assert device.ooms >= 1 and plan.halvings == device.ooms
    assert plan.token_budget <= 1000  # the plan remembers the size that fits
    assert max(device.ran) <= 1000
    # halving, not collapsing: the working budget is within a factor of two of the capacity
    assert plan.token_budget > 1000 // 2


def test_halved_plan_is_reused_without_new_ooms():
    lengths = [50] * 30
    device = FakeDevice(capacity_tokens=400, lengths=lengths)
    plan = BatchPlan(batch_size=30, token_budget=10_000, automatic=True)
    run_batched(list(range(30)), lengths, plan, device, progress=False)
    first = device.ooms
    run_batched(list(range(30)), lengths, plan, device, progress=False)
    assert device.ooms == first


def test_single_item_that_does_not_fit_raises():
    device = FakeDevice(capacity_tokens=10, lengths=[50, 50])
    with pytest.raises(torch.OutOfMemoryError):
        run_batched([0, 1], [50, 50], 2, device, progress=False)


def test_find_batch_size_halves_until_it_fits():
    tried = []

    def probe(size):
        tried.append(size)
        if size > 48:
            raise torch.OutOfMemoryError("CUDA out of memory.")

    assert find_batch_size(probe, 512) == 32
    assert tried == [512, 256, 128, 64, 32]


def test_find_batch_size_reraises_other_errors_and_gives_up_at_minimum():
    with pytest.raises(KeyError):
        find_batch_size(lambda size: {}["x"], 64)

    def never(size):
        raise torch.OutOfMemoryError("CUDA out of memory.")

    with pytest.raises(torch.OutOfMemoryError):
        find_batch_size(never, 8, minimum=2)


def test_plans_cpu_gpu_and_explicit():
    model = SimpleNamespace(config=SimpleNamespace(hidden_size=384))
    cpu = automatic_plan("cpu", model)
    assert cpu.automatic and cpu.batch_size == autobatch.CPU_MAX_BATCH and cpu.token_budget == 1024
    big = automatic_plan("cpu", SimpleNamespace(config=SimpleNamespace(hidden_size=1024)))
    assert big.token_budget == 384
    gpu = automatic_plan("cuda:0", model, max_batch_size=256)
    assert gpu.batch_size == 256 and gpu.token_budget == autobatch.GPU_START_TOKENS
    explicit = plan_batches(AdapterSettings(batch_size=16), model)
    assert explicit == BatchPlan(batch_size=16)
    auto = plan_batches(AdapterSettings(batch_size=None), model)
    assert auto.automatic and auto.token_budget == 1024


def test_plan_for_is_kept_per_loaded_model():
    loaded = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(hidden_size=384)), extra={})
    settings = AdapterSettings(batch_size=None)
    first = plan_for(loaded, settings)
    first.shrink(10, 500)
    assert plan_for(loaded, settings) is first and plan_for(loaded, settings).token_budget == 250
    assert plan_for(loaded, AdapterSettings(batch_size=8)) is not first


def test_classify_adapter_runs_with_auto_batch_size(minilm_path):
    """batch_size=None through the classify adapter gives the same labels as a fixed batch size."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from harness_ext.adapters.encoder import classify
    from harness_ext.backends.base import LoadedCheckpoint

    labels = {0: "entailment", 1: "neutral", 2: "contradiction"}
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(minilm_path), num_labels=3, id2label=labels).eval()
    loaded = LoadedCheckpoint(model, AutoTokenizer.from_pretrained(str(minilm_path)), str(minilm_path), "hf",
                              "sequence-classification")
    texts = ["a cat", "Tom wants to sing with us but Mary does not want to", "ok", "this is fine, really"] * 5
    requests = [SimpleNamespace(args=(t, "", tuple(labels.values()))) for t in texts]
    auto = classify.answer(loaded, requests, AdapterSettings(batch_size=None))
    fixed = classify.answer(loaded, requests, AdapterSettings(batch_size=1))
    assert auto == fixed and len(auto) == len(texts)


def test_split_on_oom_shrinks_the_plan_so_later_batches_fit_first_time():
    """embed/text2text cut batches lazily from a plan that split_on_oom shrinks: one OOM, not one per batch."""
    from harness_ext.adapters.runtime.batching import iter_length_sorted_batches, split_on_oom

    lengths = [40] * 64
    device = FakeDevice(capacity_tokens=300, lengths=lengths)
    plan = BatchPlan(batch_size=32)
    out: list[int] = []
    for batch in iter_length_sorted_batches(lengths, plan):
        out += split_on_oom(device, batch, lambda a, b: a + b, plan=plan, longest=lengths[batch[0]])
    assert sorted(out) == [i * 10 for i in range(64)]
    first_run_ooms = device.ooms
    assert first_run_ooms == 3  # 32, 16 and 8 examples of 40 tokens fail once each; then 4 per batch
    assert plan.token_budget is not None and plan.token_budget <= 300
    # the same model's next call (next language) starts from the remembered plan: no OOM at all
    for batch in iter_length_sorted_batches(lengths, plan):
        split_on_oom(device, batch, lambda a, b: a + b, plan=plan, longest=lengths[batch[0]])
    assert device.ooms == first_run_ooms
    assert all(tokens <= 300 for tokens in device.ran)


def test_split_on_oom_without_a_plan_still_halves():
    from harness_ext.adapters.runtime.batching import split_on_oom

    device = FakeDevice(capacity_tokens=100, lengths=[40] * 8)
    assert split_on_oom(device, list(range(8)), lambda a, b: a + b) == [i * 10 for i in range(8)]
    assert device.ooms == 3  # 8 -> 4 -> 2 fits: one OOM at 8, two at 4


def test_remember_plan_makes_plan_for_return_it():
    """What bench_overlap uses to run the accelerator's plan on the CPU; per checkpoint and settings."""
    loaded = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(hidden_size=384)), extra={})
    settings = AdapterSettings(batch_size=None)
    gpu = automatic_plan("cuda")
    autobatch.remember_plan(loaded, settings, gpu)
    assert plan_for(loaded, settings) is gpu
    assert plan_for(loaded, AdapterSettings(batch_size=8)) is not gpu  # other settings, their own plan
    with pytest.raises(TypeError, match="no 'extra' dict"):
        autobatch.remember_plan(SimpleNamespace(model=None, extra=None), settings, gpu)
