"""Tiny random decoder LLMs (GPT-2-style and Llama-style) written offline for tests.

The tokenizer is a byte-level BPE trained on the fly (every script is covered by its
byte alphabet, so XQuAD's Chinese or Thai never meets an unknown token), saved as a
``GPT2TokenizerFast`` with ``<|endoftext|>`` as bos/eos/pad so lm-eval's ``HFLM``
accepts it, and a minimal chat template so ``--apply_chat_template`` can be tested.
Weights come from a fixed seed: the same call gives the same model.
"""

from __future__ import annotations

import functools
from pathlib import Path

EOS = "<|endoftext|>"
#: a minimal chat template (no hub download): role tags, then the assistant turn
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
_CORPUS = (
    "Premise: Hypothesis: Answer: entailment neutral contradiction yes no Sentence: Tagged: Entities: "
    "Context: Question: NOUN VERB DET ADJ ADP PROPN PUNCT PRON AUX ADV CCONJ NUM PART SCONJ SYM INTJ X "
    "PER ORG LOC none the a of and in to is was for on that with as by at from John Mary Paris Berlin "
    "der die das und ist le la les et est el los y es il di che è это и в на 的 是 在 了 和 ที่ และ ใน "
)


@functools.lru_cache(maxsize=None)
def _tokenizer_files() -> dict[str, str]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([_CORPUS] * 20, trainer=trainer)
    return {"tokenizer.json": tok.to_str()}


def decoder_tokenizer(folder: Path):
    """A GPT-2 style fast tokenizer saved in ``folder`` (bos = eos = pad = ``<|endoftext|>``)."""
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "_raw_tokenizer.json"
    raw.write_text(_tokenizer_files()["tokenizer.json"], encoding="utf-8")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(raw), bos_token=EOS, eos_token=EOS, pad_token=EOS,
                                  unk_token=EOS, model_max_length=4096)
    tok.chat_template = CHAT_TEMPLATE
    raw.unlink()
    return tok


def tiny_decoder(folder: Path, arch: str = "gpt2", seed: int = 0) -> Path:
    """Write a tiny random causal LM (``arch``: ``gpt2`` or ``llama``) with its tokenizer; return the folder."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    tok = decoder_tokenizer(folder)
    eos = tok.convert_tokens_to_ids(EOS)
    common = dict(vocab_size=len(tok), bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    if arch == "gpt2":
        config = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=4096, resid_pdrop=0.0, embd_pdrop=0.0,
                            attn_pdrop=0.0, **common)
    elif arch == "llama":
        config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                             num_key_value_heads=2, max_position_embeddings=4096, **common)
    else:
        raise ValueError(f"arch {arch!r}: expected gpt2 or llama")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
