"""Tiny, deterministic checkpoints for offline tests.

Each builder writes a ``save_pretrained`` folder (model + a real fast tokenizer) under
``tmp_path`` and returns its path. Tokenizers are trained on the fly with
sentencepiece (XLM-R, mT5) or built from a small WordPiece vocabulary (BERT), so no
hub access is needed. Weights come from a fixed seed: the same call gives the same model.

    path = tiny_xlmr(tmp_path, head="sequence-classification", id2label={0: "entailment", ...})
    model = AutoModelForSequenceClassification.from_pretrained(path)
"""

from __future__ import annotations

import functools
import io
import random
from pathlib import Path

import torch

XNLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}
PANX_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-ORG", 4: "I-ORG", 5: "B-LOC", 6: "I-LOC"}
HEAD_CLASSES = {
    "sequence-classification": "ForSequenceClassification",
    "token-classification": "ForTokenClassification",
    "question-answering": "ForQuestionAnswering",
    "multiple-choice": "ForMultipleChoice",
    "encoder": "Model",
    "masked-lm": "ForMaskedLM",
}
_WORDS = (
    "hello world this is a test the quick brown fox jumps over lazy dog cat house "
    "bonjour le monde ceci est un chat maison hallo welt das ist ein hund haus "
    "hola mundo esto es una prueba perro casa привет мир это тест 你好 世界 这是 测试 "
    "Paris Berlin Madrid John Mary Google Microsoft who what where when"
).split()
SAMPLE_TEXTS = ("hello world this is a test", "bonjour le monde", "John lives in Paris", "привет мир 你好")


def _corpus() -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(_WORDS) for _ in range(12)) for _ in range(400)]


@functools.lru_cache(maxsize=None)
def spm_model_bytes(kind: str = "xlmr", vocab_size: int = 120) -> bytes:
    """A unigram sentencepiece model with XLM-R (``<s> <pad> </s> <unk>``) or
    T5 (``<pad> </s> <unk>``) special-token ids."""
    import sentencepiece as spm

    ids = {"xlmr": dict(bos_id=0, pad_id=1, eos_id=2, unk_id=3), "t5": dict(pad_id=0, eos_id=1, unk_id=2, bos_id=-1)}[kind]
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()), model_writer=out, vocab_size=vocab_size, model_type="unigram",
        hard_vocab_limit=False, shuffle_input_sentence=False, num_threads=1, minloglevel=2,
        character_coverage=1.0, **ids,
    )
    return out.getvalue()


def xlmr_tokenizer_trained_on(texts, folder: Path, vocab_size: int = 2000, character_coverage: float = 0.995):
    """An XLM-R fast tokenizer whose sentencepiece model is trained on ``texts`` (real text in many
    scripts: pieces inside and across words; characters outside the coverage become ``<unk>``)."""
    import sentencepiece as spm
    from transformers import XLMRobertaTokenizer

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_writer=out, vocab_size=vocab_size, model_type="unigram",
        hard_vocab_limit=False, shuffle_input_sentence=False, num_threads=1, minloglevel=2,
        character_coverage=character_coverage, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,  # XLM-R's own layout
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sentencepiece.bpe.model").write_bytes(out.getvalue())
    return XLMRobertaTokenizer.from_pretrained(str(folder))


def xlmr_tokenizer(folder: Path):
    """XLM-R fast tokenizer converted from a fresh ``sentencepiece.bpe.model`` in ``folder``."""
    from transformers import XLMRobertaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sentencepiece.bpe.model").write_bytes(spm_model_bytes("xlmr"))
    return XLMRobertaTokenizer.from_pretrained(str(folder))


def t5_tokenizer(folder: Path):
    """T5/mT5 fast tokenizer converted from a fresh ``spiece.model`` in ``folder``."""
    from transformers import T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(spm_model_bytes("t5"))
    return T5Tokenizer.from_pretrained(str(folder), extra_ids=0)


def bert_tokenizer(folder: Path):
    """BERT WordPiece fast tokenizer over a small vocabulary written to ``vocab.txt``."""
    from transformers import BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted({c for w in _WORDS for c in w.lower()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars),
             *sorted({w.lower() for w in _WORDS})]
    vocab = list(dict.fromkeys(vocab))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizer.from_pretrained(str(folder), do_lower_case=True)


def _labels_for(head: str, id2label: dict[int, str] | None) -> dict:
    if head == "sequence-classification":
        id2label = id2label or XNLI_LABELS
    elif head == "token-classification":
        id2label = id2label or PANX_LABELS
    elif head == "question-answering":
        id2label = id2label or {0: "LABEL_0", 1: "LABEL_1"}
    if not id2label:
        return {}
    return {"id2label": dict(id2label), "label2id": {v: k for k, v in id2label.items()}}


def _encoder_config_kwargs(vocab_size: int, **overrides) -> dict:
    base = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    base.update(overrides)
    return base


def build_xlmr(head: str = "sequence-classification", id2label: dict[int, str] | None = None,
               seed: int = 0, vocab_size: int | None = None, tokenizer_dir: Path | None = None, **config):
    """(model, tokenizer) of a tiny XLM-R with ``head``; not saved."""
    import transformers
    from transformers import XLMRobertaConfig

    tok = xlmr_tokenizer(tokenizer_dir) if tokenizer_dir else None
    size = vocab_size or (len(tok) if tok is not None else 128)
    cfg = XLMRobertaConfig(**_encoder_config_kwargs(size, max_position_embeddings=66, type_vocab_size=1,
                                                    pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                                    layer_norm_eps=1e-5, **config),
                           **_labels_for(head, id2label))
    torch.manual_seed(seed)
    model = getattr(transformers, "XLMRoberta" + HEAD_CLASSES[head])(cfg).eval()
    return model, tok


def tiny_xlmr(tmp_path: Path, head: str = "sequence-classification", id2label: dict[int, str] | None = None,
              seed: int = 0, name: str | None = None, safe_serialization: bool = True, **config) -> Path:
    """A saved tiny XLM-R (``head`` one of HEAD_CLASSES) with its sentencepiece tokenizer."""
    folder = Path(tmp_path) / (name or f"xlmr-{head}-{seed}")
    model, tok = build_xlmr(head, id2label, seed, tokenizer_dir=folder, **config)
    tok.model_max_length = model.config.max_position_embeddings - 2  # like XLM-R's 514 -> 512
    _save(model, tok, folder, safe_serialization)
    return folder


def tiny_bert(tmp_path: Path, head: str = "sequence-classification", id2label: dict[int, str] | None = None,
              seed: int = 0, name: str | None = None, safe_serialization: bool = True, **config) -> Path:
    """A saved tiny (m)BERT with a WordPiece tokenizer."""
    import transformers
    from transformers import BertConfig

    folder = Path(tmp_path) / (name or f"bert-{head}-{seed}")
    tok = bert_tokenizer(folder)
    cfg = BertConfig(**_encoder_config_kwargs(len(tok), max_position_embeddings=64, **config),
                     **_labels_for(head, id2label))
    torch.manual_seed(seed)
    model = getattr(transformers, "Bert" + HEAD_CLASSES[head])(cfg).eval()
    tok.model_max_length = cfg.max_position_embeddings
    _save(model, tok, folder, safe_serialization)
    return folder


def build_mt5(head: str = "seq2seq", seed: int = 0, tokenizer_dir: Path | None = None, **config):
    """(model, tokenizer) of a tiny mT5 (``seq2seq`` or ``encoder``); not saved."""
    from transformers import MT5Config, MT5EncoderModel, MT5ForConditionalGeneration

    tok = t5_tokenizer(tokenizer_dir) if tokenizer_dir else None
    size = len(tok) if tok is not None else 128
    base = dict(vocab_size=size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                relative_attention_num_buckets=8, dropout_rate=0.0,
                feed_forward_proj="gated-gelu", tie_word_embeddings=False, decoder_start_token_id=0,
                pad_token_id=0, eos_token_id=1)
    base.update(config)
    cfg = MT5Config(**base)
    torch.manual_seed(seed)
    cls = {"seq2seq": MT5ForConditionalGeneration, "encoder": MT5EncoderModel}[head]
    return cls(cfg).eval(), tok


def tiny_mt5(tmp_path: Path, head: str = "seq2seq", seed: int = 0, name: str | None = None,
             safe_serialization: bool = True, **config) -> Path:
    """A saved tiny mT5 (untied LM head, gated-GELU like the real mT5) with its tokenizer."""
    folder = Path(tmp_path) / (name or f"mt5-{head}-{seed}")
    model, tok = build_mt5(head, seed, tokenizer_dir=folder, **config)
    _save(model, tok, folder, safe_serialization)
    return folder


def _save(model, tok, folder: Path, safe_serialization: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if safe_serialization:
        model.save_pretrained(str(folder))
    else:  # transformers 5 always writes safetensors; write the legacy .bin layout by hand
        model.config.save_pretrained(str(folder))
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    tok.save_pretrained(str(folder))


def encode(tokenizer, texts=SAMPLE_TEXTS, pairs: bool = False) -> dict:
    """A padded batch of sample inputs (text pairs when ``pairs``)."""
    if pairs:
        return dict(tokenizer(list(texts), list(reversed(texts)), padding=True, return_tensors="pt"))
    return dict(tokenizer(list(texts), padding=True, return_tensors="pt"))


def outputs(model, batch: dict) -> torch.Tensor:
    """The tensor a head produces (logits; start/end stacked for QA; hidden states for
    an encoder; first-step logits for seq2seq), for comparing two loads of one model."""
    batch = dict(batch)
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False) and "decoder_input_ids" not in batch:
        start = model.config.decoder_start_token_id or 0
        batch["decoder_input_ids"] = torch.full((batch["input_ids"].shape[0], 1), start, dtype=torch.long)
    with torch.no_grad():
        out = model(**batch)
    if getattr(out, "logits", None) is not None:
        return out.logits
    if getattr(out, "start_logits", None) is not None:
        return torch.stack([out.start_logits, out.end_logits])
    return out.last_hidden_state
