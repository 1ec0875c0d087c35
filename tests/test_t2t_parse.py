"""Parsing generated text back into labels / word tags / answers, and the templates.

Pure functions: no model. Every malformed output must give an answer of the right
shape, scored as wrong, with its status counted."""

from __future__ import annotations

import json
import pickle
import random

import pytest

from harness_ext.adapters.formats import parse as p
from harness_ext.adapters.text2text.templates import (
    PRESETS,
    TemplateError,
    load_templates,
    render_target,
)
from harness_ext.metrics.tagging import span_prf
from xtreme_tasks.table import PANX_TAGS, UPOS_TAGS

WORDS = "John Smith lives in New York with John".split()


# ----------------------------------------------------------------- spans (PAN-X, mT5's WikiAnn format)
def test_spans_map_back_to_iob2_in_order_with_repeats():
    out = p.parse_spans("PER: John Smith $$ LOC: New York $$ PER: John", WORDS, PANX_TAGS)
    assert list(out) == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O", "B-PER"]
    assert out.parse.status == "ok" and out.parse.problems == ()


def test_empty_output_means_no_entities_and_is_ok():
    out = p.parse_spans("", WORDS, PANX_TAGS)
    assert list(out) == ["O"] * len(WORDS) and out.parse.status == "ok"


@pytest.mark.parametrize("text", ["garbage", "PER John", "PERSON: John", ": John", "PER:", "$$ $$", "PER - John $$ LOC New York"])
def test_malformed_output_is_unparsable_and_all_outside(text):
    out = p.parse_spans(text, WORDS, PANX_TAGS)
    assert list(out) == ["O"] * len(WORDS)
    if text.strip("$ "):
        assert out.parse.status == "unparsable", text
    else:
        assert out.parse.status == "ok"  # only separators: no entity claimed


def test_partly_malformed_output_keeps_what_parses():
    out = p.parse_spans("PER: John Smith $$ junk $$ LOC: Atlantis $$ loc: new york", WORDS, PANX_TAGS)
    # type is case-insensitive, words fall back to a case-insensitive match
    assert list(out) == ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O", "O"]
    assert out.parse.status == "partial"
    assert any("junk" in q for q in out.parse.problems) and any("Atlantis" in q for q in out.parse.problems)


def test_overlapping_entities_do_not_overwrite():
    out = p.parse_spans("LOC: New York $$ ORG: New York", "New York".split(), PANX_TAGS)
    assert list(out) == ["B-LOC", "I-LOC"] and out.parse.status == "partial"


def test_entity_with_colon_and_custom_separator():
    out = p.parse_spans("ORG: Foo: Bar ## PER: Ann", ["Foo:", "Bar", "and", "Ann"], PANX_TAGS, separator=" ## ")
    assert list(out) == ["B-ORG", "I-ORG", "O", "B-PER"] and out.parse.status == "ok"


# ----------------------------------------------------------------- word/TAG (UD-POS, our documented format)
def test_word_tags_with_slashes_in_words():
    words = ["The", "1/2", "and/or", "cat"]
    out = p.parse_word_tags("The/DET 1/2/NUM and/or/CCONJ cat/NOUN", words, UPOS_TAGS)
    assert list(out) == ["DET", "NUM", "CCONJ", "NOUN"] and out.parse.status == "ok"


def test_word_tags_with_spaces_in_words():
    out = p.parse_word_tags("Hà Nội/PROPN là/AUX", ["Hà Nội", "là"], UPOS_TAGS)
    assert list(out) == ["PROPN", "AUX"] and out.parse.status == "ok"


def test_word_tags_dropped_doubled_and_respelled_words():
    words = "the cat sat on the mat".split()
    dropped = p.parse_word_tags("the/DET cat/NOUN on/ADP the/DET mat/NOUN", words, UPOS_TAGS)
    assert list(dropped) == ["DET", "NOUN", "O", "ADP", "DET", "NOUN"] and dropped.parse.status == "partial"
    doubled = p.parse_word_tags("the/DET cat/NOUN cat/NOUN sat/VERB on/ADP the/DET mat/NOUN", words, UPOS_TAGS)
    assert list(doubled) == ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN"] and doubled.parse.status == "partial"
    respelled = p.parse_word_tags("the/DET Cat/NOUN sat/VERB on/ADP the/DET mat/NOUN", words, UPOS_TAGS)
    assert list(respelled) == ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN"] and respelled.parse.status == "ok"


@pytest.mark.parametrize("text", ["", "nonsense here", "the/DOG cat/CAT", "DET NOUN"])
def test_word_tags_unparsable(text):
    out = p.parse_word_tags(text, ["the", "cat"], UPOS_TAGS)
    assert list(out) == ["O", "O"] and out.parse.status == "unparsable"


# ----------------------------------------------------------------- tags only
def test_tag_sequence():
    ok = p.parse_tag_sequence("DET NOUN", ["the", "cat"], UPOS_TAGS)
    assert list(ok) == ["DET", "NOUN"] and ok.parse.status == "ok"
    short = p.parse_tag_sequence("DET", ["the", "cat"], UPOS_TAGS)
    assert list(short) == ["DET", "O"] and short.parse.status == "partial"
    bad = p.parse_tag_sequence("the cat", ["the", "cat"], UPOS_TAGS)
    assert list(bad) == ["O", "O"] and bad.parse.status == "unparsable"
    with pytest.raises(ValueError, match="unknown tag target format"):
        p.parse_tags("x", ["x"], UPOS_TAGS, "xml")


def test_empty_sentence():
    for fmt in p.TAG_FORMATS:
        out = p.parse_tags("", [], UPOS_TAGS, fmt)
        assert list(out) == [] and out.parse.status == "ok"


# ----------------------------------------------------------------- render -> parse round trip
@pytest.mark.parametrize("task,tagset", [("panx", PANX_TAGS), ("udpos", UPOS_TAGS)])
@pytest.mark.parametrize("fmt", p.TAG_FORMATS)
def test_rendered_targets_parse_back_to_the_gold_tags(task, tagset, fmt):
    """What a checkpoint is trained to write is read back exactly (F1 100), in every format."""
    rng = random.Random(7)
    # distinct words: the spans format names words, not positions, so a repeated word
    # is resolved by order (see test_spans_map_back_to_iob2_in_order_with_repeats)
    vocab = [f"w{i}" for i in range(40)]
    template = load_templates({task: {"format": fmt}})[task]
    golds, preds = [], []
    for _ in range(60):
        words = rng.sample(vocab, rng.randint(0, 9))
        if task == "panx":  # valid IOB2: I-X only after B-X / I-X
            tags, previous = [], "O"
            for _ in words:
                tag = rng.choice(PANX_TAGS)
                if tag.startswith("I-") and previous[2:] != tag[2:]:
                    tag = "B-" + tag[2:]
                tags.append(tag)
                previous = tag
        else:
            tags = [rng.choice(UPOS_TAGS) for _ in words]
        target = render_target(template, words=words, tags=tags)
        parsed = p.parse_tags(target, words, tagset, fmt, template.separator)
        golds.append(tags)
        preds.append(list(parsed))
        assert list(parsed) == tags, (target, words)
        assert parsed.parse.status == "ok", (target, parsed.parse)
    assert span_prf(golds, preds)["f1"] == pytest.approx(100.0)


# ----------------------------------------------------------------- labels
def test_labels_by_target_text():
    targets = {"entailment": "0", "neutral": "1", "contradiction": "2"}
    assert p.parse_label(" 1 ", targets) == "neutral"
    odd = p.parse_label("neutral", targets)  # a label *name*, but not a target of this checkpoint
    assert odd.parse.status == "unparsable" and odd not in targets and odd.startswith(p.UNPARSABLE_LABEL)
    assert p.parse_label("Paraphrase", {"0": "different_meaning", "1": "paraphrase"}) == "1"


# ----------------------------------------------------------------- QA
def test_pad_punctuation_matches_mt5_regex():
    regex = pytest.importorskip("regex", reason="the third-party regex module gives \\p{..} classes")
    samples = ["U.S. (François) 12,5%", "  Hello,  world!  ", "北京。你好？", "السلام، عليكم", "a_b-c", "naïve café"]
    for text in samples:
        expected = regex.sub(r"\s+", " ", regex.sub(r"([^_\s\p{N}\p{L}\p{M}])", r" \1 ", text))
        assert p.pad_punctuation(text).text == expected, text


def test_answers_map_back_onto_the_unpadded_context():
    context = "He went to the U.S. (again) yesterday."
    assert p.parse_answer(" U . S . ", context, padded=True) == "U.S."
    assert p.parse_answer("U . S . ( again )", context, padded=True) == "U.S. (again)"
    free = p.parse_answer("somewhere else", context, padded=True)
    assert free == "somewhere else" and free.parse.status == "ok" and free.parse.problems
    assert p.parse_answer(" x ", context) == "x"


# ----------------------------------------------------------------- flags, counts, serialisation
def test_flags_counts_and_serialisation():
    bad = p.parse_spans("junk", ["a"], PANX_TAGS)
    good = p.parse_label("0", {"entailment": "0", "neutral": "1"})
    cut = p.parse_answer("x", "x").__class__("x", p.ParseInfo("ok", "x").with_truncation(True))
    assert [p.unparsable_flag(r) for r in (bad, good, cut, "plain", ["O"])] == [1, 0, 0, 0, 0]
    assert p.count_unparsable([1, 0, 1]) == 2
    assert p.unparsable_item(bad) == {"unparsable": 1} and p.unparsable_item(good) == {"unparsable": 0}
    assert p.unparsable_item("plain") == {} and p.unparsable_item(["O"]) == {}
    assert p.status_counts([bad, good, cut, "plain"]) == {"ok": 1, "partial": 1, "unparsable": 1, "truncated": 1}
    for response in (bad, good):
        copy = pickle.loads(pickle.dumps(response))
        assert copy == response and copy.parse == response.parse and type(copy) is type(response)
    assert json.loads(json.dumps([bad, good])) == [["O"], "entailment"]


# ----------------------------------------------------------------- templates
def test_presets_follow_the_mt5_code():
    mt5 = load_templates(None)
    assert mt5["xnli"].render(text_a="A", text_b="B") == "xnli: premise: A hypothesis: B"
    assert dict(mt5["xnli"].targets) == {"entailment": "0", "neutral": "1", "contradiction": "2"}
    assert mt5["pawsx"].render(text_a="A", text_b="B") == "paws sentence1: A sentence2: B"
    assert dict(mt5["pawsx"].targets) == {"0": "different_meaning", "1": "paraphrase"}
    assert mt5["panx"].render(text="a b") == "tag: a b" and mt5["panx"].format == "spans"
    assert mt5["xquad"].render(question="q", context="c") == "question: q context: c" and mt5["xquad"].pad_punctuation
    assert dict(load_templates("mt5-words")["xnli"].targets) == {l: l for l in ("entailment", "neutral", "contradiction")}
    assert set(PRESETS["mt5"]) == {"xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "xcopa"}
    assert mt5["xcopa"].render(context="P. What was the cause?", choice1="a", choice2="b") == \
        "xcopa: P. What was the cause? choice1: a choice2: b"


def test_template_file_overrides_a_preset(tmp_path):
    path = tmp_path / "templates.yaml"
    path.write_text(
        "preset: mt5-words\n"
        "xnli:\n  input: 'nli {lang}: {text_a} || {text_b}'\n  targets: {entailment: 'yes', neutral: maybe, contradiction: 'no'}\n"
        "panx: {format: tags, max_new_tokens: 99}\n"
    )
    got = load_templates(str(path), {"xquad": "q: {question} c: {context}"})
    assert got["xnli"].render(text_a="A", text_b="B", lang="de") == "nli de: A || B"
    assert dict(got["xnli"].targets) == {"entailment": "yes", "neutral": "maybe", "contradiction": "no"}
    assert got["panx"].format == "tags" and got["panx"].budget() == 99
    assert got["xquad"].input == "q: {question} c: {context}" and got["xquad"].pad_punctuation
    assert got["udpos"].budget() is None and got["mlqa"].budget() == 64


@pytest.mark.parametrize(
    "spec,message",
    [
        ({"xnli": "premise: {premise}"}, "xnli.input uses \\['premise'\\]"),
        ({"xnli": {"targets": {"entailment": "0", "neutral": "1"}}}, "missing \\['contradiction'\\]"),
        ({"xnli": {"targets": {"entailment": "a", "neutral": "A", "contradiction": "b"}}}, "distinct"),
        ({"panx": {"format": "xml"}}, "format 'xml'"),
        ({"xnli": {"targets": {"entailment": True, "neutral": "m", "contradiction": False}}}, "quote the target texts"),
        ({"panx": {"colour": "red"}}, "unknown field"),
        ({"tatoeba": "x"}, "unknown task 'tatoeba'"),
        ({"xquad": {"max_new_tokens": 0}}, "positive integer"),
        ({"preset": "t0"}, "unknown template preset 't0'"),
        ("no-such-file.yaml", "nor an existing file"),
    ],
)
def test_bad_templates_are_refused_with_the_reason(spec, message):
    with pytest.raises(TemplateError, match=message):
        load_templates(spec)
