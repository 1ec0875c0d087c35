"""Answer ``extract_span`` requests with a question-answering head.

The decoding follows the official XTREME/SQuAD v1.1 evaluation
(``third_party/run_squad.py`` -> ``compute_predictions_logits``), because the
benchmark's numbers depend on it:

* a context longer than the window is split into overlapping windows of
  ``max_length`` tokens (default 384) whose starts are ``settings.stride`` context
  tokens apart: for QA the setting means run_squad's ``doc_stride`` (default 128,
  a STEP, so neighbours share ``window - 128`` tokens); the question is cut to
  ``max_query_length`` = 64 tokens first, as there;
* in every window the ``n_best`` (20) highest start and end logits are paired;
  a pair counts when both ends lie in the context part, ``end >= start``, it is at
  most ``max_answer_length`` tokens long and the start token has its *maximum
  context* in this window (a token seen by two windows is only trusted where it has
  more text on both sides); the best ``start + end`` logit sum over ALL windows wins;
* the answer text is recovered as ``compute_predictions_logits`` recovers it
  (``answer_text.py``: detokenised sub-words projected onto the whole words they
  come from, else those whole words); ``answer_text=offsets`` cuts the ORIGINAL
  context at the sub-words' character offsets instead (always a substring).

Differences from the official code, on purpose (docs/official_pipeline.md): when no
pair is valid we answer ``""`` (official: the literal string ``"empty"``; both score
0), and top-n is taken over real tokens only (the official code pads every window to
384 tokens and ranks the padding too, then discards it: a padded position can only
take one of the 20 places, never win); a ``stride`` larger than a window's context part
steps by the window instead of skipping the tokens in between.

Windows of many questions are batched together, longest first, padded per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from harness_ext.adapters.encoder.answer_text import OfficialText
from harness_ext.adapters.encoder.pairs import PairTemplate, pair_template
from harness_ext.adapters.runtime.autobatch import plan_for
from harness_ext.adapters.runtime.batching import host_tensors, move, pad_columns
from harness_ext.adapters.runtime.pipeline import Wave, first_wave, overlap_enabled, plan_waves, run_pipelined, run_waves
from harness_ext.adapters.runtime.settings import ANSWER_TEXT_MODES, AdapterSettings

#: official run_squad.py defaults
DEFAULT_MAX_LENGTH = 384
DEFAULT_MAX_QUERY_LENGTH = 64
DEFAULT_N_BEST = 20


@dataclass
class Windows:
    """Tokenised windows of a list of (question, context) pairs.

    ``context_range[w] = (first, stop)``: token positions of the context part of
    window ``w``; ``offsets[w]`` holds the context tokens' character offsets into the
    request's context; ``max_context[w]`` marks the context tokens whose maximum
    context is in window ``w``.
    """

    features: list[dict[str, list[int]]]
    example: np.ndarray  # window -> request index (ascending)
    context_range: np.ndarray  # (n_windows, 2)
    offsets: list[np.ndarray]  # per window (n_context, 2) int
    max_context: list[np.ndarray]  # per window (n_context,) bool
    n_examples: int
    #: the requests' contexts (for the answer text), in request order
    contexts: Sequence[str] = ()

    def windows_of(self, example: int) -> range:
        lo, hi = np.searchsorted(self.example, [example, example + 1])
        return range(int(lo), int(hi))


# --------------------------------------------------------------------------- encoding
def _truncate_questions(tokenizer: Any, questions: Sequence[str], limit: int) -> list[str]:
    """Cut questions to ``limit`` tokens (on the text, via offsets) so only the context overflows."""
    encoded = tokenizer(list(questions), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    out = []
    for question, offsets in zip(questions, encoded["offset_mapping"]):
        out.append(question if len(offsets) <= limit else question[: offsets[limit - 1][1]])
    return out


def _window_shift(prev: np.ndarray, cur: np.ndarray, overlap: int) -> int:
    """How many context tokens window ``cur`` starts after window ``prev``.

    Found from the shared offsets of the two windows (exact for any tokenizer),
    trying the expected ``len(prev) - overlap`` first.
    """
    n = len(prev)
    if len(cur) == 0:
        return n
    expected = n - overlap
    candidates = np.flatnonzero((prev[:, 0] == cur[0, 0]) & (prev[:, 1] == cur[0, 1]))
    for k in sorted(candidates.tolist(), key=lambda k: abs(k - expected)):
        overlap = min(n - k, len(cur))
        if np.array_equal(prev[k : k + overlap], cur[:overlap]):
            return int(k)
    return n  # no shared tokens (stride 0)


def max_context_masks(offsets: Sequence[np.ndarray], overlap: int) -> list[np.ndarray]:
    """For each window of ONE example: which of its context tokens have maximum context there.

    Score of token j in a window of n context tokens: min(j, n - 1 - j) + 0.01 * n
    (SQuAD's ``_check_is_max_context``); the first window wins ties.
    """
    if len(offsets) == 1:
        return [np.ones(len(offsets[0]), dtype=bool)]
    starts = [0]
    for prev, cur in zip(offsets, offsets[1:]):
        starts.append(starts[-1] + _window_shift(prev, cur, overlap))
    total = max(s + len(o) for s, o in zip(starts, offsets))
    scores = np.full((len(offsets), total), -np.inf)
    for w, (start, off) in enumerate(zip(starts, offsets)):
        n = len(off)
        j = np.arange(n)
        scores[w, start : start + n] = np.minimum(j, n - 1 - j) + 0.01 * n
    best = scores.argmax(axis=0)
    return [best[start : start + len(off)] == w for w, (start, off) in enumerate(zip(starts, offsets))]


def _context_starts(n: int, budget: int, overlap: int) -> list[tuple[int, int]]:
    """Context token ranges of the windows, as the tokenizer's overflow cuts them
    (``tokenizers`` ``Encoding::truncate``: steps of ``budget - overlap``, stop once the end is in)."""
    if n <= budget:
        return [(0, n)]
    step = budget - overlap
    out = []
    for start in range(0, n, step):
        stop = min(start + budget, n)
        out.append((start, stop))
        if stop == n:
            break
    return out


def _cut_windows(tokenizer, template: PairTemplate, q_ids, contexts, max_length: int, doc_stride: int,
                 n_special: int):
    """Windows of every (question, context), each distinct context tokenised once (XQuAD has ~5 questions
    per paragraph): the same windows as the tokenizer's ``return_overflowing_tokens`` gives per pair."""
    distinct: dict[str, int] = {}
    for context in contexts:
        distinct.setdefault(context, len(distinct))
    texts = list(distinct)
    # verbose=False: whole contexts are longer than the model's limit on purpose (doc_stride windows
    # are cut from them below); transformers would warn "Token indices sequence length is longer ..."
    ctx = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False) if texts else None
    ctx_offsets = [np.asarray(o, dtype=np.int64).reshape(-1, 2) for o in ctx["offset_mapping"]] if ctx else []
    features, example, ranges, offsets, overlaps = [], [], [], [], []
    head, mid = len(template.prefix), len(template.middle)
    for i, (question, context) in enumerate(zip(q_ids, contexts)):
        c = distinct[context]
        c_ids = ctx["input_ids"][c]
        budget = max_length - n_special - len(question)
        overlap = max(0, budget - doc_stride)
        first = head + len(question) + mid
        for start, stop in _context_starts(len(c_ids), budget, overlap):
            ids = template.prefix + question + template.middle + c_ids[start:stop] + template.suffix
            feature = {"input_ids": ids}
            if template.types is not None:
                t_pre, t_q, t_mid, t_c, t_suf = template.types
                feature["token_type_ids"] = t_pre + [t_q] * len(question) + t_mid + [t_c] * (stop - start) + t_suf
            if "attention_mask" in template.keys:
                feature["attention_mask"] = [1] * len(ids)
            features.append(feature)
            example.append(i)
            overlaps.append(overlap)
            if stop > start:
                ranges.append((first, first + stop - start))
            else:  # empty context
                ranges.append((len(ids), len(ids)))
            offsets.append(ctx_offsets[c][start:stop])
    return features, example, ranges, offsets, overlaps


def encode_windows(
    tokenizer: Any,
    questions: Sequence[str],
    contexts: Sequence[str],
    max_length: int,
    doc_stride: int,
    max_query_length: int = DEFAULT_MAX_QUERY_LENGTH,
) -> Windows:
    """Tokenise (question, context) pairs into windows of ``max_length`` tokens.

    Windows start every ``doc_stride`` context tokens, as in the official
    ``squad_convert_example_to_features``; the tokenizer's own ``stride`` is the
    overlap, which depends on the question's length, so questions are encoded in
    groups of equal overlap (a handful of batched calls).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            f"{type(tokenizer).__name__} is a slow tokenizer; span extraction needs offset mappings, "
            f"which only fast (tokenizers-backed) tokenizers give. Save the checkpoint with its tokenizer.json"
        )
    if doc_stride < 1:
        raise ValueError(f"stride (the step between window starts) must be >= 1, got {doc_stride}")
    n_special = tokenizer.num_special_tokens_to_add(pair=True)
    query_budget = min(max_query_length, max_length - n_special - 1)
    if query_budget < 1:
        raise ValueError(f"max_length={max_length} leaves no room for a question and its context")
    template = pair_template(tokenizer)
    if template is not None:  # the question's first ids, as run_squad's encode(question, max_length=64)
        question_ids = [ids[:query_budget] for ids in tokenizer(list(questions), add_special_tokens=False, verbose=False)["input_ids"]]
    else:  # the tokenizer builds the pairs from text: cut the question's text instead
        questions = _truncate_questions(tokenizer, questions, query_budget)
        question_ids = tokenizer(questions, add_special_tokens=False, verbose=False)["input_ids"] if questions else []
    query_lengths = [len(ids) for ids in question_ids]
    groups: dict[int, list[int]] = {}
    for i, query_length in enumerate(query_lengths):
        budget = max_length - n_special - query_length
        groups.setdefault(max(0, budget - doc_stride), []).append(i)

    features: list[dict[str, list[int]]] = []
    example: list[int] = []
    ranges: list[tuple[int, int]] = []
    offsets: list[np.ndarray] = []
    overlaps: list[int] = []
    if template is None and max(query_lengths, default=0) > max_length - n_special - 1:
        raise ValueError(f"max_length={max_length} leaves no room for the context after a {max(query_lengths)}-token question")
    if template is not None:  # each distinct context encoded once, windows cut from it per question
        cut = _cut_windows(tokenizer, template, question_ids, contexts, max_length, doc_stride, n_special)
        features, example, ranges, offsets, overlaps = cut
    else:  # tokenizers whose pair layout cannot be read: the tokenizer cuts the windows, per question
        for overlap, members in groups.items():
            encoding = tokenizer(
                [questions[i] for i in members], [contexts[i] for i in members],
                truncation="only_second", max_length=max_length, stride=overlap,
                return_overflowing_tokens=True, return_offsets_mapping=True, padding=False,
            )
            keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoding]
            for w, local in enumerate(encoding["overflow_to_sample_mapping"]):
                features.append({k: encoding[k][w] for k in keys})
                example.append(members[local])
                overlaps.append(overlap)
                sequence_ids = encoding.sequence_ids(w)
                if 1 in sequence_ids:
                    first = sequence_ids.index(1)
                    stop = len(sequence_ids) - sequence_ids[::-1].index(1)
                else:  # empty context
                    first = stop = len(sequence_ids)
                ranges.append((first, stop))
                offsets.append(np.asarray(encoding["offset_mapping"][w][first:stop], dtype=np.int64).reshape(-1, 2))

    order = np.argsort(np.asarray(example, dtype=np.int64), kind="stable")  # request order, windows in sequence
    example_arr = np.asarray(example, dtype=np.int64)[order]
    features = [features[i] for i in order]
    offsets = [offsets[i] for i in order]
    overlaps = [overlaps[i] for i in order]
    ranges_arr = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)[order]
    max_context: list[np.ndarray] = [np.empty(0, dtype=bool)] * len(features)
    bounds = np.searchsorted(example_arr, np.arange(len(questions) + 1))
    for i in range(len(questions)):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        if hi > lo:
            max_context[lo:hi] = max_context_masks(offsets[lo:hi], overlaps[lo])
    return Windows(features, example_arr, ranges_arr, offsets, max_context, len(questions), list(contexts))


# --------------------------------------------------------------------------- decoding
def _top(logits: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n largest logits, ties in position order (as Python's stable sort)."""
    return np.argsort(-logits, kind="stable")[:n]


def best_window_span(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    context_range: tuple[int, int],
    max_context: np.ndarray,
    n_best: int,
    max_answer_length: int,
) -> tuple[float, int, int] | None:
    """Best valid (score, start, end) token pair of one window, or None."""
    first, stop = context_range
    starts, ends = _top(start_logits, n_best), _top(end_logits, n_best)
    start_ok = (starts >= first) & (starts < stop)
    start_ok[start_ok] &= max_context[starts[start_ok] - first]
    end_ok = (ends >= first) & (ends < stop)
    length = ends[None, :] - starts[:, None] + 1
    valid = start_ok[:, None] & end_ok[None, :] & (length >= 1) & (length <= max_answer_length)
    if not valid.any():
        return None
    scores = np.where(valid, start_logits[starts][:, None] + end_logits[ends][None, :], -np.inf)
    flat = int(np.argmax(scores))  # first maximum in (start rank, end rank) order, as the official loops
    i, j = divmod(flat, scores.shape[1])
    return float(scores[i, j]), int(starts[i]), int(ends[j])


def best_spans(
    windows: Windows,
    start_logits: Sequence[np.ndarray],
    end_logits: Sequence[np.ndarray],
    n_best: int = DEFAULT_N_BEST,
    max_answer_length: int = 30,
) -> list[tuple[int, int] | None]:
    """Per request: the character span (start, end) of the best answer over all its windows."""
    found = [
        best_window_span(
            np.asarray(start_logits[w], dtype=np.float32), np.asarray(end_logits[w], dtype=np.float32),
            tuple(windows.context_range[w]), windows.max_context[w], n_best, max_answer_length,
        )
        for w in range(len(windows.features))
    ]
    return spans_of(windows, found)


def best_pairs(windows: Windows, found: Sequence[tuple | None]) -> list[tuple | None]:
    """Per request: the best of its windows' best pairs (:func:`best_window_span`) as (window, start, end,
    and whatever else the window's entry holds after its score, e.g. its answer text).

    Ties go to the earlier window, as in the official loop over features."""
    out: list[tuple | None] = []
    for i in range(windows.n_examples):
        best: tuple | None = None
        for w in windows.windows_of(i):
            pair = found[w]
            if pair is not None and (best is None or pair[0] > best[0]):
                best = (pair[0], w, *pair[1:])
        out.append(None if best is None else best[1:])
    return out


def char_span(windows: Windows, pair: tuple | None) -> tuple[int, int] | None:
    """The character span (start, end) in the context of a (window, start, end) token pair."""
    if pair is None:
        return None
    w, start, end = pair[:3]
    first = int(windows.context_range[w][0])
    offsets = windows.offsets[w]
    return int(offsets[start - first, 0]), int(offsets[end - first, 1])


def spans_of(windows: Windows, found: Sequence[tuple[float, int, int] | None]) -> list[tuple[int, int] | None]:
    """Per request: the best of its windows' best pairs, as a character span."""
    return [char_span(windows, pair) for pair in best_pairs(windows, found)]


def official_text(recover: OfficialText, windows: Windows, context: str, pair: tuple[int, int, int] | None) -> str:
    """The answer text of a (window, start, end) pair as run_squad recovers it (see answer_text.py);
    ``""`` when no pair was valid (official: the literal ``"empty"``)."""
    if pair is None:
        return ""
    w, start, end = pair[:3]
    first = int(windows.context_range[w][0])
    offsets = windows.offsets[w]
    ids = windows.features[w]["input_ids"][start : end + 1]
    return recover(context, ids, int(offsets[start - first, 0]), int(offsets[end - first, 0]))


def span_text(context: str, span: tuple[int, int] | None) -> str:
    """The answer as it is written in the context (outer whitespace dropped, still a substring)."""
    return "" if span is None else context[span[0] : span[1]].strip()


# --------------------------------------------------------------------------- model
def window_length(loaded: Any, settings: AdapterSettings) -> int:
    """Tokens per window: ``settings.max_length`` or run_squad's 384, within the model's limits."""
    limits = [settings.max_length or DEFAULT_MAX_LENGTH]
    tokenizer_limit = getattr(loaded.tokenizer, "model_max_length", None)
    if tokenizer_limit and tokenizer_limit < 1_000_000:
        limits.append(int(tokenizer_limit))
    config = getattr(loaded.model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        # RoBERTa-style models number positions from pad_token_id + 1
        offset = 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl") else 0
        limits.append(int(positions) - offset)
    return min(limits)


def _stages(loaded: Any, settings: AdapterSettings, decode: Callable) -> tuple[Callable, Callable, Callable]:
    """prepare / forward / finish for windows; items are ``(windows, w)`` and ``decode(windows, w, start
    logits, end logits)`` (float32 numpy, unpadded) runs on the finishing thread."""
    model = loaded.model
    device = settings.device
    pad_id = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else 0
    accepted = set(getattr(loaded.tokenizer, "model_input_names", ()) or ("input_ids", "attention_mask"))
    accepted.add("input_ids")

    def prepare(items: list[tuple[Windows, int]]) -> dict:  # worker thread
        features = [windows.features[w] for windows, w in items]
        keys = [k for k in features[0] if k in accepted]
        columns = {k: [f[k] for f in features] for k in keys}
        arrays = pad_columns(columns, range(len(items)), {"input_ids": pad_id}, attention_mask="attention_mask" in accepted)
        return host_tensors(arrays, device)

    def forward(inputs: dict) -> tuple[Any, Any]:  # calling thread
        output = model(**move(inputs, device))
        return output.start_logits.float(), output.end_logits.float()

    def finish(items: list[tuple[Windows, int]], logits: tuple[Any, Any]) -> list:  # worker thread
        starts, ends = logits[0].cpu().numpy(), logits[1].cpu().numpy()
        out = []
        for r, (windows, w) in enumerate(items):
            n = len(windows.features[w]["input_ids"])
            out.append(decode(windows, w, starts[r, :n], ends[r, :n]))
        return out

    return prepare, forward, finish


def _run_windows(loaded: Any, windows: Windows, settings: AdapterSettings, decode: Callable) -> list:
    """``decode`` of every window of ``windows`` (already encoded), batched longest first through the pipeline."""
    prepare, forward, finish = _stages(loaded, settings, decode)
    lengths = [len(f["input_ids"]) for f in windows.features]
    # batch_size=None: automatic plan (on CPU a few 384-token windows per batch, not 32: see docs/benchmarks.md)
    return run_pipelined([(windows, w) for w in range(len(lengths))], lengths, plan_for(loaded, settings),  # type: ignore[return-value]
                         forward, prepare=prepare, finish=finish, overlap=overlap_enabled(settings), desc="extract_span")


def _best_of(n_best: int, max_answer_length: int, recover: OfficialText | None = None) -> Callable:
    """Per window: its best valid (score, start, end) pair; with ``recover`` also that pair's official
    answer text, worked out on the pipeline's finishing thread while the next batches run."""
    def decode(windows: Windows, w: int, start: np.ndarray, end: np.ndarray) -> tuple | None:
        found = best_window_span(start, end, tuple(windows.context_range[w]), windows.max_context[w], n_best,
                                 max_answer_length)
        if found is None or recover is None:
            return found
        context = windows.contexts[int(windows.example[w])]
        return (*found, official_text(recover, windows, context, (w, found[1], found[2])))
    return decode


def window_logits(loaded: Any, windows: Windows, settings: AdapterSettings) -> list[tuple[np.ndarray, np.ndarray]]:
    """Start/end logits of every window (unpadded, float32), batched longest first."""
    return _run_windows(loaded, windows, settings, lambda windows, w, start, end: (start, end))


def window_best(
    loaded: Any, windows: Windows, settings: AdapterSettings, n_best: int = DEFAULT_N_BEST, max_answer_length: int = 30
) -> list[tuple[float, int, int] | None]:
    """Every window's best valid (score, start, end) pair, decoded on the pipeline's finishing
    thread while the next batches run (same pairs as :func:`best_spans` takes from logits)."""
    return _run_windows(loaded, windows, settings, _best_of(n_best, max_answer_length))


def _pair(request: Any) -> tuple[str, str]:
    args = request.args if hasattr(request, "args") else request
    return str(args[0]), str(args[1])


def answer(loaded: Any, requests: list, settings: AdapterSettings) -> list[str]:
    """One answer string per request: run_squad's text (default) or a substring of the context (``answer_text=offsets``)."""
    if not requests:
        return []
    mode = answer_text_mode(settings)
    pairs = [_pair(r) for r in requests]
    extra = settings.extra or {}
    tokenizer, max_length = loaded.tokenizer, window_length(loaded, settings)
    max_query_length = int(extra.get("max_query_length", DEFAULT_MAX_QUERY_LENGTH))
    plan = plan_for(loaded, settings)
    # a question has ~1-2 windows of up to 384 tokens: small waves, so the device starts early; on an
    # accelerator cut from the questions sorted by context length (stable: a paragraph's questions stay
    # together, so each context is still encoded once)
    waves_plan = plan_waves([len(context) for _, context in pairs], max(4, first_wave(plan) // 8), settings,
                            settings.device, largest=2048)
    questions, contexts = zip(*waves_plan.arrange(pairs))

    def encode(lo: int, hi: int) -> Wave:  # encoding worker: this wave's questions, each context once
        windows = encode_windows(tokenizer, questions[lo:hi], contexts[lo:hi], max_length, settings.stride,
                                 max_query_length)
        return Wave([(windows, w) for w in range(len(windows.features))],
                    [len(f["input_ids"]) for f in windows.features], windows)

    recover = OfficialText(tokenizer) if mode == "official" else None
    prepare, forward, finish = _stages(
        loaded, settings, _best_of(int(extra.get("n_best", DEFAULT_N_BEST)), settings.max_answer_length, recover))
    waves = run_waves(waves_plan.bounds, encode, plan, forward, prepare=prepare, finish=finish,
                      overlap=overlap_enabled(settings), desc="extract_span", progress=len(questions) > 64)
    chosen = [(wave.extra, pair) for wave, found in waves for pair in best_pairs(wave.extra, found)]
    if recover is None:
        texts = [span_text(context, char_span(windows, pair)) for context, (windows, pair) in zip(contexts, chosen)]
    else:  # the text each window's best pair got on the finishing thread
        texts = ["" if pair is None else pair[3] for _, pair in chosen]
    return waves_plan.restore(texts)


def answer_text_mode(settings: AdapterSettings) -> str:
    """``settings.answer_text``: ``official`` (run_squad's text recovery) or ``offsets`` (a substring of the context)."""
    mode = settings.answer_text
    if mode not in ANSWER_TEXT_MODES:
        raise ValueError(f"answer_text={mode!r}: use one of {', '.join(ANSWER_TEXT_MODES)}")
    return mode
