"""Answer ``tag`` requests (UD-POS, PAN-X) with a token-classification head.

What XTREME does, and what we keep:

* **first sub-word**: a word's tag is the head's prediction on its first sub-word
  (``utils_tag.convert_examples_to_features`` labels only that position);
* **zero sub-words**: a word the tokenizer turns into nothing (``""``, U+200B, a
  control character) is replaced by the tokenizer's unknown token, as XTREME does,
  so it still gets a position and a prediction; a tokenizer without an unknown
  token is refused rather than guessing;
* **long sentences, as XTREME splits them** (``tag_split=official``, the default):
  ``utils_preprocess.py`` (udpos/panx tokenize, ``--max_len 128``) cuts a sentence of
  more than 126 sub-words (125 for XLM-R, whose inputs end ``</s></s>``) into
  consecutive, non-overlapping chunks of whole words, each encoded as its own
  sequence, and writes a word longer than that budget as the unknown token;
  ``run_tag.py`` re-joins the chunks' predictions in order. ``tag_split=windows``
  instead encodes up to the model's limit (512) in one window and splits longer
  sentences into overlapping windows of whole words (overlap up to ``stride``
  sub-words, at most half a window); each word then takes its prediction from the
  window where it has the most context (SQuAD's "max context" rule), and a word
  longer than a whole window keeps its first sub-words;
* **labels by name**: head outputs are mapped to the task's tag set through the
  checkpoint's ``id2label`` (see :func:`head_to_tagset`), so a head trained with a
  different label order, ``PER``/``PERSON`` spellings or BIOES/BILOU prefixes
  still scores correctly, and a head whose labels don't name the tags is refused;
* **outputs outside the task** (the ``O`` that ``utils_tag.get_labels`` adds to an
  XTREME UD-POS head): seen by the argmax as in ``run_tag.py`` (``tag_outputs=official``;
  such a prediction counts as wrong), or masked (``tag_outputs=mask``).

Windows of all sentences are sorted by length and padded per batch
(:mod:`harness_ext.adapters.runtime.batching`).
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from harness_ext.adapters.runtime.autobatch import plan_for
from harness_ext.adapters.runtime.batching import chunks, host_tensors, move, pad_columns
from harness_ext.adapters.runtime.pipeline import Wave, first_wave, overlap_enabled, plan_waves, run_waves
from harness_ext.adapters.runtime.settings import TAG_OUTPUT_MODES, TAG_SPLIT_MODES, AdapterSettings

log = logging.getLogger(__name__)

#: entity / POS type spellings found in public checkpoints -> the task's spelling
TYPE_ALIASES: dict[str, str] = {
    "PERSON": "PER", "PERS": "PER", "ORGANIZATION": "ORG", "ORGANISATION": "ORG", "LOCATION": "LOC",
    "CONJ": "CCONJ",  # UD v1 name of CCONJ
}
#: chunk prefixes of other schemes -> IOB2 (single/unit = begin, end/last = inside)
PREFIX_ALIASES: dict[str, str] = {"B": "B", "I": "I", "S": "B", "U": "B", "E": "I", "L": "I"}
_GENERIC = re.compile(r"LABEL_\d+", re.IGNORECASE)
_PREFIXED = re.compile(r"([BIESUL])[-_](.+)")
_SUFFIXED = re.compile(r"(.+)[-_]([BIESUL])")
#: model types whose position ids start after the padding index (usable = max_position_embeddings - pad - 1)
#: utils_preprocess.py / run_tag.py ``--max_len`` / ``--max_seq_length``
OFFICIAL_MAX_LENGTH = 128
#: windows tokenised per batched tokenizer call (bounds memory on 100k-sentence corpora)
TOKENIZE_CHUNK = 2048
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text"}


#: (config path, unused labels) already logged: a run calls the adapter once per language
_WARNED: set[tuple[str, tuple[str, ...]]] = set()


class LabelMismatchError(ValueError):
    """The checkpoint's head labels don't name the task's tags."""


def _config_path(loaded: Any) -> str:
    source = getattr(loaded, "source", None)
    return f"{source}/config.json" if source else "the checkpoint's config.json"


def canonical_tag(name: str) -> str:
    """One spelling per tag: upper case, IOB2 ``B-``/``I-`` prefix, aliased type names."""
    text = name.strip().upper()
    if text == "O":
        return "O"
    match = _PREFIXED.fullmatch(text) or None
    prefix, type_ = (match.group(1), match.group(2)) if match else (None, text)
    if match is None:
        suffixed = _SUFFIXED.fullmatch(text)
        if suffixed and len(suffixed.group(1)) > 1:
            prefix, type_ = suffixed.group(2), suffixed.group(1)
    type_ = TYPE_ALIASES.get(type_, type_)
    return f"{PREFIX_ALIASES[prefix]}-{type_}" if prefix else type_


def head_to_tagset(loaded: Any, tagset: Sequence[str]) -> list[int | None]:
    """For each head output index, the index in ``tagset`` it predicts (None: outside the task).

    Refused (:class:`LabelMismatchError`, naming config.json and the fix): generic
    ``LABEL_<n>`` names, or a head that cannot predict some tag of the task (it was
    trained on another tag set). Head labels outside the task (the ``O`` of XTREME's UD-POS
    heads, CoNLL's ``MISC``) are allowed and logged; their index maps to None.
    """
    config = loaded.model.config
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    n_out = getattr(config, "num_labels", len(id2label))
    names = [id2label.get(i, f"LABEL_{i}") for i in range(n_out)]
    example = {str(i): tag for i, tag in enumerate(tagset)}
    fix = (
        f"Fix: set \"id2label\" (and \"label2id\") in {_config_path(loaded)} to the tag names the head was "
        f"trained with, in its output order, e.g. \"id2label\": {example} (or give those names as the "
        f"checkpoint's `labels:` in checkpoints.yaml)"
    )
    if not names or all(_GENERIC.fullmatch(n.strip()) for n in names):
        raise LabelMismatchError(
            f"{_config_path(loaded)}: the token-classification head has generic labels "
            f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}), so its outputs cannot be matched to the "
            f"task's tags ({' '.join(tagset)}) by name. {fix}"
        )
    wanted = {canonical_tag(tag): j for j, tag in enumerate(tagset)}
    mapping = [wanted.get(canonical_tag(name)) for name in names]
    missing = [tag for j, tag in enumerate(tagset) if j not in mapping]
    if missing:
        raise LabelMismatchError(
            f"{_config_path(loaded)}: the head never predicts {missing} of the task's tags ({' '.join(tagset)}); "
            f"its id2label is {dict(enumerate(names))}. Use a checkpoint fine-tuned on this task's tag set, "
            f"or, if its labels are only spelled differently, {fix[5:]}"
        )
    unused = [name for name, j in zip(names, mapping) if j is None]
    key = (_config_path(loaded), tuple(unused))
    if unused and key not in _WARNED:
        _WARNED.add(key)
        log.warning("%s: head labels %s are not tags of this task: where the argmax picks one the word counts as "
                    "wrong, as in run_tag.py (tag_outputs=mask never predicts them)", _config_path(loaded), unused)
    return mapping


# ------------------------------------------------------------------ windows
def plan_windows(lengths: Sequence[int], capacity: int, overlap: int) -> list[tuple[int, int]]:
    """Word ranges ``[start, end)`` covering every word; each fits ``capacity`` sub-words.

    Consecutive windows share whole words worth at most ``overlap`` sub-words. A
    word longer than ``capacity`` gets a window of its own (cut later by the
    tokenizer after its first sub-words).
    """
    if capacity < 1:
        raise ValueError(f"window capacity {capacity} leaves no room for words")
    n = len(lengths)
    windows: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end, used = start, 0
        while end < n and (end == start or used + lengths[end] <= capacity):
            used += lengths[end]
            end += 1
        windows.append((start, end))
        if end >= n:
            break
        # next window: the earliest start after this one whose shared words fit the overlap
        # and still leave room for the first new word
        next_start, shared = end, 0
        while next_start - 1 > start:
            candidate = shared + lengths[next_start - 1]
            if candidate > overlap or candidate + lengths[end] > capacity:
                break
            shared = candidate
            next_start -= 1
        start = next_start
    return windows


def official_chunks(lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """XTREME's ``utils_preprocess.py`` (udpos/panx ``_tokenize``): consecutive, non-overlapping word
    ranges of at most ``budget`` sub-words; a word that does not fit starts the next chunk. (Words
    longer than ``budget`` must already count 1: the official code replaces them by the unknown token.)"""
    chunks_: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, n in enumerate(lengths):
        if used + n > budget and i > start:
            chunks_.append((start, i))
            start, used = i, 0
        used += n
    if lengths:
        chunks_.append((start, len(lengths)))
    return chunks_


def best_windows(windows: Sequence[tuple[int, int]], lengths: Sequence[int]) -> list[int]:
    """For each word, the window (index) where it has the most context on both sides."""
    n = windows[-1][1] if windows else 0
    best = [-1] * n
    score = [-1.0] * n
    for w, (start, end) in enumerate(windows):
        total = sum(lengths[start:end])
        left = 0
        for i in range(start, end):
            right = total - left - lengths[i]
            value = min(left, right) + 0.01 * total
            if value > score[i]:
                best[i], score[i] = w, value
            left += lengths[i]
    return best


# ------------------------------------------------------------------ model limits
def window_length(loaded: Any, settings: AdapterSettings) -> int:
    """Sub-words per window, special tokens included: the setting, capped by the model's positions."""
    config = loaded.model.config
    limits = [512]
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
            positions -= (getattr(config, "pad_token_id", 1) or 0) + 1
        limits.append(int(positions))
    model_max = getattr(loaded.tokenizer, "model_max_length", None)
    if model_max and model_max < 100_000:
        limits.append(int(model_max))
    limit = min(limits)
    if settings.max_length is None:
        return limit
    if settings.max_length > limit:
        log.warning("max_length=%d is beyond what %s accepts; using %d", settings.max_length, loaded.source, limit)
        return limit
    return settings.max_length


def _special_count(tokenizer) -> int:
    try:
        return int(tokenizer.num_special_tokens_to_add(pair=False))
    except (AttributeError, NotImplementedError):
        return len(tokenizer([], is_split_into_words=True)["input_ids"])


# ------------------------------------------------------------------ answering
@dataclass
class _Window:
    sentence: int
    start: int
    end: int
    features: dict
    #: token position of each window word's first sub-word
    positions: list[int]


@dataclass
class _Words:
    """Every sentence tokenised once, word by word, without special tokens."""

    #: per sentence: sub-words per word
    lengths: list[list[int]]
    #: per sentence: the sub-word ids of all its words, in order
    ids: list[list[int]]
    #: per sentence: index into ``ids`` where each word starts (one more entry than words)
    starts: list[list[int]]


def _encode_words(tokenizer, sentences: list[list[str]]) -> _Words:
    """Tokenise every sentence once (batched Rust calls); zero-sub-word words are replaced by
    the unknown token in place (as XTREME does) and their sentences tokenised again."""
    n = len(sentences)
    words = _Words([[] for _ in range(n)], [[] for _ in range(n)], [[0] for _ in range(n)])

    def encode(indices: list[int]) -> list[int]:
        """Fill ``words`` for ``indices``; return those with a zero-sub-word word."""
        with_empty = []
        for chunk in chunks(indices, TOKENIZE_CHUNK):
            enc = tokenizer([sentences[s] for s in chunk], is_split_into_words=True, add_special_tokens=False,
                            verbose=False)  # long sentences are cut into word windows below
            for row, s in enumerate(chunk):
                counts = [0] * len(sentences[s])
                for word_id in enc.word_ids(row):
                    if word_id is not None:
                        counts[word_id] += 1
                starts = [0] * (len(counts) + 1)
                for i, c in enumerate(counts):
                    starts[i + 1] = starts[i] + c
                words.lengths[s], words.ids[s], words.starts[s] = counts, enc["input_ids"][row], starts
                if 0 in counts:
                    with_empty.append(s)
        return with_empty

    redo = encode([s for s in range(n) if sentences[s]])
    if redo:
        unk = getattr(tokenizer, "unk_token", None)
        for s in redo:
            empty = [i for i, c in enumerate(words.lengths[s]) if c == 0]
            if unk is None:
                raise ValueError(
                    f"words {[sentences[s][i] for i in empty]!r} give no sub-words and the tokenizer has no unknown "
                    f"token to stand in for them"
                )
            for i in empty:
                sentences[s][i] = unk
        if encode(redo):
            raise ValueError(f"the tokenizer's unknown token {unk!r} itself gives no sub-words")
    return words


def replace_long_words(tokenizer, sentences: list[list[str]], words: _Words, budget: int) -> None:
    """Words of more than ``budget`` sub-words become the unknown token (one sub-word), in place, as
    XTREME's preprocessing writes them (``--max_len 128``: 126 sub-words, 125 for XLM-R)."""
    unk_id = getattr(tokenizer, "unk_token_id", None)
    for s, counts in enumerate(words.lengths):
        long = [i for i, c in enumerate(counts) if c > budget]
        if not long:
            continue
        if unk_id is None:
            raise ValueError(f"words {[sentences[s][i] for i in long]!r} are longer than {budget} sub-words and the "
                             f"tokenizer has no unknown token to stand in for them (set tag_split=windows)")
        ids, starts = words.ids[s], words.starts[s]
        new_ids: list[int] = []
        for i, c in enumerate(counts):
            new_ids.extend([unk_id] if c > budget else ids[starts[i] : starts[i + 1]])
        for i in long:
            sentences[s][i] = tokenizer.unk_token
            counts[i] = 1
        words.ids[s] = new_ids
        words.starts[s] = [0, *itertools.accumulate(counts)]


def subword_lengths(tokenizer, sentences: list[list[str]]) -> list[list[int]]:
    """Sub-words per word (no special tokens), with zero-sub-word words replaced by the unknown token in place."""
    return _encode_words(tokenizer, sentences).lengths


@dataclass(frozen=True)
class _Template:
    """Special tokens around one sequence (``[CLS] words [SEP]``, ``<s> words </s>``), read from the tokenizer."""

    prefix: list[int]
    suffix: list[int]
    #: token type ids of prefix, words and suffix (None: the tokenizer returns no token_type_ids)
    types: tuple[list[int], int, list[int]] | None


def _template(tokenizer) -> _Template | None:
    """The single-sequence template, or None when it cannot be read (the windows are then tokenised as text)."""
    if getattr(tokenizer, "truncation_side", "right") != "right":
        return None
    probe = next((w for w in ("a", getattr(tokenizer, "unk_token", None)) if w), None)
    if probe is None:
        return None
    enc = tokenizer([[probe]], is_split_into_words=True)
    word_ids, ids = enc.word_ids(0), enc["input_ids"][0]
    inside = [i for i, w in enumerate(word_ids) if w is not None]
    if not inside or inside != list(range(inside[0], inside[-1] + 1)):
        return None
    first, last = inside[0], inside[-1]
    if first + len(ids) - last - 1 != _special_count(tokenizer):
        return None
    types = None
    if "token_type_ids" in enc:
        t = enc["token_type_ids"][0]
        if len(set(t[first : last + 1])) != 1:
            return None
        types = (list(t[:first]), int(t[first]), list(t[last + 1 :]))
    return _Template(list(ids[:first]), list(ids[last + 1 :]), types)


def extra_separator(tokenizer) -> bool:
    """run_tag.py's ``sep_token_extra`` (RoBERTa/XLM-R: ``<s> words </s></s>``): the tokenizer puts two
    separators between a pair, so its tag inputs end with two."""
    try:
        return tokenizer.num_special_tokens_to_add(pair=True) - tokenizer.num_special_tokens_to_add(pair=False) == 2
    except (AttributeError, NotImplementedError):
        return False


def _make_windows(tokenizer, sentences, words: _Words, max_length: int, overlap: int,
                  official: bool = False) -> list[_Window]:
    """Plan every sentence's windows and cut their token ids from the one tokenisation of the sentence.

    ``official``: XTREME's chunks (:func:`official_chunks`, over-long words as the unknown token, an
    extra separator for RoBERTa-style tokenizers); otherwise overlapping windows (:func:`plan_windows`)."""
    extra = [tokenizer.sep_token_id] if official and extra_separator(tokenizer) else []
    capacity = max_length - _special_count(tokenizer) - len(extra)
    if official:
        replace_long_words(tokenizer, sentences, words, capacity)
        spans = [(s, start, end) for s, sentence in enumerate(sentences) if sentence
                 for start, end in official_chunks(words.lengths[s], capacity)]
    else:
        spans = [(s, start, end) for s, sentence in enumerate(sentences) if sentence
                 for start, end in plan_windows(words.lengths[s], capacity, overlap)]
    template = _template(tokenizer)
    if template is None:
        return _tokenise_windows(tokenizer, sentences, spans, max_length)
    head = len(template.prefix)
    windows: list[_Window] = []
    for s, start, end in spans:
        word_starts = words.starts[s]
        a, b = word_starts[start], word_starts[end]
        body = words.ids[s][a : min(b, a + capacity)]  # a word longer than the window keeps its first sub-words
        positions = [head + word_starts[i] - a for i in range(start, end)]
        if positions[-1] >= head + len(body):
            lost = [sentences[s][i] for i in range(start, end) if head + word_starts[i] - a >= head + len(body)]
            raise RuntimeError(f"window of sentence {s} lost words {lost!r} to truncation (window planning bug)")
        features = {"input_ids": template.prefix + body + template.suffix + extra}
        if template.types is not None:
            before, inner, after = template.types
            features["token_type_ids"] = before + [inner] * len(body) + after + after[-1:] * len(extra)
        windows.append(_Window(s, start, end, features, positions))
    return windows


def _tokenise_windows(tokenizer, sentences, spans, max_length: int) -> list[_Window]:
    """Tokenise every window's words as text (for tokenizers whose template :func:`_template` cannot read)."""
    windows: list[_Window] = []
    for chunk in chunks(spans, TOKENIZE_CHUNK):
        enc = tokenizer([sentences[s][start:end] for s, start, end in chunk],
                        is_split_into_words=True, truncation=True, max_length=max_length)
        for row, (s, start, end) in enumerate(chunk):
            positions: list[int | None] = [None] * (end - start)
            for pos, word_id in enumerate(enc.word_ids(row)):
                if word_id is not None and positions[word_id] is None:
                    positions[word_id] = pos
            if any(p is None for p in positions):
                lost = [sentences[s][start + i] for i, p in enumerate(positions) if p is None]
                raise RuntimeError(f"window of sentence {s} lost words {lost!r} to truncation (window planning bug)")
            features = {k: enc[k][row] for k in ("input_ids", "token_type_ids") if k in enc}
            windows.append(_Window(s, start, end, features, positions))  # type: ignore[arg-type]
    return windows


def tag_split_mode(settings: AdapterSettings) -> str:
    if settings.tag_split not in TAG_SPLIT_MODES:
        raise ValueError(f"tag_split={settings.tag_split!r}: use one of {', '.join(TAG_SPLIT_MODES)}")
    return settings.tag_split


def tag_outputs_mode(settings: AdapterSettings) -> str:
    if settings.tag_outputs not in TAG_OUTPUT_MODES:
        raise ValueError(f"tag_outputs={settings.tag_outputs!r}: use one of {', '.join(TAG_OUTPUT_MODES)}")
    return settings.tag_outputs


def head_labels(loaded: Any) -> list[str]:
    """The head's label name per output (``LABEL_<n>`` where config.json names none)."""
    config = loaded.model.config
    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    return [id2label.get(i, f"LABEL_{i}") for i in range(int(getattr(config, "num_labels", len(id2label))))]


def answer(loaded: Any, requests: list, settings: AdapterSettings) -> list[list[str]]:
    """One tag per word for every request (``args = (text, words, tagset)``)."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{loaded.source}: tagging needs a fast tokenizer (word_ids); found {type(tokenizer).__name__}")
    plan = plan_for(loaded, settings)
    # on an accelerator, waves of sentences sorted by characters (pipeline.WavePlan): tight padding, early start
    waves_plan = plan_waves([sum(map(len, r.args[1])) + len(r.args[1]) for r in requests], first_wave(plan), settings,
                            settings.device)
    requests = waves_plan.arrange(requests)
    tagsets = [tuple(r.args[2]) for r in requests]
    mappings = {tagset: head_to_tagset(loaded, tagset) for tagset in set(tagsets)}
    sentences = [list(r.args[1]) for r in requests]
    official = tag_split_mode(settings) == "official"
    if official:  # XTREME's --max_len 128 unless max_length says otherwise
        max_length = window_length(loaded, replace(settings, max_length=settings.max_length or OFFICIAL_MAX_LENGTH))
    else:
        max_length = window_length(loaded, settings)
    capacity = max_length - _special_count(tokenizer)
    overlap = min(settings.stride, capacity // 2)

    def encode(lo: int, hi: int) -> Wave:  # encoding worker: the only tokenisation; windows are cut from it
        part = sentences[lo:hi]  # the word lists themselves are shared: unknown-token stand-ins land in place
        words = _encode_words(tokenizer, part)
        windows = _make_windows(tokenizer, part, words, max_length, overlap, official)
        by_sentence: dict[int, list[int]] = {}
        for index, window in enumerate(windows):
            window.sentence += lo
            by_sentence.setdefault(window.sentence, []).append(index)
        return Wave(windows, [len(w.features["input_ids"]) for w in windows], (words.lengths, by_sentence))

    device = next(model.parameters()).device
    n_out = int(model.config.num_labels)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tagset_list = sorted(mappings, key=str)
    tagset_index = {tagset: k for k, tagset in enumerate(tagset_list)}
    # per tagset: head outputs outside the task (masked with tag_outputs=mask; with the official argmax
    # they can win, e.g. the O that XTREME's UD-POS heads have, and then count as wrong), head output -> tag
    masked = tag_outputs_mode(settings) == "mask"
    blocked = torch.tensor([[masked and m is None for m in mappings[t]] for t in tagset_list], dtype=torch.bool)
    head_names = head_labels(loaded)
    to_tag = [np.asarray([t[m] if m is not None else head_names[k] for k, m in enumerate(mappings[t])], dtype=object)
              for t in tagset_list]
    blocked_on_device = blocked.to(device) if blocked.any() else None

    def prepare(batch: list[_Window]) -> tuple[dict, Any, Any, Any]:  # worker thread
        # numpy padding: tokenizer.pad spent ~0.15 s per 1000 UD sentences converting lists (bench_adapters)
        columns = {k: [w.features[k] for w in batch] for k in batch[0].features}
        inputs = host_tensors(pad_columns(columns, range(len(batch)), {"input_ids": pad_id}), device)
        counts = [len(w.positions) for w in batch]
        # one gather for the whole batch: (row, position) of every window word's first sub-word
        index = host_tensors({
            "row": np.repeat(np.arange(len(batch)), counts),
            "position": np.fromiter(itertools.chain.from_iterable(w.positions for w in batch), np.int64, sum(counts)),
            "tagset": np.repeat([tagset_index[tagsets[w.sentence]] for w in batch], counts).astype(np.int64),
        }, device)
        return inputs, index, counts, [tagset_index[tagsets[w.sentence]] for w in batch]

    def forward(prepared: tuple) -> tuple[Any, list[int], list[int]]:  # calling thread
        inputs, index, counts, kinds = prepared
        logits = model(**move(inputs, device)).logits
        if logits.shape[-1] != n_out:
            raise ValueError(f"{_config_path(loaded)}: head has {logits.shape[-1]} outputs but num_labels={n_out}")
        index = move(index, device)
        scores = logits[index["row"], index["position"]].float()
        if blocked_on_device is not None:
            scores = scores.masked_fill(blocked_on_device[index["tagset"]], float("-inf"))
        return scores.argmax(dim=-1), counts, kinds

    def finish(rows: list[_Window], result: tuple) -> list[list[str]]:  # worker thread: one device sync per batch
        best, counts, kinds = result
        flat = best.cpu().numpy()
        bounds = np.cumsum([0, *counts])
        return [to_tag[kinds[k]][flat[bounds[k] : bounds[k + 1]]].tolist() for k in range(len(rows))]

    bounds = waves_plan.bounds
    waves = run_waves(bounds, encode, plan, forward, prepare=prepare, finish=finish,
                      overlap=overlap_enabled(settings), desc="tag", progress=len(sentences) > plan.batch_size)
    responses: list[list[str]] = []
    for (lo, hi), (wave, window_tags) in zip(bounds, waves):
        windows, (lengths, by_sentence) = wave.items, wave.extra
        for s in range(lo, hi):
            own = by_sentence.get(s, [])
            if len(own) == 1:  # the common case: one window holds the whole sentence
                responses.append(window_tags[own[0]])
                continue
            choice = best_windows([(windows[i].start, windows[i].end) for i in own], lengths[s - lo]) if own else []
            tags = []
            for word in range(len(sentences[s])):
                window = windows[own[choice[word]]]
                tags.append(window_tags[own[choice[word]]][word - window.start])
            responses.append(tags)
    return waves_plan.restore(responses)
