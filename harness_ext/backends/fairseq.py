"""fairseq RoBERTa / XLM-R checkpoints: ``model.pt`` (or ``checkpoint_best.pt``) beside
``dict.txt`` and ``sentencepiece.bpe.model``, as fairseq releases and fine-tunes them.

fairseq does not install on Python 3.11, so the file is read weights-only (its ``args``
Namespace or omegaconf ``cfg`` kept as plain data) and the weights are renamed onto
transformers' XLM-R the way transformers' own
``convert_roberta_original_pytorch_checkpoint_to_pytorch.py`` does. The tokenizer is
transformers' XLM-R tokenizer converted from the sentencepiece model, after checking that
``dict.txt`` follows the sentencepiece order (the id mapping that tokenizer assumes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness_ext.backends._common import apply_label_names, load_tokenizer, missing_extra, model_from_state_dict
from harness_ext.backends._torchfile import find_key, torch_load
from harness_ext.backends.base import TASK_HEADS, CheckpointError, register_backend

WEIGHT_NAMES = ("model.pt", "checkpoint_best.pt", "checkpoint_last.pt")
SPM_NAME = "sentencepiece.bpe.model"
#: fairseq's Dictionary puts <s> <pad> </s> <unk> before the dict.txt entries
N_SPECIAL = 4
#: heads per width when the checkpoint does not record them (XLM-R / RoBERTa sizes)
DEFAULT_HEADS = {768: 12, 1024: 16, 2560: 32, 4096: 32}

_LAYER = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.output.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "output.LayerNorm",
}
_EMBED = {
    "embed_tokens.weight": "embeddings.word_embeddings.weight",
    "embed_positions.weight": "embeddings.position_embeddings.weight",
    "emb_layer_norm.weight": "embeddings.LayerNorm.weight",  # fairseq <= 0.10
    "emb_layer_norm.bias": "embeddings.LayerNorm.bias",
    "layernorm_embedding.weight": "embeddings.LayerNorm.weight",  # fairseq >= 0.12
    "layernorm_embedding.bias": "embeddings.LayerNorm.bias",
}


def weights_file(path: Path, name: str | None = None) -> Path | None:
    if path.is_file():
        return path if path.suffix == ".pt" and (path.parent / "dict.txt").exists() else None
    if not (path.is_dir() and (path / "dict.txt").is_file()):
        return None
    if name:
        return path / name
    return next((path / n for n in WEIGHT_NAMES if (path / n).is_file()), None)


@register_backend("fairseq", lambda p: weights_file(p) is not None, priority=20,
                  expects="fairseq folder: model.pt + dict.txt + sentencepiece.bpe.model")
def load_fairseq(source: str, head: str, *, tokenizer: str | None = None, weights: str | None = None,
                 head_name: str | None = None, label_dict: str | None = None) -> tuple[Any, Any]:
    path = Path(source)
    file = weights_file(path, weights)
    if file is None or not file.is_file():
        raise CheckpointError(f"{path}: no fairseq weights (expected {' or '.join(WEIGHT_NAMES)} beside dict.txt)")
    folder = file.parent
    ckpt = torch_load(file, "a fairseq checkpoint (dict with 'model' and 'args' or 'cfg')")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise CheckpointError(f"{file}: not a fairseq checkpoint (expected a dict with a 'model' state dict)")
    options = ckpt.get("cfg") or ckpt.get("args") or {}
    encoder, heads = split_state_dict(ckpt["model"], file)
    config = xlmr_config(encoder, options, file)
    sd = {f"roberta.{k}": v for k, v in encoder.items()}
    if head == "sequence-classification":
        name = _choose_head(heads, head_name, file)
        config.num_labels = int(heads[name]["out_proj.weight"].shape[0])
        apply_label_names(config, head, _label_names(folder, label_dict), str(file))
        sd.update({f"classifier.{k}": v for k, v in heads[name].items()})
    elif head in TASK_HEADS or head == "seq2seq":
        raise CheckpointError(f"{file}: fairseq RoBERTa checkpoints carry sentence classification heads only "
                              f"(found: {sorted(heads) or 'none'}); expected the encoder or sequence-classification")
    model = model_from_state_dict(config, head, sd, str(file))
    if tokenizer:
        return model, load_tokenizer([], str(file), tokenizer)
    return model, xlmr_tokenizer(folder, file)


def split_state_dict(state: dict[str, Any], file: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(encoder weights by transformers' XLMRobertaModel names, classification heads by name)."""
    encoder: dict[str, Any] = {}
    heads: dict[str, dict[str, Any]] = {}
    unknown = []
    for key, value in state.items():
        m = re.match(r"^classification_heads\.([^.]+)\.(dense|out_proj)\.(weight|bias)$", key)
        if m:
            heads.setdefault(m.group(1), {})[f"{m.group(2)}.{m.group(3)}"] = value
            continue
        m = re.match(r"^(?:encoder|decoder)\.sentence_encoder\.(.+)$", key)
        if not m:
            if not re.match(r"^(?:encoder|decoder)\.lm_head\.", key):
                unknown.append(key)
            continue
        rest = m.group(1)
        if rest in _EMBED:
            encoder[_EMBED[rest]] = value
            continue
        lm = re.match(r"^layers\.(\d+)\.(.+)\.(weight|bias)$", rest)
        if lm and lm.group(2) in _LAYER:
            encoder[f"encoder.layer.{lm.group(1)}.{_LAYER[lm.group(2)]}.{lm.group(3)}"] = value
        elif rest == "version" or rest.endswith("_float_tensor"):
            continue
        else:
            unknown.append(key)
    if any(k.endswith("sentence_encoder.layer_norm.weight") for k in unknown):
        raise CheckpointError(f"{file}: a pre-layer-norm encoder (XLM-R XL/XXL style); expected a RoBERTa/XLM-R "
                              "base/large post-layer-norm checkpoint")
    if unknown:
        raise CheckpointError(f"{file}: unexpected fairseq weights {unknown[:6]}; expected a RoBERTa/XLM-R encoder")
    if "embeddings.word_embeddings.weight" not in encoder:
        raise CheckpointError(f"{file}: no encoder.sentence_encoder.embed_tokens.weight; expected a RoBERTa/XLM-R model")
    return encoder, heads


def xlmr_config(encoder: dict[str, Any], options: Any, file: Path) -> Any:
    """transformers' XLMRobertaConfig for these weights; heads/activation from the run's args."""
    import torch
    from transformers import XLMRobertaConfig

    vocab, hidden = encoder["embeddings.word_embeddings.weight"].shape
    layers = len({k.split(".")[2] for k in encoder if k.startswith("encoder.layer.")})
    heads = find_key(options, "encoder_attention_heads") or DEFAULT_HEADS.get(int(hidden))
    if not heads:
        raise CheckpointError(f"{file}: cannot tell the number of attention heads (no encoder_attention_heads in "
                              "its args/cfg and an unusual width)")
    encoder["embeddings.token_type_embeddings.weight"] = torch.zeros(1, hidden, dtype=encoder[
        "embeddings.word_embeddings.weight"].dtype)  # RoBERTa has no segments; transformers wants the table
    return XLMRobertaConfig(
        vocab_size=int(vocab), hidden_size=int(hidden), num_hidden_layers=layers, num_attention_heads=int(heads),
        intermediate_size=int(encoder["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_position_embeddings=int(encoder["embeddings.position_embeddings.weight"].shape[0]),
        type_vocab_size=1, layer_norm_eps=1e-5, hidden_act=str(find_key(options, "activation_fn") or "gelu"),
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )


def _choose_head(heads: dict[str, Any], name: str | None, file: Path) -> str:
    if name is not None:
        if name not in heads:
            raise CheckpointError(f"{file}: no classification head {name!r}; it has {sorted(heads) or 'none'}")
        return name
    if len(heads) == 1:
        return next(iter(heads))
    if not heads:
        raise CheckpointError(f"{file}: no classification_heads.* weights; expected a fine-tuned sentence classifier")
    raise CheckpointError(f"{file}: several classification heads {sorted(heads)}; choose one with head_name=")


def _label_names(folder: Path, option: str | None) -> list[str] | None:
    """fairseq's label dictionary (``label/dict.txt`` of the fine-tuning data): output i is line i."""
    for cand in ([Path(option)] if option else [folder / "label" / "dict.txt", folder / "label_dict.txt"]):
        if cand.is_file():
            return [line.split()[0] for line in cand.read_text(encoding="utf-8").splitlines() if line.strip()]
    return None


def xlmr_tokenizer(folder: Path, file: Path) -> Any:
    """XLM-R tokenizer from sentencepiece.bpe.model, checked against dict.txt's order."""
    spm_file = folder / SPM_NAME
    if not spm_file.is_file():
        raise CheckpointError(f"{folder}: no {SPM_NAME} beside {file.name} (expected fairseq's sentencepiece model), "
                              "or pass tokenizer=<folder or hub id>")
    try:
        import sentencepiece
    except ImportError:
        raise missing_extra("fairseq", "sentencepiece", str(spm_file)) from None
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.Load(str(spm_file))
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"{spm_file}: not a sentencepiece model: {exc}") from exc
    entries = [line.rsplit(" ", 1)[0] for line in (folder / "dict.txt").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    pieces = [processor.IdToPiece(i) for i in range(3, processor.GetPieceSize())]
    clash = next((i for i, (a, b) in enumerate(zip(entries, pieces)) if a != b), None)
    if clash is not None or len(entries) < len(pieces):
        where = f"line {clash + 1}: {entries[clash]!r} vs {pieces[clash]!r}" if clash is not None else \
            f"{len(entries)} entries for {len(pieces)} pieces"
        raise CheckpointError(f"{folder / 'dict.txt'}: does not follow {SPM_NAME}'s piece order ({where}); "
                              "expected XLM-R's layout (fairseq id = sentencepiece id + 1)")
    from transformers import XLMRobertaTokenizer

    try:
        return XLMRobertaTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{spm_file}: cannot build the XLM-R tokenizer: {exc}") from exc
