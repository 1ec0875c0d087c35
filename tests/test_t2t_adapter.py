"""The text-to-text adapter with a tiny random mT5: every request kind end to end,
scores and generations checked against transformers used one example at a time.

Also home of the builders the other ``test_t2t_*`` files use: a sentencepiece
tokenizer that round-trips the target formats (``:``, ``$$``, ``/``), a tiny MT5
whose LM head is independent of its embeddings (a tied random T5 only copies its
decoder input, so greedy generation would be all padding), and a scripted stub
model that "generates" given strings through the real tokenizer.
"""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path

import pytest
import torch

from harness_ext.adapters.text2text import adapter as text2text
from harness_ext.adapters.runtime.settings import AdapterSettings
from harness_ext.adapters.formats.parse import status_counts
from harness_ext.adapters.text2text.templates import load_templates
from harness_ext.backends import LoadedCheckpoint, load_checkpoint
from xtreme_tasks.table import TASKS, UPOS_TAGS

CORPUS_WORDS = (
    "John Smith Mary Paris New York Berlin Google lives in works at the a cat sat on mat is city went to "
    "U.S. yesterday again Where did he go When who what . , ? ! ( ) 1/2 and/or 12 different_meaning paraphrase "
    "entailment neutral contradiction xnli: premise: hypothesis: paws sentence1: sentence2: question: context: "
    "tag: pos: PER: ORG: LOC: $$ 0 1 2 garbage output banana gibberish Hà Nội là bonjour le monde привет мир 你好 "
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ"
).split()


# ----------------------------------------------------------------- builders (used by test_t2t_*.py)
def spm_bytes() -> bytes:
    """A T5-style unigram sentencepiece model (pad 0, eos 1, unk 2) covering CORPUS_WORDS' characters."""
    import sentencepiece as spm

    rng = random.Random(0)
    corpus = [" ".join(rng.choice(CORPUS_WORDS) for _ in range(10)) for _ in range(300)]
    corpus += [" ".join(f"{rng.choice(CORPUS_WORDS)}/{rng.choice(UPOS_TAGS)}" for _ in range(6)) for _ in range(100)]
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=out, vocab_size=400, model_type="unigram", hard_vocab_limit=False,
        shuffle_input_sentence=False, num_threads=1, minloglevel=2, character_coverage=1.0,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, normalization_rule_name="identity",
    )
    return out.getvalue()


def t2t_tokenizer(folder: Path):
    from transformers import T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(spm_bytes())
    return T5Tokenizer.from_pretrained(str(folder), extra_ids=0)


def tiny_t2t_mt5(folder: Path, seed: int = 0) -> Path:
    """A saved tiny MT5ForConditionalGeneration (d_model 32, 2+2 layers) with its tokenizer."""
    from transformers import MT5Config, MT5ForConditionalGeneration

    tok = t2t_tokenizer(folder)
    config = MT5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                       num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=16,
                       dropout_rate=0.0, feed_forward_proj="gated-gelu", decoder_start_token_id=0,
                       pad_token_id=0, eos_token_id=1)
    torch.manual_seed(seed)
    model = MT5ForConditionalGeneration(config).eval()
    # transformers 5 ties mT5's LM head to the embeddings whatever the config says; a tied
    # random model predicts its own input token, so untie it with independent weights
    model.lm_head.weight = torch.nn.Parameter(torch.randn(len(tok), 32) * 2.0)
    model.config.tie_word_embeddings = False
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


class ScriptedSeq2Seq(torch.nn.Module):
    """A stub seq2seq model: ``generate`` returns the token ids of a scripted string per input.

    Inputs are decoded with the real tokenizer, so the script is keyed by the exact model
    input the templates render; outputs are encoded with it, so the adapter's decoding,
    budget and end-of-sequence handling run as they do with a real model.
    """

    def __init__(self, tokenizer, script: dict[str, str]) -> None:
        super().__init__()
        from transformers import MT5Config

        self.tokenizer = tokenizer
        self.script = dict(script)
        self.config = MT5Config(vocab_size=len(tokenizer), d_model=4, num_layers=1, num_heads=1,
                                decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
        self.embed = torch.nn.Embedding(len(tokenizer), 4)
        self.seen: list[str] = []
        self.batch_sizes: list[int] = []

    def get_input_embeddings(self):
        return self.embed

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        self.batch_sizes.append(len(input_ids))
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            text = self.tokenizer.decode([i for i, m in zip(ids, mask) if m], skip_special_tokens=True)
            self.seen.append(text)
            if text not in self.script:
                raise KeyError(f"no scripted output for input {text!r}")
            out = list(self.tokenizer(self.script[text])["input_ids"])  # ends with </s>
            rows.append([0] + out[:max_new_tokens])
        width = max(len(r) for r in rows)
        return torch.tensor([r + [0] * (width - len(r)) for r in rows])


def scripted_checkpoint(tokenizer, script: dict[str, str]) -> LoadedCheckpoint:
    return LoadedCheckpoint(model=ScriptedSeq2Seq(tokenizer, script), tokenizer=tokenizer, source="scripted",
                            backend="stub", head="seq2seq")


def request(kind: str, args: tuple, task_name: str, i: int = 0):
    from lm_eval.api.instance import Instance

    return Instance(kind, {}, args, 0, (task_name, i, 1))


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def mt5_dir(tmp_path_factory) -> Path:
    return tiny_t2t_mt5(tmp_path_factory.mktemp("t2t") / "mt5")


@pytest.fixture(scope="module")
def loaded(mt5_dir):
    return load_checkpoint(str(mt5_dir), "seq2seq")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return t2t_tokenizer(tmp_path_factory.mktemp("tok"))


PAIRS = [("John lives in Paris .", "John is in a city ."), ("the cat sat on the mat", "a cat sat"),
         ("Mary works at Google", "Mary went to Berlin"), ("he went to the U.S. yesterday", "he did go")]


# ----------------------------------------------------------------- classification by scoring
def _flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


def _independent_logliks(model, tokenizer, source: str, targets: list[str]) -> list[float]:
    """Sum log-likelihood of each target through transformers' own loss, one pair at a time."""
    out = []
    enc = tokenizer(source, return_tensors="pt")
    for target in targets:
        labels = tokenizer(target, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            loss = model(**enc, labels=labels).loss
        out.append(-float(loss) * labels.shape[1])
    return out


@pytest.mark.parametrize("task", ["xnli", "pawsx"])
def test_rank_classification_matches_transformers_loss(loaded, task):
    template = load_templates(None)[task]
    labels = TASKS[task].labels
    runner = text2text.Seq2SeqRunner(loaded, AdapterSettings(batch_size=3))
    texts = [template.render(text_a=a, text_b=b, lang="en") for a, b in PAIRS]
    inputs, _ = runner.encode(texts, [1024] * len(texts))
    target_ids = [loaded.tokenizer(template.targets[label])["input_ids"] for label in labels]
    scores = runner.score(inputs, target_ids)
    expected = [_independent_logliks(loaded.model, loaded.tokenizer, t, [template.targets[l] for l in labels]) for t in texts]
    assert _flat(scores) == pytest.approx(_flat(expected), abs=1e-4)

    requests = [request("classify", (a, b, labels), f"xtreme-{task}-en", i) for i, (a, b) in enumerate(PAIRS)]
    answers = text2text.answer("classify", loaded, requests, AdapterSettings(batch_size=3))
    assert answers == [labels[max(range(len(labels)), key=row.__getitem__)] for row in expected]
    assert all(a.parse.status == "ok" for a in answers)


def test_scores_do_not_depend_on_the_batch(loaded):
    template = load_templates(None)["xnli"]
    texts = [template.render(text_a=a, text_b=b, lang="en") for a, b in PAIRS]
    targets = [loaded.tokenizer(t)["input_ids"] for t in template.targets.values()]
    one = text2text.Seq2SeqRunner(loaded, AdapterSettings(batch_size=1))
    many = text2text.Seq2SeqRunner(loaded, AdapterSettings(batch_size=4))
    inputs, _ = one.encode(texts, [1024] * len(texts))
    assert _flat(one.score(inputs, targets)) == pytest.approx(_flat(many.score(inputs, targets)), abs=1e-4)


def test_oom_halving_is_remembered_by_the_next_runner(mt5_dir):
    """A runner is built per request list; the halved plan lives on the loaded model."""
    fresh = load_checkpoint(str(mt5_dir), "seq2seq")
    template = load_templates(None)["xnli"]
    texts = [template.render(text_a=a, text_b=b, lang="en") for a, b in PAIRS] * 4
    targets = [fresh.tokenizer(t)["input_ids"] for t in template.targets.values()]
    reference = text2text.Seq2SeqRunner(fresh, AdapterSettings(batch_size=16))
    inputs, _ = reference.encode(texts, [1024] * len(texts))
    expected = reference.score(inputs, targets)
    fresh.extra.clear()
    real_model, ooms = fresh.model, []

    capacity = 4 * max(len(ids) for ids in inputs)  # padded encoder tokens that "fit on the device"

    class OomAbove:
        def __getattr__(self, name):
            return getattr(real_model, name)

        def get_encoder(self):
            def encoder(input_ids, **kwargs):
                if input_ids.numel() > capacity:
                    ooms.append(input_ids.numel())
                    raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
                return real_model.get_encoder()(input_ids=input_ids, **kwargs)
            return encoder

        def __call__(self, *args, **kwargs):
            return real_model(*args, **kwargs)

    fresh.model = OomAbove()
    first = text2text.Seq2SeqRunner(fresh, AdapterSettings(batch_size=16))
    assert _flat(first.score(inputs, targets)) == pytest.approx(_flat(expected), abs=1e-4)
    assert len(ooms) >= 1
    seen = len(ooms)
    text2text.Seq2SeqRunner(fresh, AdapterSettings(batch_size=16)).score(inputs, targets)
    assert len(ooms) == seen  # the second runner starts at the size that fit


# ----------------------------------------------------------------- generation
def test_batched_generation_equals_one_at_a_time_transformers(loaded):
    texts = [f"question: {a} context: {b}" for a, b in PAIRS] + ["tag: John"]
    runner = text2text.Seq2SeqRunner(loaded, AdapterSettings(batch_size=3))
    inputs, _ = runner.encode(texts, [1024] * len(texts))
    budgets = [6, 6, 3, 6, 6]
    got = runner.generate(inputs, budgets)
    for text, budget, generation in zip(texts, budgets, got):
        enc = loaded.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            ids = loaded.model.generate(**enc, max_new_tokens=budget, do_sample=False)[0, 1:].tolist()
        finished = 1 in ids
        ids = ids[: ids.index(1)] if finished else ids
        assert generation.text == loaded.tokenizer.decode(ids, skip_special_tokens=True)
        assert generation.truncated is (not finished)
    assert any(g.text for g in got), "the tiny model should generate something"


# ----------------------------------------------------------------- every kind, every task
TAG_WORDS = ("John", "lives", "in", "Paris")


CASES = [
    ("xnli", "de", "classify", (PAIRS[0][0], PAIRS[0][1], TASKS["xnli"].labels)),
    ("pawsx", "fr", "classify", (PAIRS[1][0], PAIRS[1][1], TASKS["pawsx"].labels)),
    ("panx", "en", "tag", (" ".join(TAG_WORDS), TAG_WORDS, TASKS["panx"].labels)),
    ("udpos", "en", "tag", (" ".join(TAG_WORDS), TAG_WORDS, TASKS["udpos"].labels)),
    ("xquad", "es", "extract_span", ("Where did he go ?", "he went to the U.S. yesterday")),
    ("mlqa", "de", "extract_span", ("who", "John lives in Paris .")),
    ("tydiqa", "en", "extract_span", ("what", "the cat sat on the mat")),
]
# t2t_mode only changes classification (the other kinds always generate)
MODES = [(*case, "score") for case in CASES] + [(*case, "generate") for case in CASES if case[2] == "classify"]


@pytest.mark.parametrize("task,lang,kind,args,mode", MODES)
def test_every_text_kind_end_to_end(loaded, task, lang, kind, args, mode):
    requests = [request(kind, args, f"xtreme-{task}-{lang}", i) for i in range(3)]
    settings = AdapterSettings(batch_size=2, extra={"t2t_mode": mode, "max_new_tokens": 12})
    answers = text2text.answer(kind, loaded, requests, settings)
    assert len(answers) == 3 and len({repr(a) for a in answers}) == 1, "same input, same answer"
    answer = answers[0]
    assert answer.parse.status in ("ok", "partial", "unparsable")
    if kind == "classify":
        assert answer in TASKS[task].labels or answer.parse.status == "unparsable"
    elif kind == "tag":
        assert len(answer) == len(TAG_WORDS) and all(t in TASKS[task].labels or t == "O" for t in answer)
    else:
        assert isinstance(answer, str)


@pytest.mark.parametrize("task", ["tatoeba", "bucc2018"])
def test_embed_is_the_mean_pooled_encoder(loaded, task, tmp_path):
    texts = ["John lives in Paris .", "the cat sat", "John lives in Paris ."]
    requests = [request("embed", (t,), f"xtreme-{task}-de", i) for i, t in enumerate(texts)]
    vectors = text2text.answer("embed", loaded, requests, AdapterSettings(cache_dir=str(tmp_path), use_cache=False))
    for text, vector in zip(texts, vectors):
        enc = loaded.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = loaded.model.get_encoder()(**enc).last_hidden_state[0]
        assert vector.shape == (32,) and vector == pytest.approx(hidden.mean(0).numpy(), abs=1e-5)


# ----------------------------------------------------------------- budgets, cuts, counts (scripted model)
def test_budget_cut_is_flagged_and_counted(tokenizer, caplog):
    question, context = "Where did he go ?", "he went to the U.S. yesterday"
    key = text2text.qa_input(load_templates(None)["xquad"], question, context, "en")
    assert key == "question: Where did he go ? context: he went to the U . S . yesterday"  # mT5's padding
    loaded_stub = scripted_checkpoint(tokenizer, {key: "to the U . S . again"})
    req = request("extract_span", (question, context), "xtreme-xquad-en")
    (full,) = text2text.answer("extract_span", loaded_stub, [req], AdapterSettings())
    assert full == "to the U . S . again" and not full.parse.truncated  # not in the context: kept as generated
    with caplog.at_level(logging.WARNING, logger="harness_ext.adapters.text2text.adapter"):
        (cut,) = text2text.answer("extract_span", loaded_stub, [req], AdapterSettings(extra={"max_new_tokens": 3}))
    assert cut.parse.truncated and cut.parse.status == "partial" and len(tokenizer(str(cut))["input_ids"]) <= 4
    assert "1 cut at max_new_tokens" in caplog.text


def test_long_inputs_are_cut_keeping_end_of_sequence(tokenizer, caplog):
    words = tuple("John lives in Paris and Mary works at Google".split())
    stub = scripted_checkpoint(tokenizer, {})
    stub.model.script = _AnyInput("PER: John")
    req = request("tag", (" ".join(words), words, TASKS["panx"].labels), "xtreme-panx-en")
    settings = AdapterSettings(extra={"template_panx": {"input": "tag: {text}", "max_input_tokens": 5}})
    with caplog.at_level(logging.WARNING, logger="harness_ext.adapters.text2text.adapter"):
        (tags,) = text2text.answer("tag", stub, [req], settings)
    assert list(tags) == ["B-PER"] + ["O"] * (len(words) - 1)
    assert len(tokenizer(stub.model.seen[0])["input_ids"]) <= 5
    assert "1 of 1 inputs cut to max_input_tokens=5" in caplog.text


class _AnyInput(dict):
    """A script answering every input with the same text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key) -> str:
        return self.text


def test_requests_are_batched_longest_first(tokenizer):
    texts = ["a", "the cat sat on the mat again and again", "John lives", "Mary went to Berlin yesterday"]
    stub = scripted_checkpoint(tokenizer, {})
    stub.model.script = _AnyInput("0")
    requests = [request("classify", (t, "b", TASKS["xnli"].labels), "xtreme-xnli-en", i) for i, t in enumerate(texts)]
    answers = text2text.answer("classify", stub, requests, AdapterSettings(batch_size=2, extra={"t2t_mode": "generate"}))
    assert answers == ["entailment"] * 4 and stub.model.batch_sizes == [2, 2]
    assert stub.model.seen[0].startswith("xnli: premise: the cat sat")
    assert status_counts(answers)["ok"] == 4


def test_unknown_mode_and_budget_are_refused(loaded):
    req = [request("classify", ("a", "b", TASKS["xnli"].labels), "xtreme-xnli-en")]
    with pytest.raises(ValueError, match="t2t_mode='beam'"):
        text2text.answer("classify", loaded, req, AdapterSettings(extra={"t2t_mode": "beam"}))
    with pytest.raises(ValueError, match="max_new_tokens='-3'"):
        text2text.answer("classify", loaded, req, AdapterSettings(extra={"max_new_tokens": "-3"}))


def test_task_of_requests_without_an_lm_eval_task_name():
    from lm_eval.api.instance import Instance

    def bare(kind, args):
        return Instance(kind, {}, args, 0)  # metadata (None, None, None), as built by hand in the API

    assert text2text.task_of(bare("classify", ("a", "b", TASKS["pawsx"].labels))) == ("pawsx", "")
    assert text2text.task_of(bare("tag", ("a", ("a",), TASKS["udpos"].labels))) == ("udpos", "")
    assert text2text.task_of(request("extract_span", ("q", "c"), "xtreme-mlqa-hi")) == ("mlqa", "hi")
    with pytest.raises(ValueError, match="cannot tell which XTREME task"):
        text2text.task_of(bare("classify", ("a", "b", ("yes", "no"))))
    with pytest.raises(ValueError, match="not 'generate_until'"):
        text2text.answer("generate_until", None, [], AdapterSettings())
