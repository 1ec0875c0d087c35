"""Hugging Face backend: every head loads with the original logits; bad folders are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

from harness_ext.backends import CheckpointError, LoadedCheckpoint, detect_backend, load_checkpoint
from tests.helpers.tiny_models import encode, tiny_bert, tiny_mt5, tiny_xlmr

AUTO = {
    "sequence-classification": transformers.AutoModelForSequenceClassification,
    "token-classification": transformers.AutoModelForTokenClassification,
    "question-answering": transformers.AutoModelForQuestionAnswering,
    "encoder": transformers.AutoModel,
}


def _outputs(model, batch) -> torch.Tensor:
    with torch.no_grad():
        out = model(**batch)
    if hasattr(out, "logits"):
        return out.logits
    if hasattr(out, "start_logits"):
        return torch.stack([out.start_logits, out.end_logits])
    return out.last_hidden_state


@pytest.mark.parametrize("head", list(AUTO))
def test_each_head_matches_original(tmp_path: Path, head: str) -> None:
    folder = tiny_xlmr(tmp_path, head=head)
    assert detect_backend(str(folder)) == "hf"
    loaded = load_checkpoint(str(folder), head)
    assert isinstance(loaded, LoadedCheckpoint) and loaded.backend == "hf" and loaded.head == head
    assert loaded.tokenizer.is_fast and not loaded.model.training
    original = AUTO[head].from_pretrained(folder).eval()
    batch = encode(loaded.tokenizer)
    torch.testing.assert_close(_outputs(loaded.model, batch), _outputs(original, batch), atol=1e-5, rtol=0)
    if head == "sequence-classification":
        assert loaded.id2label() == {0: "entailment", 1: "neutral", 2: "contradiction"}


def test_bin_and_sharded_folders(tmp_path: Path) -> None:
    folder = tiny_bert(tmp_path, head="token-classification", safe_serialization=False)
    assert (folder / "pytorch_model.bin").exists()
    original = transformers.AutoModelForTokenClassification.from_pretrained(folder).eval()
    sharded = tmp_path / "sharded"
    original.save_pretrained(sharded, max_shard_size="20KB")
    for f in folder.glob("*token*"):
        shutil.copy(f, sharded)
    shutil.copy(folder / "vocab.txt", sharded)
    assert (sharded / "model.safetensors.index.json").exists()
    for path in (folder, sharded):
        loaded = load_checkpoint(str(path), "token-classification")
        batch = encode(loaded.tokenizer)
        torch.testing.assert_close(_outputs(loaded.model, batch), _outputs(original, batch), atol=1e-5, rtol=0)


def test_encoder_from_a_task_checkpoint(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path, head="token-classification")
    loaded = load_checkpoint(str(folder), "encoder")
    task = transformers.AutoModelForTokenClassification.from_pretrained(folder).eval()
    batch = encode(loaded.tokenizer)
    with torch.no_grad():
        want = task.roberta(**batch).last_hidden_state
    torch.testing.assert_close(_outputs(loaded.model, batch), want, atol=1e-5, rtol=0)


def test_mt5_encoder_and_seq2seq(tmp_path: Path) -> None:
    folder = tiny_mt5(tmp_path)
    enc = load_checkpoint(str(folder), "encoder")
    assert type(enc.model).__name__ == "MT5EncoderModel"
    s2s = load_checkpoint(str(folder), "seq2seq")
    batch = encode(s2s.tokenizer)
    original = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    dec = torch.zeros((batch["input_ids"].shape[0], 1), dtype=torch.long)
    with torch.no_grad():
        got = s2s.model(**batch, decoder_input_ids=dec).logits
        want = original(**batch, decoder_input_ids=dec).logits
        torch.testing.assert_close(enc.model(**batch).last_hidden_state,
                                   original.encoder(**batch).last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_dtype_is_applied(tmp_path: Path) -> None:
    loaded = load_checkpoint(str(tiny_xlmr(tmp_path)), "sequence-classification", dtype="bfloat16")
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


# ---- bad input -------------------------------------------------------------------------

def test_random_head_is_refused(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path, head="encoder")
    with pytest.raises(CheckpointError, match="randomly initialised"):
        load_checkpoint(str(folder), "sequence-classification")


@pytest.mark.parametrize("saved,asked", [("sequence-classification", "token-classification"),
                                          ("token-classification", "question-answering")])
def test_head_for_the_wrong_task(tmp_path: Path, saved: str, asked: str) -> None:
    # BERT's sequence and token heads have the same weight names: only the architecture tells them apart
    folder = tiny_bert(tmp_path, head=saved)
    with pytest.raises(CheckpointError, match=f"expected a {asked} head") as err:
        load_checkpoint(str(folder), asked)
    assert str(folder / "config.json") in str(err.value)


def test_truncated_safetensors(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="truncated") as err:
        load_checkpoint(str(folder), "sequence-classification")
    assert str(weights) in str(err.value)


def test_corrupted_safetensors_header(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:20] = b"garbage!!!!!"
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted") as err:
        load_checkpoint(str(folder), "sequence-classification")
    assert str(weights) in str(err.value)


def test_truncated_bin(tmp_path: Path) -> None:
    folder = tiny_bert(tmp_path, safe_serialization=False)
    weights = folder / "pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="pytorch_model.bin"):
        load_checkpoint(str(folder), "sequence-classification")


def test_missing_shard(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    model.save_pretrained(folder, max_shard_size="20KB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    victim = folder / sorted(set(index["weight_map"].values()))[-1]
    victim.unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        load_checkpoint(str(folder), "sequence-classification")
    assert str(victim) in str(err.value)


def test_missing_tokenizer(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model"):
        (folder / name).unlink()
    with pytest.raises(CheckpointError, match="no tokenizer found"):
        load_checkpoint(str(folder), "sequence-classification")
    other = tiny_xlmr(tmp_path, name="tok-donor")
    loaded = load_checkpoint(str(folder), "sequence-classification", tokenizer=str(other))
    assert loaded.tokenizer.is_fast


def test_vocab_size_mismatch(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path, head="encoder", vocab_size=40)
    with pytest.raises(CheckpointError, match="embedding table has 40 rows"):
        load_checkpoint(str(folder), "encoder")


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "weights.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        load_checkpoint(str(tmp_path), "encoder")
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(str(tmp_path / "nope" / "model"), "encoder")


def test_unknown_head_and_option(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path)
    with pytest.raises(CheckpointError, match="unknown head"):
        load_checkpoint(str(folder), "classification")
    with pytest.raises(CheckpointError, match="does not take option"):
        load_checkpoint(str(folder), "sequence-classification", bogus=1)


def test_hub_id_offline_is_a_checkpoint_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert detect_backend("no-such-org/no-such-model") == "hf"
    with pytest.raises(CheckpointError, match="no-such-org/no-such-model"):
        load_checkpoint("no-such-org/no-such-model", "encoder")


def test_labels_option_names_a_generic_head(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path, id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    loaded = load_checkpoint(str(folder), "sequence-classification", labels=("entailment", "neutral", "contradiction"))
    assert loaded.id2label() == {0: "entailment", 1: "neutral", 2: "contradiction"}
    assert load_checkpoint(str(folder), "sequence-classification", labels="a, b, c").id2label()[2] == "c"
    with pytest.raises(CheckpointError, match="names 2 outputs but the head has 3"):
        load_checkpoint(str(folder), "sequence-classification", labels=("0", "1"))


def test_tokenizer_limit_fits_the_position_table(tmp_path: Path) -> None:
    folder = tiny_xlmr(tmp_path, head="encoder")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("model_max_length", None)  # as tokenizers rebuilt from a sentencepiece file come
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    loaded = load_checkpoint(str(folder), "encoder")
    assert loaded.tokenizer.model_max_length == 64  # 66 positions - padding offset
    batch = loaded.tokenizer(["hello " * 200], truncation=True, return_tensors="pt")
    assert _outputs(loaded.model, batch).shape[1] == 64


def test_device_map_places_the_model_with_accelerate(tmp_path):
    """Large-model path: device_map/max_memory reach from_pretrained, bf16 at load time.
    (transformers 5 sets ``hf_device_map`` only for a real multi-device split, which needs GPUs.)"""
    import torch

    from harness_ext.adapters.xtreme_lm import parse_max_memory
    from harness_ext.backends import load_checkpoint

    path = tiny_xlmr(tmp_path, head="sequence-classification")
    loaded = load_checkpoint(str(path), "sequence-classification", dtype="bfloat16",
                             device_map="cpu", max_memory=parse_max_memory("cpu:2GiB"))
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        logits = loaded.model(**loaded.tokenizer(["hello world"], return_tensors="pt")).logits
    assert logits.shape == (1, 3) and torch.isfinite(logits.float()).all()
    assert parse_max_memory("0:70GiB;1:70GiB;cpu:200GiB") == ((0, "70GiB"), (1, "70GiB"), ("cpu", "200GiB"))
