"""The ``tag`` adapter: first sub-word labels, windows that never drop a word, head labels by name."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.tiny_models import PANX_LABELS, tiny_xlmr  # noqa: E402

from harness_ext.adapters.encoder import tag  # noqa: E402
from harness_ext.adapters.runtime.settings import AdapterSettings  # noqa: E402
from harness_ext.backends.base import LoadedCheckpoint  # noqa: E402
from harness_ext.requests import make_instance, tag_args  # noqa: E402
from xtreme_tasks.table import PANX_TAGS, UPOS_TAGS  # noqa: E402

WORDS = ("John Smith lives in Paris and works for Google in Berlin , where the quick brown fox "
         "jumps over the lazy dog every morning before breakfast .").split()


def requests_for(sentences, tagset=PANX_TAGS):
    return [make_instance("tag", {}, tag_args(list(words), tagset), (f"t-{i}", i, 1), idx=0)
            for i, words in enumerate(sentences)]


def fake_loaded(id2label: dict[int, str], source: str = "/ckpt/tagger") -> SimpleNamespace:
    config = SimpleNamespace(id2label=id2label, num_labels=len(id2label))
    return SimpleNamespace(model=SimpleNamespace(config=config), source=source)


# ------------------------------------------------------------------ labels by name
def test_other_label_order_maps_by_name():
    order = ["I-LOC", "O", "B-ORG", "B-PER", "I-ORG", "B-LOC", "I-PER"]
    mapping = tag.head_to_tagset(fake_loaded(dict(enumerate(order))), PANX_TAGS)
    assert [PANX_TAGS[j] for j in mapping] == order


@pytest.mark.parametrize(
    "names, expected",
    [
        (["o", "b-per", "i-per", "b-org", "i-org", "b-loc", "i-loc"], list(PANX_TAGS)),  # case
        (["O", "B_PER", "I_PER", "B_ORG", "I_ORG", "B_LOC", "I_LOC"], list(PANX_TAGS)),  # underscores
        (["O", "B-PERSON", "I-PERSON", "B-ORGANIZATION", "I-ORGANIZATION", "B-LOCATION", "I-LOCATION"],
         list(PANX_TAGS)),
        (["O", "PER-B", "PER-I", "ORG-B", "ORG-I", "LOC-B", "LOC-I"], list(PANX_TAGS)),  # suffix style
        # BIOES / BILOU: single -> B, end -> I
        (["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-ORG", "I-ORG", "L-ORG", "U-ORG", "B-LOC", "I-LOC"],
         ["O", "B-PER", "I-PER", "I-PER", "B-PER", "B-ORG", "I-ORG", "I-ORG", "B-ORG", "B-LOC", "I-LOC"]),
    ],
)
def test_label_spellings_and_schemes(names, expected):
    mapping = tag.head_to_tagset(fake_loaded(dict(enumerate(names))), PANX_TAGS)
    assert [PANX_TAGS[j] for j in mapping] == expected


def test_ud_v1_conj_is_cconj():
    names = [t if t != "CCONJ" else "CONJ" for t in reversed(UPOS_TAGS)]
    mapping = tag.head_to_tagset(fake_loaded(dict(enumerate(names))), UPOS_TAGS)
    assert [UPOS_TAGS[j] for j in mapping] == list(reversed(UPOS_TAGS))


def test_labels_outside_the_task_are_logged(caplog):
    conll = ["O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    with caplog.at_level(logging.WARNING, logger="harness_ext.adapters.encoder.tag"):
        mapping = tag.head_to_tagset(fake_loaded(dict(enumerate(conll))), PANX_TAGS)
    assert mapping[1] is None and mapping[2] is None
    assert "B-MISC" in caplog.text and "tag_outputs=mask" in caplog.text


def test_generic_labels_are_refused_with_the_fix():
    loaded = fake_loaded({i: f"LABEL_{i}" for i in range(7)}, source="/models/my-ner")
    with pytest.raises(tag.LabelMismatchError) as err:
        tag.head_to_tagset(loaded, PANX_TAGS)
    message = str(err.value)
    assert "/models/my-ner/config.json" in message and "generic labels" in message
    assert '"id2label"' in message and "'1': 'B-PER'" in message


def test_head_for_another_tag_set_is_refused():
    loaded = fake_loaded(PANX_LABELS, source="/models/ner")
    with pytest.raises(tag.LabelMismatchError, match=r"/models/ner/config.json: the head never predicts \['ADJ'"):
        tag.head_to_tagset(loaded, UPOS_TAGS)


# ------------------------------------------------------------------ window planning
@pytest.mark.parametrize("lengths, capacity, overlap", [
    ([1] * 50, 10, 4), ([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5] * 4, 12, 5), ([2] * 7, 100, 50),
    ([1, 30, 1, 1, 2, 25, 1], 8, 3), ([5] * 9, 5, 2),
])
def test_windows_cover_every_word_and_fit(lengths, capacity, overlap):
    windows = tag.plan_windows(lengths, capacity, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == len(lengths)
    for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
        assert s1 < s2 <= e1 < e2  # progress, no gap
        assert sum(lengths[s2:e1]) <= overlap
    for start, end in windows:
        assert end - start == 1 or sum(lengths[start:end]) <= capacity
    choice = tag.best_windows(windows, lengths)
    assert all(windows[w][0] <= i < windows[w][1] for i, w in enumerate(choice))


def test_a_word_gets_the_window_where_it_has_most_context():
    windows = tag.plan_windows([1] * 20, 10, 5)
    assert windows[:2] == [(0, 10), (5, 15)]
    choice = tag.best_windows(windows, [1] * 20)
    # word 6: min(left, right) context is 3 in window 0 and 1 in window 1; word 8: 1 vs 3
    assert (choice[6], choice[8], choice[9]) == (0, 1, 1)
    assert choice[0] == 0 and choice[19] == len(windows) - 1


# ------------------------------------------------------------------ answering, with a context-free model
class TokenLookup(torch.nn.Module):
    """Logits depend only on the token id: windowed answers must equal unsplit ones exactly."""

    def __init__(self, vocab_size: int, id2label: dict[int, str]) -> None:
        super().__init__()
        from transformers import PretrainedConfig

        generator = torch.Generator().manual_seed(0)
        self.table = torch.nn.Parameter(torch.randn(vocab_size, len(id2label), generator=generator))
        self.config = PretrainedConfig(id2label=id2label, max_position_embeddings=512)

    def forward(self, input_ids, attention_mask=None, **_):
        return SimpleNamespace(logits=self.table[input_ids])


@pytest.fixture(scope="module")
def lookup(minilm_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    id2label = dict(enumerate(reversed(PANX_TAGS)))
    model = TokenLookup(len(tokenizer), id2label)
    return LoadedCheckpoint(model=model, tokenizer=tokenizer, source="lookup", backend="test", head="token-classification")


def first_subword_tags(loaded, words) -> list[str]:
    """Independent expectation: the label of each word's first sub-word, looked up directly."""
    tokenizer = loaded.tokenizer
    tags = []
    for word in words:
        ids = tokenizer(word, add_special_tokens=False)["input_ids"] or [tokenizer.unk_token_id]
        tags.append(loaded.model.config.id2label[int(loaded.model.table[ids[0]].argmax())])
    return tags


@pytest.mark.parametrize("max_length, stride", [(None, 128), (12, 4), (7, 100), (5, 1)])
def test_windows_keep_every_word_and_use_the_first_subword(lookup, max_length, stride):
    sentences = [WORDS, WORDS[:3], ["unbelievably", "Ouagadougou", "x"], WORDS * 3]
    settings = AdapterSettings(max_length=max_length, stride=stride, batch_size=3, tag_split="windows")
    answers = tag.answer(lookup, requests_for(sentences), settings)
    assert [len(a) for a in answers] == [len(s) for s in sentences]
    assert answers == [first_subword_tags(lookup, s) for s in sentences]


def test_words_with_no_subwords_fall_back_to_the_unknown_token(lookup):
    words = ["Paris", "\u200b", "", "Berlin"]
    assert lookup.tokenizer("\u200b", add_special_tokens=False)["input_ids"] == []
    (answer,) = tag.answer(lookup, requests_for([words]), AdapterSettings())
    unk = lookup.model.config.id2label[int(lookup.model.table[lookup.tokenizer.unk_token_id].argmax())]
    assert answer == [first_subword_tags(lookup, ["Paris"])[0], unk, unk, first_subword_tags(lookup, ["Berlin"])[0]]


def test_a_word_longer_than_the_window_is_still_tagged(lookup):
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 2  # < 100 characters: not [UNK]
    words = ["a", long_word, "b"]
    assert len(lookup.tokenizer(long_word, add_special_tokens=False)["input_ids"]) > 8
    (answer,) = tag.answer(lookup, requests_for([words]), AdapterSettings(max_length=8, stride=2, tag_split="windows"))
    assert answer == first_subword_tags(lookup, words)
    # official: a word longer than the chunk's budget (8 - 2 special tokens) is tagged as the unknown token
    (official,) = tag.answer(lookup, requests_for([words]), AdapterSettings(max_length=8))
    assert official == first_subword_tags(lookup, ["a", lookup.tokenizer.unk_token, "b"])


# ------------------------------------------------------------------ answering, with a real (tiny) transformer
def direct_tags(loaded, words: list[str]) -> list[str]:
    """The unsplit prediction: one forward pass over the whole sentence, first sub-word, id2label."""
    encoding = loaded.tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        logits = loaded.model(**encoding).logits[0]
    firsts = {}
    for position, word_id in enumerate(encoding.word_ids()):
        if word_id is not None:
            firsts.setdefault(word_id, position)
    return [loaded.model.config.id2label[int(logits[firsts[i]].argmax())] for i in range(len(words))]


@pytest.fixture(scope="module")
def tiny_tagger(tmp_path_factory):
    from harness_ext.backends import load_checkpoint

    shuffled = dict(enumerate(["B-LOC", "O", "I-PER", "B-ORG", "I-LOC", "B-PER", "I-ORG"]))
    path = tiny_xlmr(tmp_path_factory.mktemp("ckpt"), head="token-classification", id2label=shuffled, seed=3)
    return load_checkpoint(str(path), "token-classification")


def test_large_window_matches_the_unsplit_prediction(tiny_tagger):
    sentences = [WORDS[:12], WORDS[:4], ["Paris"]]
    assert all(len(tiny_tagger.tokenizer(s, is_split_into_words=True)["input_ids"]) <= 64 for s in sentences)
    answers = tag.answer(tiny_tagger, requests_for(sentences), AdapterSettings(batch_size=2, tag_split="windows"))
    assert answers == [direct_tags(tiny_tagger, s) for s in sentences]


def test_sentence_longer_than_the_model_keeps_every_word(tiny_tagger):
    long_sentence = WORDS * 4  # far beyond the tiny model's 64 positions
    n_subwords = len(tiny_tagger.tokenizer(long_sentence, is_split_into_words=True)["input_ids"])
    assert n_subwords > 64
    for split in ("official", "windows"):
        (answer,) = tag.answer(tiny_tagger, requests_for([long_sentence]), AdapterSettings(stride=16, tag_split=split))
        assert len(answer) == len(long_sentence) and set(answer) <= set(PANX_TAGS)
    # the first window is the plain forward pass over the words that fit it
    head = long_sentence[:10]
    (short,) = tag.answer(tiny_tagger, requests_for([head]), AdapterSettings(tag_split="windows"))
    assert short == direct_tags(tiny_tagger, head)


def test_window_length_respects_the_model_positions(tiny_tagger):
    assert tag.window_length(tiny_tagger, AdapterSettings()) == 64  # 66 positions - XLM-R's offset of 2
    assert tag.window_length(tiny_tagger, AdapterSettings(max_length=32)) == 32
    assert tag.window_length(tiny_tagger, AdapterSettings(max_length=4096)) == 64
