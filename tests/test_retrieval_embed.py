"""The embed adapter: layer convention, pooling, padding invariance, T5 encoders, the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from harness_ext.adapters.encoder.embed import Embedder, answer, hidden_state_index
from harness_ext.adapters.runtime.settings import AdapterSettings
from harness_ext.backends import load_checkpoint
from harness_ext.retrieval.cache import EmbeddingCache, checkpoint_identity
from tests.helpers.tiny_models import tiny_bert, tiny_mt5, tiny_xlmr

TEXTS = ["hello world this is a test", "bonjour le monde", "hallo welt das ist ein hund haus", "hello"]


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("embed"), head="encoder", num_hidden_layers=3)


@pytest.fixture(scope="module")
def bert(bert_folder):
    return load_checkpoint(str(bert_folder), "encoder")


def settings(tmp_path: Path | None = None, **kwargs) -> AdapterSettings:
    kwargs.setdefault("use_cache", tmp_path is not None)
    return AdapterSettings(cache_dir=str(tmp_path / "cache") if tmp_path else None, **kwargs)


def reference_hidden(loaded, text: str) -> tuple[torch.Tensor, ...]:
    """All hidden states of one unpadded text (no batching involved)."""
    batch = loaded.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return loaded.model(**batch, output_hidden_states=True).hidden_states


# --------------------------------------------------------------------------- layer convention
def test_layer_convention_matches_the_official_scripts():
    # 12 blocks -> 13 hidden states; layer k >= 0 is block k's output = hidden_states[k + 1]
    assert hidden_state_index(7, 12) == 8  # XTREME's --specific_layer 7
    assert hidden_state_index(0, 12) == 1
    assert hidden_state_index(11, 12) == 12
    assert hidden_state_index(-1, 12) == 12 == hidden_state_index(None, 12)
    assert hidden_state_index(-13, 12) == 0  # the embedding layer, only from the top
    for bad in (12, -14):
        with pytest.raises(ValueError, match="out of range"):
            hidden_state_index(bad, 12)


@pytest.mark.parametrize("layer, hidden", [(0, 1), (1, 2), (2, 3), (-1, 3), (-2, 2), (-4, 0)])
def test_layer_selects_the_documented_hidden_state(bert, layer, hidden):
    vectors = Embedder(bert, settings(layer=layer, pooling="cls")).embed(TEXTS[:1])
    expected = reference_hidden(bert, TEXTS[0])[hidden][0, 0].numpy()
    np.testing.assert_allclose(vectors[0], expected, atol=1e-5)


# --------------------------------------------------------------------------- pooling
def test_mean_pooling_includes_special_tokens(bert):
    vectors = Embedder(bert, settings(layer=-1, pooling="mean")).embed(TEXTS[:1])
    states = reference_hidden(bert, TEXTS[0])[-1][0]
    ids = bert.tokenizer(TEXTS[0])["input_ids"]
    assert ids[0] == bert.tokenizer.cls_token_id and ids[-1] == bert.tokenizer.sep_token_id
    np.testing.assert_allclose(vectors[0], states.mean(0).numpy(), atol=1e-5)
    assert not np.allclose(vectors[0], states[1:-1].mean(0).numpy(), atol=1e-3)


@pytest.mark.parametrize("pooling", ["mean", "cls", "max", "mean_sqrt_len", "weightedmean", "lasttoken"])
def test_padding_does_not_change_a_vector(bert, pooling):
    """Batched (padded with longer texts) and alone give the same vector."""
    embedder = Embedder(bert, settings(layer=-1, pooling=pooling, batch_size=8))
    together = embedder.embed(TEXTS)
    for i, text in enumerate(TEXTS):
        alone = Embedder(bert, settings(layer=-1, pooling=pooling, batch_size=1)).embed([text])
        np.testing.assert_allclose(together[i], alone[0], atol=1e-5)


def test_sentence_transformers_folder_pooling(tmp_path, bert_folder):
    """pooling=st reads modules.json: CLS pooling, a Dense layer, Normalize."""
    folder = tmp_path / "st"
    import shutil

    shutil.copytree(bert_folder, folder)
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    (folder / "2_Dense").mkdir()
    (folder / "2_Dense" / "config.json").write_text(json.dumps(
        {"in_features": 32, "out_features": 8, "bias": True, "activation_function": "torch.nn.modules.activation.Tanh"}))
    torch.manual_seed(1)
    weight, bias = torch.randn(8, 32), torch.randn(8)
    from safetensors.torch import save_file

    save_file({"linear.weight": weight, "linear.bias": bias}, str(folder / "2_Dense" / "model.safetensors"))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 5, "do_lower_case": True}))
    loaded = load_checkpoint(str(folder), "encoder")
    embedder = Embedder(loaded, settings(pooling="st"))
    assert embedder.max_length == 5 and embedder.plan.lowercase
    vectors = embedder.embed(["HELLO world this is a test"])
    batch = loaded.tokenizer(["hello world this is a test"], truncation=True, max_length=5, return_tensors="pt")
    with torch.no_grad():
        cls = loaded.model(**batch).last_hidden_state[:, 0]
    expected = torch.nn.functional.normalize(torch.tanh(cls @ weight.T + bias), dim=-1)[0].numpy()
    assert vectors.shape == (1, 8)
    np.testing.assert_allclose(vectors[0], expected, atol=1e-5)


def test_packaged_minilm_declares_mean_pooling_and_normalize(minilm_path):
    loaded = load_checkpoint(str(minilm_path), "encoder")
    st = Embedder(loaded, settings(pooling="st")).embed(TEXTS)
    mean = Embedder(loaded, settings(pooling="mean", layer=-1)).embed(TEXTS)
    np.testing.assert_allclose(st, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)


def test_pooling_st_without_a_sentence_transformers_folder_is_refused(bert):
    with pytest.raises(ValueError, match="modules.json"):
        Embedder(bert, settings(pooling="st"))
    with pytest.raises(ValueError, match="pooling='avg'"):
        Embedder(bert, settings(pooling="avg"))


# --------------------------------------------------------------------------- other encoders
def test_xlmr_and_mt5_encoders(tmp_path):
    xlmr = load_checkpoint(str(tiny_xlmr(tmp_path, head="encoder")), "encoder")
    vec = Embedder(xlmr, settings(layer=0)).embed(TEXTS)
    hidden = reference_hidden(xlmr, TEXTS[1])[1][0]
    np.testing.assert_allclose(vec[1], hidden.mean(0).numpy(), atol=1e-5)

    mt5_path = tiny_mt5(tmp_path, head="encoder")
    mt5 = load_checkpoint(str(mt5_path), "encoder")
    vec = Embedder(mt5, settings(layer=-1)).embed(TEXTS)
    batch = mt5.tokenizer([TEXTS[2]], return_tensors="pt")
    assert batch["input_ids"][0, -1].item() == mt5.tokenizer.eos_token_id  # </s> is pooled too
    with torch.no_grad():
        last = mt5.model(**batch).last_hidden_state[0]  # after the final layer norm
    np.testing.assert_allclose(vec[2], last.mean(0).numpy(), atol=1e-5)

    # a whole mT5 (encoder-decoder) embeds with its encoder
    whole = load_checkpoint(str(tiny_mt5(tmp_path, head="seq2seq", name="whole")), "seq2seq")
    whole_vec = Embedder(whole, settings(layer=-1)).embed(TEXTS)
    assert whole_vec.shape == (4, 32) and np.isfinite(whole_vec).all()


def test_answer_takes_lm_eval_requests_and_embeds_each_text_once(bert, tmp_path):
    calls: list[int] = []
    original = bert.model.forward

    def counting_forward(*args, **kwargs):
        calls.append(int(kwargs["input_ids"].shape[0]))
        return original(*args, **kwargs)

    bert.model.forward = counting_forward
    try:
        requests = [SimpleNamespace(args=(t,)) for t in (TEXTS + TEXTS[:2])]
        vectors = answer(bert, requests, settings(use_cache=False, batch_size=64))
    finally:
        del bert.model.forward
    assert sum(calls) == len(TEXTS)  # 6 requests, 4 distinct texts
    assert len(vectors) == 6 and all(v.dtype == np.float32 and v.shape == (32,) for v in vectors)
    np.testing.assert_array_equal(vectors[0], vectors[4])


# --------------------------------------------------------------------------- the cache
def test_cache_hit_avoids_re_embedding(bert, tmp_path):
    first = Embedder(bert, settings(tmp_path, layer=1))
    a = first.embed(TEXTS)
    assert first.forward_calls > 0
    again = Embedder(bert, settings(tmp_path, layer=1))
    b = again.embed(TEXTS[::-1] + TEXTS)
    assert again.forward_calls == 0
    np.testing.assert_array_equal(b[: len(TEXTS)], a[::-1])
    # only the new text is embedded
    partial = Embedder(bert, settings(tmp_path, layer=1))
    partial.embed(TEXTS + ["something new"])
    assert partial.forward_calls == 1
    # layer=-2 is the same hidden state as layer=1 for a 3-block model: same cache entries
    alias = Embedder(bert, settings(tmp_path, layer=-2))
    np.testing.assert_array_equal(alias.embed(TEXTS), a)
    assert alias.forward_calls == 0
    # another layer or pooling is another key
    other = Embedder(bert, settings(tmp_path, layer=2))
    other.embed(TEXTS)
    assert other.forward_calls > 0
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_layer_sweep_reads_every_layer_from_one_pass(bert, tmp_path):
    sweep = Embedder(bert, settings(tmp_path, layer=0, extra={"cache_layers": "all"}))
    sweep.embed(TEXTS)
    passes = sweep.forward_calls
    assert passes > 0
    for layer in (1, 2, -1, -4):
        later = Embedder(bert, settings(tmp_path, layer=layer))
        cached = later.embed(TEXTS)
        assert later.forward_calls == 0, layer
        fresh = Embedder(bert, settings(layer=layer)).embed(TEXTS)
        np.testing.assert_allclose(cached, fresh, atol=1e-6)


def test_cache_key_follows_the_weights(tmp_path):
    folder = tiny_bert(tmp_path, head="encoder", name="changing")
    loaded = load_checkpoint(str(folder), "encoder")
    Embedder(loaded, settings(tmp_path)).embed(TEXTS)
    before = checkpoint_identity(str(folder), loaded.model)
    # re-save different weights into the same folder
    tiny_bert(tmp_path, head="encoder", name="changing", seed=1)
    stat = (folder / "model.safetensors").stat()
    os.utime(folder / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert checkpoint_identity(str(folder), loaded.model) != before
    reloaded = load_checkpoint(str(folder), "encoder")
    embedder = Embedder(reloaded, settings(tmp_path))
    embedder.embed(TEXTS)
    assert embedder.forward_calls > 0


def test_identity_of_a_hub_model_without_files_hashes_the_weights(bert):
    identity = checkpoint_identity("org/not-a-local-path", bert.model)
    assert identity["hub_id"] == "org/not-a-local-path" and len(identity["weights"]) == 40


def test_cache_ignores_half_written_chunks(tmp_path):
    namespace = EmbeddingCache(tmp_path).namespace({"path": "x"}, layer=1)
    namespace.put(["a", "b"], np.ones((2, 3), dtype=np.float32))
    # a writer that died after the vectors but before the keys: invisible
    np.save(namespace.folder / "dead.vectors.npy", np.zeros((1, 3), dtype=np.float32))
    # a corrupt keys file: skipped with a warning, not a crash
    (namespace.folder / "broken.keys.npy").write_bytes(b"not numpy")
    fresh = EmbeddingCache(tmp_path).namespace({"path": "x"}, layer=1)
    vectors, missing = fresh.get(["a", "c", "b"])
    assert missing == [1]
    np.testing.assert_array_equal(vectors[[0, 2]], np.ones((2, 3)))
    assert json.loads((fresh.folder / "namespace.json").read_text())["layer"] == 1


def test_cache_keys_ending_in_nul_bytes_are_found(tmp_path):
    """Regression: keys stored as numpy 'S20' strings lost trailing NUL bytes (1 text in 256 never hit)."""
    import hashlib

    texts = [t for t in (f"sentence {i}" for i in range(5000)) if hashlib.sha1(t.encode()).digest()[-1] == 0][:3]
    assert len(texts) == 3
    EmbeddingCache(tmp_path).namespace({"path": "x"}).put(texts, np.eye(3, dtype=np.float32))
    vectors, missing = EmbeddingCache(tmp_path).namespace({"path": "x"}).get(texts)
    assert missing == []
    np.testing.assert_array_equal(vectors, np.eye(3))


def test_long_texts_are_cut_to_the_position_table(tmp_path):
    """A tiny XLM-R with 66 position rows (64 usable): a 300-word text is truncated, not a crash."""
    xlmr = load_checkpoint(str(tiny_xlmr(tmp_path, head="encoder")), "encoder")
    embedder = Embedder(xlmr, settings())
    assert embedder.max_length == 64
    long_text = " ".join(["hello world this is a test"] * 50)
    vectors = embedder.embed([long_text, "hello"])
    assert np.isfinite(vectors).all()


# --------------------------------------------------------------------------- out of memory
class OomAbove:
    """Wraps a model: a forward pass over more than ``capacity`` padded tokens raises torch's OOM."""

    def __init__(self, model, capacity: int) -> None:
        self.model, self.capacity, self.ooms = model, capacity, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, input_ids, **kwargs):
        if input_ids.numel() > self.capacity:
            self.ooms += 1
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried {input_ids.numel()} tokens")
        return self.model(input_ids=input_ids, **kwargs)


def test_oom_halving_is_remembered_for_later_calls(bert):
    texts = [f"{text} {i}" for i in range(8) for text in TEXTS]  # distinct: embed runs each text once
    reference = Embedder(bert, settings(batch_size=64)).embed(texts)
    embedder = Embedder(bert, settings(batch_size=64))
    embedder.model = OomAbove(embedder.model, capacity=60)
    vectors = embedder.embed(texts)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    first = embedder.model.ooms
    assert first >= 1 and embedder.batch_plan.halvings == first
    embedder.embed([t + " again" for t in texts])  # next language: starts at the size that fit
    assert embedder.model.ooms == first


# --------------------------------------------------------------------------- the task's token cap (LAReQA, Mewsli-X)
def test_requests_carry_the_official_token_cap(bert, tmp_path):
    """``embed_args(text, cap)``: the encoder adapter (also the mT5 encoder's path) and the prompted
    path cut each text at its request's cap, below the model's own limit; vectors print as digests."""
    from harness_ext.adapters.prompted.adapter import answer as prompted_answer
    from harness_ext.requests import EmbedVector, embed_args

    long_text = " ".join(["hello world this is a test"] * 20)
    requests = [SimpleNamespace(args=embed_args(long_text, 8)), SimpleNamespace(args=embed_args(long_text)),
                SimpleNamespace(args=embed_args("hello", 8))]
    vectors = answer(bert, requests, settings(use_cache=False))
    ids = bert.tokenizer([long_text], truncation=True, max_length=8, return_tensors="pt")
    with torch.no_grad():
        cut = bert.model(**ids).last_hidden_state[0].mean(0).numpy()
    np.testing.assert_allclose(vectors[0], cut, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4)  # the uncapped request sees more tokens
    assert isinstance(vectors[0], EmbedVector) and str(vectors[0]).startswith("<32-d float32 vector sha1:")

    mt5 = load_checkpoint(str(tiny_mt5(tmp_path, head="encoder")), "encoder")
    mt5_vectors = answer(mt5, requests[:2], settings(use_cache=False))
    assert not np.allclose(mt5_vectors[0], mt5_vectors[1], atol=1e-4)

    lm = SimpleNamespace(model=bert.model, tokenizer=bert.tokenizer, _xtreme_options={})
    prompted = prompted_answer("embed", lm, requests)
    assert all(isinstance(v, EmbedVector) for v in prompted)
    assert not np.allclose(prompted[0], prompted[1], atol=1e-4)
