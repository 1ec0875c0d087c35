"""The batch pipeline (prepare ahead, finish behind the forward pass): same answers, errors surface, OOM halves.

Answers are compared between ``pipeline=true`` (worker threads) and ``pipeline=false``
(the same stages in series) with the real all-MiniLM-L6-v2 encoder (random heads,
seed 0) on real data from ``../shared/data``: Tatoeba, UD-POS (English EWT, French
GSD), XQuAD.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.tiny_models import xlmr_tokenizer  # noqa: E402

from harness_ext.adapters.encoder import classify, embed, span, tag  # noqa: E402
from harness_ext.adapters.runtime.autobatch import BatchPlan  # noqa: E402
from harness_ext.adapters.runtime.pipeline import run_pipelined  # noqa: E402
from harness_ext.adapters.runtime.settings import AdapterSettings  # noqa: E402
from harness_ext.backends.base import LoadedCheckpoint  # noqa: E402
from xtreme_tasks.table import UPOS_TAGS  # noqa: E402

XNLI = ("entailment", "neutral", "contradiction")


def _workers_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("xtreme-")]


def _settings(pipelined: bool, **kwargs) -> AdapterSettings:
    # waves as on an accelerator (the CPU default is one wave), so the tests cover them
    return AdapterSettings(extra={"pipeline": pipelined, "waves": True}, **kwargs)


def _minilm(minilm_path: Path, head: str, labels=None) -> LoadedCheckpoint:
    from transformers import (AutoModel, AutoModelForQuestionAnswering, AutoModelForSequenceClassification,
                              AutoModelForTokenClassification, AutoTokenizer)

    classes = {"sequence-classification": AutoModelForSequenceClassification, "encoder": AutoModel,
               "token-classification": AutoModelForTokenClassification,
               "question-answering": AutoModelForQuestionAnswering}
    kwargs = {}
    if labels:
        kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                  "label2id": {name: i for i, name in enumerate(labels)}}
    torch.manual_seed(0)
    model = classes[head].from_pretrained(str(minilm_path), **kwargs).eval()
    return LoadedCheckpoint(model, AutoTokenizer.from_pretrained(str(minilm_path)), str(minilm_path), "hf", head)


def _tatoeba(shared_data: Path, n: int) -> list[str]:
    lines = (shared_data / "tatoeba" / "tatoeba.fra-eng.eng").read_text(encoding="utf-8").splitlines()
    lines += (shared_data / "tatoeba" / "tatoeba.fra-eng.fra").read_text(encoding="utf-8").splitlines()
    return lines[::7][:n]


def _ud(shared_data: Path, n: int) -> list[list[str]]:
    from xtreme_tasks.data.udpos import read_conllu_files

    out = []
    for path in sorted((shared_data / "udpos").glob("*-ud-test.conllu")):
        docs = read_conllu_files([path], path.name.split("_", 1)[0], "test")[0]
        out += [d["words"] for d in docs[: n // 2]]
    return out


def _xquad(shared_data: Path, n: int) -> list[tuple[str, str]]:
    raw = json.loads((shared_data / "xquad" / "xquad.en.json").read_text(encoding="utf-8"))
    pairs = [(qa["question"], p["context"]) for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]]
    return pairs[::11][:n]


def _requests(args_list) -> list:
    return [SimpleNamespace(args=args) for args in args_list]


# ----------------------------------------------------------------- same answers, real model, real data
@pytest.mark.parametrize("batch_size", [None, 8])
def test_classify_pipelined_equals_sequential(minilm_path, shared_data, batch_size):
    loaded = _minilm(minilm_path, "sequence-classification", XNLI)
    requests = _requests([(t, "", XNLI) for t in _tatoeba(shared_data, 120)])
    sequential = classify.answer(loaded, requests, _settings(False, batch_size=batch_size))
    pipelined = classify.answer(loaded, requests, _settings(True, batch_size=batch_size))
    assert pipelined == sequential and len(pipelined) == len(requests)
    assert len(set(pipelined)) > 1  # a head that says one thing would hide a mix-up
    assert not _workers_alive()


def test_tag_pipelined_equals_sequential(minilm_path, shared_data):
    loaded = _minilm(minilm_path, "token-classification", UPOS_TAGS)
    sentences = _ud(shared_data, 80)
    requests = _requests([(" ".join(w), tuple(w), UPOS_TAGS) for w in sentences])
    # windows of 24 sub-words: long sentences are split, so the window merge runs too
    for settings in ({"batch_size": 8, "max_length": 24, "stride": 8, "tag_split": "windows"},
                     {"batch_size": 8, "max_length": 24}, {"batch_size": None}):
        sequential = tag.answer(loaded, requests, _settings(False, **settings))
        pipelined = tag.answer(loaded, requests, _settings(True, **settings))
        assert pipelined == sequential
        assert [len(t) for t in pipelined] == [len(w) for w in sentences]


def test_span_pipelined_equals_sequential(minilm_path, shared_data):
    loaded = _minilm(minilm_path, "question-answering")
    pairs = _xquad(shared_data, 24)
    requests = _requests(pairs)
    # several windows per paragraph; exact substrings, to compare with span_text below
    settings = {"batch_size": 4, "max_length": 96, "stride": 32, "answer_text": "offsets"}
    sequential = span.answer(loaded, requests, _settings(False, **settings))
    pipelined = span.answer(loaded, requests, _settings(True, **settings))
    assert pipelined == sequential
    assert all(answer in context for answer, (_, context) in zip(pipelined, pairs))
    # the per-window decoding on the worker picks what decoding all logits at the end picks
    windows = span.encode_windows(loaded.tokenizer, [q for q, _ in pairs], [c for _, c in pairs], 96, 32)
    assert len(windows.features) > len(pairs)
    logits = span.window_logits(loaded, windows, _settings(True, **settings))
    spans = span.best_spans(windows, [s for s, _ in logits], [e for _, e in logits])
    assert [span.span_text(c, s) for (_, c), s in zip(pairs, spans)] == pipelined


def test_embed_pipelined_equals_sequential(minilm_path, shared_data):
    loaded = _minilm(minilm_path, "encoder")
    requests = _requests([(t,) for t in _tatoeba(shared_data, 150)])
    kwargs = {"batch_size": 16, "use_cache": False, "pooling": "mean"}
    sequential = embed.answer(loaded, requests, _settings(False, **kwargs))
    loaded.extra.clear()
    pipelined = embed.answer(loaded, requests, _settings(True, **kwargs))
    assert np.array_equal(np.stack(pipelined), np.stack(sequential))


# ----------------------------------------------------------------- tagging: windows cut from one tokenisation
@pytest.mark.parametrize("which", ["minilm", "xlmr"])
def test_tag_windows_cut_from_one_tokenisation_equal_tokenised_windows(minilm_path, shared_data, tmp_path, which):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path)) if which == "minilm" else xlmr_tokenizer(tmp_path)
    sentences = _ud(shared_data, 400) + [["a", "", "\u200b", "b"], ["x" * 80, "y"], ["z"]]
    words = tag._encode_words(tokenizer, sentences)
    for max_length in (12, 40, 512):
        capacity = max_length - tag._special_count(tokenizer)
        cut = tag._make_windows(tokenizer, sentences, words, max_length, min(8, capacity // 2))
        spans = [(w.sentence, w.start, w.end) for w in cut]
        reference = tag._tokenise_windows(tokenizer, sentences, spans, max_length)
        assert [w.features for w in cut] == [w.features for w in reference]
        assert [w.positions for w in cut] == [w.positions for w in reference]
    assert tag._template(tokenizer) is not None  # the fast path was taken, not the fallback


# ----------------------------------------------------------------- errors and shutdown
@pytest.mark.parametrize("stage", ["prepare", "forward", "finish"])
def test_an_exception_in_any_stage_surfaces_as_itself_without_hanging(stage):
    raised = ValueError(f"boom in {stage}")

    def check(name, rows):
        if name == stage and 40 in rows:  # the fifth batch of ten
            raise raised

    def prepare(batch):
        check("prepare", batch)
        return {"rows": batch}

    def forward(prepared):
        check("forward", prepared["rows"])
        time.sleep(0.001)
        return prepared["rows"]

    def finish(batch, rows):
        check("finish", rows)
        return [r * 2 for r in rows]

    _raises_as_itself_without_hanging(
        lambda: run_pipelined(list(range(100)), [1] * 100, BatchPlan(10), forward, prepare=prepare, finish=finish,
                              progress=False),
        raised,
    )


def _raises_as_itself_without_hanging(run, raised: Exception) -> None:
    """``run()`` on a thread of its own: it must end within 30 s, with ``raised`` itself, and no worker left."""
    outcome = {}

    def call():
        try:
            run()
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the pipeline hung"
    assert outcome.get("error") is raised
    assert not _workers_alive()


def test_early_exit_from_the_caller_stops_the_workers():
    prepared = []

    def prepare(batch):
        prepared.append(batch[0])
        return batch

    def collect(indices, outputs):
        if len(prepared) >= 3:
            raise KeyboardInterrupt  # not an Exception: the user pressing Ctrl-C mid-run

    with pytest.raises(KeyboardInterrupt):
        run_pipelined(list(range(1000)), [1] * 1000, BatchPlan(10), lambda b: b, prepare=prepare,
                      finish=lambda b, o: o, collect=collect, progress=False)
    assert not _workers_alive()
    assert len(prepared) < 20  # bounded look-ahead: it did not prepare the whole input


def test_order_and_batches_are_those_of_the_sequential_loop():
    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(300)]
    seen: dict[bool, list[list[int]]] = {True: [], False: []}

    def run(overlap):
        def prepare(batch):
            time.sleep(rng.random() * 0.001)
            return batch

        def forward(batch):
            seen[overlap].append(list(batch))
            return batch

        def finish(batch, out):
            time.sleep(rng.random() * 0.001)
            return [f"item-{i}" for i in out]

        return run_pipelined(list(range(300)), lengths, BatchPlan(16, 200), forward, prepare=prepare,
                             finish=finish, overlap=overlap, progress=False)

    assert run(True) == run(False) == [f"item-{i}" for i in range(300)]
    assert seen[True] == seen[False]


# ----------------------------------------------------------------- out-of-memory halving through the pipeline
class _Device:
    """Raises torch's OOM when a batch has more than ``capacity`` padded tokens."""

    def __init__(self, lengths, capacity):
        self.lengths, self.capacity, self.ooms = lengths, capacity, 0

    def __call__(self, batch):
        if len(batch) * max(self.lengths[i] for i in batch) > self.capacity:
            self.ooms += 1
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return batch


def test_oom_halves_the_plan_through_the_pipeline_and_is_remembered():
    rng = random.Random(1)
    lengths = [rng.randint(5, 50) for _ in range(200)]
    device = _Device(lengths, capacity=300)
    plan = BatchPlan(batch_size=64, token_budget=4096)
    run = lambda: run_pipelined(list(range(200)), lengths, plan, device, prepare=list,  # noqa: E731
                                finish=lambda b, out: [i * 3 for i in out], progress=False)
    assert run() == [i * 3 for i in range(200)]
    assert device.ooms >= 1 and plan.halvings == device.ooms and plan.token_budget <= 300
    first = device.ooms
    assert run() == [i * 3 for i in range(200)]
    assert device.ooms == first  # the halved plan is kept
    assert not _workers_alive()


def test_oom_halving_in_a_real_adapter_gives_the_same_answers(minilm_path, shared_data):
    loaded = _minilm(minilm_path, "sequence-classification", XNLI)
    requests = _requests([(t, "", XNLI) for t in _tatoeba(shared_data, 120)])
    expected = classify.answer(loaded, requests, _settings(False, batch_size=32))
    real = loaded.model
    ooms = []

    class OomAbove(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.config = real, real.config

        def forward(self, input_ids, **kwargs):
            if input_ids.numel() > 120:
                ooms.append(input_ids.numel())
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
            return self.inner(input_ids=input_ids, **kwargs)

    loaded.model = OomAbove()
    loaded.extra.clear()
    assert classify.answer(loaded, requests, _settings(True, batch_size=32)) == expected
    assert ooms
    seen = len(ooms)
    assert classify.answer(loaded, requests, _settings(True, batch_size=32)) == expected
    assert len(ooms) == seen


def test_pipeline_setting_parses_model_args_strings():
    from harness_ext.adapters.runtime.pipeline import overlap_enabled

    assert overlap_enabled(AdapterSettings())
    assert not overlap_enabled(AdapterSettings(extra={"pipeline": "false"}))
    assert overlap_enabled(AdapterSettings(extra={"pipeline": "True"}))



# ----------------------------------------------------------------- QA: each context encoded once, same windows
@pytest.mark.parametrize("which", ["minilm", "xlmr"])
def test_qa_windows_cut_from_one_context_encoding_equal_per_question_windows(minilm_path, shared_data, tmp_path,
                                                                             which, monkeypatch):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path)) if which == "minilm" else xlmr_tokenizer(tmp_path)
    pairs = []
    for lang in ("en", "zh", "ar", "th"):
        raw = json.loads((shared_data / "xquad" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        paragraphs = [p for a in raw["data"] for p in a["paragraphs"]][:6]
        pairs += [(qa["question"], p["context"]) for p in paragraphs for qa in p["qas"]]
    pairs += [("a question with no context?", "")]
    # questions of up to 64 tokens: a longer one keeps its first 64 ids here, while the fallback cuts its text
    pairs = [(q, c) for q, c in pairs if len(tokenizer(q, add_special_tokens=False)["input_ids"]) <= 64]
    questions, contexts = [q for q, _ in pairs], [c for _, c in pairs]
    original = span._cut_windows
    for max_length, stride in ((384, 128), (96, 32), (128, 100)):
        cut = span.encode_windows(tokenizer, questions, contexts, max_length, stride)
        with monkeypatch.context() as patch:
            patch.setattr(span, "pair_template", lambda tok: None)  # the tokenizer's own overflow windows
            reference = span.encode_windows(tokenizer, questions, contexts, max_length, stride)
        assert cut.features == reference.features
        assert np.array_equal(cut.example, reference.example)
        assert np.array_equal(cut.context_range, reference.context_range)
        assert all(np.array_equal(a, b) for a, b in zip(cut.offsets, reference.offsets))
        assert all(np.array_equal(a, b) for a, b in zip(cut.max_context, reference.max_context))
        assert len(cut.features) == len(reference.features) > len(pairs) // 2
    assert span.pair_template(tokenizer) is not None  # and the cut path was taken, not the fallback
    # a question over 64 tokens keeps its first 64 ids, as run_squad's encode(question, max_length=64)
    long_question = " ".join([pairs[0][0]] * 8)
    (window, *_) = span.encode_windows(tokenizer, [long_question], [pairs[0][1]], 384, 128).features
    question_ids = tokenizer(long_question, add_special_tokens=False)["input_ids"]
    assert len(question_ids) > 64 and window["input_ids"][1:65] == question_ids[:64]
    cut_calls = []
    monkeypatch.setattr(span, "_cut_windows", lambda *a: cut_calls.append(1) or original(*a))
    span.encode_windows(tokenizer, questions, contexts, 128, 100)
    assert cut_calls


def test_text2text_pipelined_equals_sequential(tmp_path, shared_data):
    """mT5-style checkpoints (a tiny random mT5): rank scores and greedy generations are the same."""
    from test_t2t_adapter import tiny_t2t_mt5

    from harness_ext.adapters.text2text import adapter as text2text
    from harness_ext.backends import load_checkpoint

    loaded = load_checkpoint(str(tiny_t2t_mt5(tmp_path / "mt5")), "seq2seq")
    texts = [f"xnli premise: {t} hypothesis: {t[::-1]}" for t in _tatoeba(shared_data, 40)]
    targets = [loaded.tokenizer(t)["input_ids"] for t in ("entailment", "neutral", "contradiction")]
    out = {}
    for pipelined in (False, True):
        runner = text2text.Seq2SeqRunner(loaded, _settings(pipelined, batch_size=4))
        inputs, _ = runner.encode(texts, [256] * len(texts))
        out[pipelined] = (runner.score(inputs, targets), runner.generate(inputs[:12], [6] * 12))
    assert out[True] == out[False]
    assert len(out[True][0]) == len(texts) and len(out[True][1]) == 12


def test_requests_come_in_waves_on_an_accelerator_and_in_one_on_the_cpu():
    from harness_ext.adapters.runtime.pipeline import request_waves, wave_bounds

    assert wave_bounds(1000, 64) == [(0, 64), (64, 192), (192, 448), (448, 960), (960, 1000)]
    assert request_waves(1000, 64, AdapterSettings(), "cpu") == [(0, 1000)]
    assert request_waves(1000, 64, AdapterSettings(), "cuda:0") == wave_bounds(1000, 64)
    assert request_waves(1000, 64, AdapterSettings(extra={"waves": "true"}), "cpu") == wave_bounds(1000, 64)
    assert request_waves(1000, 64, AdapterSettings(extra={"waves": "false"}), "cuda") == [(0, 1000)]
    assert request_waves(0, 64, AdapterSettings(), "cpu") == []
