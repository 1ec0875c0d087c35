"""fairseq backend: an XLM-R checkpoint in fairseq's own layout (model.pt with fairseq key
names and args, dict.txt, sentencepiece.bpe.model) loads with the logits of a reference
forward pass written here over the *fairseq* weights (fairseq does not install on 3.11)."""

from __future__ import annotations

import argparse
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint
from tests.helpers.tiny_models import SAMPLE_TEXTS, spm_model_bytes

HIDDEN, LAYERS, HEADS, FFN, MAX_POS = 32, 2, 4, 64, 64


def write_fairseq(folder: Path, n_labels: int = 3, cfg_style: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A fine-tuned fairseq RoBERTa (XLM-R vocabulary) folder; returns its state dict."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sentencepiece.bpe.model").write_bytes(spm_model_bytes("xlmr"))
    proc = spm.SentencePieceProcessor(model_proto=spm_model_bytes("xlmr"))
    pieces = [proc.IdToPiece(i) for i in range(3, proc.GetPieceSize())]
    (folder / "dict.txt").write_text("".join(f"{p} {1000 - i}\n" for i, p in enumerate(pieces)), encoding="utf-8")
    (folder / "label").mkdir()
    (folder / "label" / "dict.txt").write_text("entailment 10\nneutral 9\ncontradiction 8\n")
    vocab = 4 + len(pieces) + 1  # <s> <pad> </s> <unk>, dict.txt, <mask>
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.2

    p = "encoder.sentence_encoder."
    sd: OrderedDict[str, torch.Tensor] = OrderedDict()
    sd[p + "embed_tokens.weight"] = rnd(vocab, HIDDEN)
    sd[p + "embed_positions.weight"] = rnd(MAX_POS + 2, HIDDEN)
    sd[p + "emb_layer_norm.weight"], sd[p + "emb_layer_norm.bias"] = 1 + rnd(HIDDEN), rnd(HIDDEN)
    for i in range(LAYERS):
        q = f"{p}layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            sd[f"{q}self_attn.{proj}.weight"], sd[f"{q}self_attn.{proj}.bias"] = rnd(HIDDEN, HIDDEN), rnd(HIDDEN)
        sd[q + "self_attn_layer_norm.weight"], sd[q + "self_attn_layer_norm.bias"] = 1 + rnd(HIDDEN), rnd(HIDDEN)
        sd[q + "fc1.weight"], sd[q + "fc1.bias"] = rnd(FFN, HIDDEN), rnd(FFN)
        sd[q + "fc2.weight"], sd[q + "fc2.bias"] = rnd(HIDDEN, FFN), rnd(HIDDEN)
        sd[q + "final_layer_norm.weight"], sd[q + "final_layer_norm.bias"] = 1 + rnd(HIDDEN), rnd(HIDDEN)
    sd["encoder.lm_head.dense.weight"], sd["encoder.lm_head.dense.bias"] = rnd(HIDDEN, HIDDEN), rnd(HIDDEN)
    sd["encoder.lm_head.layer_norm.weight"], sd["encoder.lm_head.layer_norm.bias"] = 1 + rnd(HIDDEN), rnd(HIDDEN)
    sd["encoder.lm_head.weight"], sd["encoder.lm_head.bias"] = sd[p + "embed_tokens.weight"], rnd(vocab)
    h = "classification_heads.xnli."
    sd[h + "dense.weight"], sd[h + "dense.bias"] = rnd(HIDDEN, HIDDEN), rnd(HIDDEN)
    sd[h + "out_proj.weight"], sd[h + "out_proj.bias"] = rnd(n_labels, HIDDEN), rnd(n_labels)
    model_args = dict(arch="roberta_base", encoder_layers=LAYERS, encoder_embed_dim=HIDDEN, encoder_ffn_embed_dim=FFN,
                      encoder_attention_heads=HEADS, activation_fn="gelu", max_positions=MAX_POS, dropout=0.1)
    ckpt = {"model": sd, "optimizer_history": [{"criterion_name": "SentencePredictionCriterion",
                                                "optimizer_name": "FairseqAdam", "num_updates": 100}],
            "extra_state": {"epoch": 3, "val_loss": np.float64(0.25)}, "last_optimizer_state": None}
    if cfg_style:  # fairseq >= 0.10: an omegaconf DictConfig (faked here: omegaconf is not installed)
        ckpt["cfg"] = _fake_dictconfig({"model": _fake_dictconfig(model_args), "task": _fake_dictconfig({"_name": "sentence_prediction"})})
        package, module = types.ModuleType("omegaconf"), types.ModuleType("omegaconf.dictconfig")
        module.DictConfig = package.dictconfig = _FakeDictConfig
        package.dictconfig = module
        sys.modules.update({"omegaconf": package, "omegaconf.dictconfig": module})
        try:
            torch.save(ckpt, folder / "checkpoint_best.pt")
        finally:
            del sys.modules["omegaconf"], sys.modules["omegaconf.dictconfig"]
    else:
        ckpt["args"] = argparse.Namespace(**model_args)
        torch.save(ckpt, folder / "model.pt")
    return sd


class _FakeDictConfig:
    """Pickles like omegaconf's DictConfig: a class from another package holding ``_content``."""


_FakeDictConfig.__module__ = "omegaconf.dictconfig"
_FakeDictConfig.__qualname__ = _FakeDictConfig.__name__ = "DictConfig"


def _fake_dictconfig(content: dict) -> _FakeDictConfig:
    obj = _FakeDictConfig()
    obj.__dict__.update({"_metadata": None, "_parent": None, "_content": content})
    return obj


def fairseq_forward(sd: dict[str, torch.Tensor], ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fairseq's RoBERTa (TransformerSentenceEncoder, post-LN) + RobertaClassificationHead, on its own weights."""
    p = "encoder.sentence_encoder."
    pad = ids.eq(1)
    positions = torch.cumsum(~pad, dim=1) * (~pad) + 1  # utils.make_positions with padding_idx=1
    x = sd[p + "embed_tokens.weight"][ids] + sd[p + "embed_positions.weight"][positions]
    x = F.layer_norm(x, (HIDDEN,), sd[p + "emb_layer_norm.weight"], sd[p + "emb_layer_norm.bias"], 1e-5)
    x = x * (~pad).unsqueeze(-1)
    bsz, seq, _ = x.shape
    for i in range(LAYERS):
        q = f"{p}layers.{i}."

        def lin(name: str, t: torch.Tensor) -> torch.Tensor:
            return F.linear(t, sd[q + name + ".weight"], sd[q + name + ".bias"])

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(bsz, seq, HEADS, HIDDEN // HEADS).transpose(1, 2)

        query = split(lin("self_attn.q_proj", x) * (HIDDEN // HEADS) ** -0.5)
        scores = query @ split(lin("self_attn.k_proj", x)).transpose(-1, -2)
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf")).softmax(-1)
        attn = (scores @ split(lin("self_attn.v_proj", x))).transpose(1, 2).reshape(bsz, seq, HIDDEN)
        x = F.layer_norm(x + lin("self_attn.out_proj", attn), (HIDDEN,), sd[q + "self_attn_layer_norm.weight"],
                         sd[q + "self_attn_layer_norm.bias"], 1e-5)
        ffn = lin("fc2", F.gelu(lin("fc1", x)))
        x = F.layer_norm(x + ffn, (HIDDEN,), sd[q + "final_layer_norm.weight"], sd[q + "final_layer_norm.bias"], 1e-5)
    h = "classification_heads.xnli."
    cls = torch.tanh(F.linear(x[:, 0], sd[h + "dense.weight"], sd[h + "dense.bias"]))
    return x, F.linear(cls, sd[h + "out_proj.weight"], sd[h + "out_proj.bias"])


def fairseq_ids(folder: Path, text: str) -> list[int]:
    """fairseq's encoding: <s> + dict.txt index of each sentencepiece piece + </s>."""
    import sentencepiece as spm

    proc = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.bpe.model"))
    index = {line.split(" ")[0]: 4 + i for i, line in enumerate((folder / "dict.txt").read_text().splitlines())}
    return [0] + [index.get(piece, 3) for piece in proc.EncodeAsPieces(text)] + [2]


@pytest.mark.parametrize("cfg_style", [False, True], ids=["args", "omegaconf-cfg"])
def test_fairseq_xlmr_matches_reference(tmp_path: Path, cfg_style: bool) -> None:
    folder = tmp_path / "xnli"
    sd = write_fairseq(folder, cfg_style=cfg_style)
    assert detect_backend(str(folder)) == "fairseq"
    loaded = load_checkpoint(str(folder), "sequence-classification")
    assert loaded.backend == "fairseq" and loaded.id2label() == {0: "entailment", 1: "neutral", 2: "contradiction"}
    assert loaded.model.config.num_attention_heads == HEADS
    for text in SAMPLE_TEXTS:
        assert loaded.tokenizer(text)["input_ids"] == fairseq_ids(folder, text)
    batch = loaded.tokenizer(list(SAMPLE_TEXTS), padding=True, return_tensors="pt")
    hidden, logits = fairseq_forward(sd, batch["input_ids"])
    with torch.no_grad():
        got = loaded.model(**batch).logits
    torch.testing.assert_close(got, logits, atol=1e-5, rtol=0)
    enc = load_checkpoint(str(folder), "encoder")
    with torch.no_grad():
        states = enc.model(**batch).last_hidden_state
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(states[mask], hidden[mask], atol=1e-5, rtol=0)


def test_fairseq_bad_input(tmp_path: Path) -> None:
    folder = tmp_path / "xnli"
    write_fairseq(folder)
    with pytest.raises(CheckpointError, match="sentence classification heads only"):
        load_checkpoint(str(folder), "token-classification")
    lines = (folder / "dict.txt").read_text().splitlines()
    (folder / "dict.txt").write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    with pytest.raises(CheckpointError, match="does not follow sentencepiece.bpe.model's piece order"):
        load_checkpoint(str(folder), "encoder")
    (folder / "dict.txt").write_text("\n".join(lines) + "\n")
    (folder / "sentencepiece.bpe.model").unlink()
    with pytest.raises(CheckpointError, match="no sentencepiece.bpe.model"):
        load_checkpoint(str(folder), "encoder")
    weights = folder / "model.pt"
    weights.write_bytes(weights.read_bytes()[:4000])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as err:
        load_checkpoint(str(folder), "encoder")
    assert str(weights) in str(err.value)


def test_fairseq_vocab_mismatch(tmp_path: Path) -> None:
    folder = tmp_path / "xnli"
    sd = write_fairseq(folder)
    lines = (folder / "dict.txt").read_text().splitlines()
    sd["encoder.sentence_encoder.embed_tokens.weight"] = sd["encoder.sentence_encoder.embed_tokens.weight"][:50]
    torch.save({"model": sd, "args": argparse.Namespace(encoder_attention_heads=HEADS)}, folder / "model.pt")
    assert len(lines) + 5 > 50
    with pytest.raises(CheckpointError, match="embedding table has 50 rows"):
        load_checkpoint(str(folder), "encoder")


# ----------------------------------------------------------------- device_map for a non-HF backend
@pytest.mark.parametrize("device_map", ["auto", "sequential"])
def test_fairseq_checkpoint_is_spread_by_device_map(tmp_path: Path, device_map: str) -> None:
    """A fairseq checkpoint, loaded by our own code, is placed by accelerate after loading: with a
    max_memory too small for the whole model, layers go to the offload folder and come back per forward
    pass through accelerate's hooks, giving the logits of the model on one device."""
    folder = tmp_path / "xnli"
    write_fairseq(folder)
    whole = load_checkpoint(str(folder), "sequence-classification")
    spread = load_checkpoint(str(folder), "sequence-classification", device_map=device_map,
                             max_memory={"cpu": 40_000}, offload_folder=str(tmp_path / "offload"))
    placed = spread.model.hf_device_map
    assert set(placed.values()) == {"cpu", "disk"}, placed
    ids = torch.tensor([fairseq_ids(folder, SAMPLE_TEXTS[0])])
    with torch.no_grad():
        expected = whole.model(input_ids=ids).logits
        got = spread.model(input_ids=ids).logits
    torch.testing.assert_close(got, expected)


def test_device_map_on_one_device_and_the_error_when_memory_is_short(tmp_path: Path) -> None:
    folder = tmp_path / "xnli"
    write_fairseq(folder)
    loaded = load_checkpoint(str(folder), "encoder", device_map="cpu", dtype="bfloat16")
    assert loaded.model.hf_device_map == {"": "cpu"}
    assert next(loaded.model.parameters()).dtype == torch.bfloat16
    with pytest.raises(CheckpointError, match="offload_folder"):
        load_checkpoint(str(folder), "encoder", device_map="auto", max_memory={"cpu": 40_000})


def test_one_system_mixes_hf_and_non_hf_checkpoints_under_the_same_device_map(tmp_path: Path) -> None:
    from tests.helpers.tiny_models import tiny_bert

    options = {"device_map": "auto", "max_memory": {"cpu": "1GiB"}, "dtype": "float32"}
    write_fairseq(tmp_path / "fairseq")
    hf = load_checkpoint(str(tiny_bert(tmp_path / "hf", head="encoder")), "encoder", **options)
    fs = load_checkpoint(str(tmp_path / "fairseq"), "encoder", **options)
    # transformers places the HF model while loading (and, all on one CPU, may leave no map); ours after loading
    assert set(getattr(hf.model, "hf_device_map", {"": "cpu"}).values()) == {"cpu"}
    assert fs.model.hf_device_map == {"": "cpu"}
