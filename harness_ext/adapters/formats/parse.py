"""Generated text -> labels, word tags and answers, for text-to-text (mT5) checkpoints.

Why a parser that never raises: a seq2seq model can write anything, and one odd
sentence must not end a 40-language run. Every parse returns a usable answer of the
shape the task expects (a string, or exactly one tag per input word) plus a
:class:`ParseInfo` saying how it went:

* ``ok``: the output follows the target format and covers the input;
* ``partial``: some of it was usable, some was dropped (a malformed segment, an
  entity that is not in the sentence, a word left without a tag, a generation cut
  by ``max_new_tokens``); dropped parts simply earn no credit;
* ``unparsable``: nothing in a non-empty (or, for POS, an empty) output follows the
  format. The answer is then one that scores as wrong: no entities (``O`` for every
  word), or a label string no task label can equal.

Answers are ``str``/``list`` subclasses carrying ``.parse`` (:class:`ParseInfo`), so
they flow through lm-eval unchanged (JSON-serialisable, picklable for multi-GPU
gathers) and a task's ``process_results`` can count them with :func:`unparsable_flag`
and aggregate with :func:`count_unparsable`.

Target formats (the templates in :mod:`harness_ext.adapters.text2text.templates` choose one):

* ``spans`` (PAN-X, the mT5 paper's WikiAnn format): ``PER: John Smith $$ LOC: Paris``;
  the empty string means "no entities". Each entity's words are found in the input
  words (in order, no overlaps) and written back as IOB2 ``B-PER I-PER``;
* ``word_tags`` (UD-POS, ours; the mT5 paper has no POS task): ``The/DET cat/NOUN``;
  a word may contain spaces or ``/`` (``1/2/NUM``): the tag is what follows the
  *last* ``/`` before whitespace and must be a tag of the tag set. Items are aligned
  to the input words with a diff, so a dropped or doubled word costs only itself;
* ``tags``: the tags alone, one per word (``DET NOUN``), aligned by position.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

Status = Literal["ok", "partial", "unparsable"]
STATUSES: tuple[str, ...] = ("ok", "partial", "unparsable")
#: the tag given to a word the output says nothing about: never part of a span, so it
#: earns no credit for UPOS or entities (seqeval 0.0.12 treats ``O`` as outside)
NO_TAG = "O"
#: prefix of the label string returned for an unparsable classification output; no
#: task label starts with it, so it always counts as wrong
UNPARSABLE_LABEL = "<unparsable> "
TAG_FORMATS: tuple[str, ...] = ("spans", "word_tags", "tags")


@dataclass(frozen=True)
class ParseInfo:
    """How one generated output was read back (see the module docstring)."""

    status: Status
    raw: str
    problems: tuple[str, ...] = ()
    #: generation stopped at ``max_new_tokens`` before the end-of-sequence token
    truncated: bool = False

    def with_truncation(self, truncated: bool) -> "ParseInfo":
        """Mark a cut generation; a cut output that parsed ``ok`` becomes ``partial``."""
        if not truncated:
            return self
        status: Status = "partial" if self.status == "ok" else self.status
        return ParseInfo(status, self.raw, (*self.problems, "cut at max_new_tokens"), True)


class T2TText(str):
    """A label name or an answer text, with ``.parse`` telling how it was read."""

    parse: ParseInfo

    def __new__(cls, value: str, parse: ParseInfo) -> "T2TText":
        obj = super().__new__(cls, value)
        obj.parse = parse
        return obj

    def __reduce__(self):  # keep .parse across pickling (multi-GPU gathers)
        return (T2TText, (str(self), self.parse))


class T2TTags(list):
    """One tag per input word, with ``.parse`` telling how they were read."""

    parse: ParseInfo

    def __init__(self, tags: Iterable[str], parse: ParseInfo) -> None:
        super().__init__(tags)
        self.parse = parse

    def __reduce__(self):
        return (T2TTags, (list(self), self.parse))


# --------------------------------------------------------------------------- helpers for tasks
def parse_info(response: Any) -> ParseInfo | None:
    """The :class:`ParseInfo` of an adapter response (None for encoder-head answers)."""
    info = getattr(response, "parse", None)
    return info if isinstance(info, ParseInfo) else None


def unparsable_flag(response: Any) -> int:
    """1 when ``response`` came from generated text that could not be parsed, else 0.

    Meant for ``process_results``: ``{"unparsable": unparsable_flag(prediction)}``.
    """
    info = parse_info(response)
    return int(info is not None and info.status == "unparsable")


def unparsable_item(response: Any) -> dict[str, int]:
    """``{"unparsable": 0 or 1}`` for a response read from generated text, ``{}`` for
    an encoder-head answer, so encoder runs report no such metric at all.

    Meant for ``process_results``: ``return {"acc": ..., **unparsable_item(prediction)}``
    with ``"unparsable": count_unparsable`` among the task's aggregations (lm-eval
    aggregates only the metrics the documents actually return).
    """
    return {} if parse_info(response) is None else {"unparsable": unparsable_flag(response)}


def count_unparsable(items: Sequence[int]) -> int:
    """Aggregation for the per-document flags of :func:`unparsable_flag`: how many."""
    return int(sum(items))


def status_counts(responses: Iterable[Any]) -> dict[str, int]:
    """``{"ok": n, "partial": n, "unparsable": n, "truncated": n}`` over responses."""
    counts = dict.fromkeys((*STATUSES, "truncated"), 0)
    for response in responses:
        info = parse_info(response)
        if info is not None:
            counts[info.status] += 1
            counts["truncated"] += int(info.truncated)
    return counts


def normalize(text: str) -> str:
    """Case-folded, NFKC, whitespace collapsed: how label targets are compared."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# --------------------------------------------------------------------------- classification
def parse_label(text: str, targets: dict[str, str]) -> T2TText:
    """Generated text -> the label whose target text it is (``targets``: label -> target).

    Compared after :func:`normalize`; anything else is unparsable and returned as
    ``UNPARSABLE_LABEL + text``, which no label equals (so it scores as wrong even
    when the raw text happens to be a label *name* but not a target, e.g. ``neutral``
    for a checkpoint trained on the targets ``0/1/2``).
    """
    by_target = {normalize(target): label for label, target in targets.items()}
    label = by_target.get(normalize(text))
    if label is not None:
        return T2TText(label, ParseInfo("ok", text))
    known = ", ".join(repr(t) for t in targets.values())
    return T2TText(UNPARSABLE_LABEL + text, ParseInfo("unparsable", text, (f"not a target ({known})",)))


# --------------------------------------------------------------------------- tag sets
def split_tag(tag: str) -> tuple[str | None, str]:
    """``B-PER`` -> ``("B", "PER")``; ``NOUN`` -> ``(None, "NOUN")``."""
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
        return tag[0], tag[2:]
    return None, tag


def span_types(tagset: Sequence[str]) -> tuple[list[str], bool]:
    """Types named by a tag set and whether it is IOB2 (``B-``/``I-`` prefixed)."""
    types: list[str] = []
    iob = False
    for tag in tagset:
        prefix, type_ = split_tag(tag)
        if tag == NO_TAG:
            continue
        iob = iob or prefix is not None
        if type_ not in types:
            types.append(type_)
    return types, iob


def _span_tags(type_: str, length: int, iob: bool) -> list[str]:
    if not iob:
        return [type_] * length
    return [f"B-{type_}"] + [f"I-{type_}"] * (length - 1)


# --------------------------------------------------------------------------- spans format
def _segments(text: str, separator: str) -> list[str]:
    sep = separator.strip() or separator
    return [s.strip() for s in text.split(sep) if s.strip()]


def _find(words: Sequence[str], entity: Sequence[str], taken: list[bool], start: int, fold: bool) -> int | None:
    """First position >= start where ``entity`` matches free words (then from 0)."""
    n = len(entity)
    if fold:
        words = [w.casefold() for w in words]
        entity = [w.casefold() for w in entity]
    for begin in (start, 0):
        for i in range(begin, len(words) - n + 1):
            if list(words[i : i + n]) == list(entity) and not any(taken[i : i + n]):
                return i
    return None


def parse_spans(text: str, words: Sequence[str], tagset: Sequence[str], separator: str = " $$ ") -> T2TTags:
    """``TYPE: words $$ TYPE: words`` -> one tag per input word (IOB2 for an IOB tag set).

    An entity's words are matched exactly against the input words (then
    case-insensitively), at the first free place after the previous entity, else
    the first free place anywhere; repeated entities fill repeated occurrences.
    """
    types, iob = span_types(tagset)
    by_upper = {t.upper(): t for t in types}
    tags = [NO_TAG] * len(words)
    taken = [False] * len(words)
    segments = _segments(text, separator)
    problems: list[str] = []
    well_formed = aligned = 0
    cursor = 0
    for segment in segments:
        head, colon, body = segment.partition(":")
        type_ = by_upper.get(head.strip().upper())
        entity = body.split()
        if not colon or type_ is None or not entity:
            problems.append(f"malformed segment {segment!r}")
            continue
        well_formed += 1
        where = _find(words, entity, taken, cursor, fold=False)
        if where is None:
            where = _find(words, entity, taken, cursor, fold=True)
        if where is None:
            problems.append(f"entity {body.strip()!r} is not in the sentence")
            continue
        aligned += 1
        for offset, tag in enumerate(_span_tags(type_, len(entity), iob)):
            tags[where + offset] = tag
            taken[where + offset] = True
        cursor = where + len(entity)
    if segments and not well_formed:
        status: Status = "unparsable"
    else:
        status = "partial" if problems else "ok"
    return T2TTags(tags, ParseInfo(status, text, tuple(problems)))


# --------------------------------------------------------------------------- word/TAG format
def _word_tag_pattern(tagset: Sequence[str], spaced_words: bool) -> re.Pattern[str]:
    """``word/TAG`` items; a word may hold ``/`` (the tag follows the last one) and,
    only when some input word does (Vietnamese UD), spaces."""
    alternatives = "|".join(re.escape(t) for t in sorted(set(tagset), key=len, reverse=True))
    word = r"\S(?:.*?\S)?" if spaced_words else r"\S+"
    return re.compile(rf"(?:^|(?<=\s))({word})/({alternatives})(?=\s|$)", re.DOTALL)


def _align(words: Sequence[str], items: Sequence[tuple[str, str]]) -> tuple[list[str | None], list[str]]:
    """Tags for ``words`` from ``(word, tag)`` items: equal runs by a diff, equal-length
    replaced runs (a respelled word) by position; returns tags and problems."""
    tags: list[str | None] = [None] * len(words)
    problems: list[str] = []
    said = [w for w, _ in items]
    matcher = difflib.SequenceMatcher(a=list(words), b=said, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and a1 - a0 == b1 - b0):
            for k in range(a1 - a0):
                tags[a0 + k] = items[b0 + k][1]
        elif op in ("replace", "insert"):
            problems.append(f"output words {said[b0:b1]} do not match input words {list(words[a0:a1])}")
        if op == "delete":
            problems.append(f"no tags for words {list(words[a0:a1])}")
    return tags, problems


def parse_word_tags(text: str, words: Sequence[str], tagset: Sequence[str]) -> T2TTags:
    """``word/TAG word/TAG`` -> one tag per input word (see the module docstring)."""
    spaced = any(len(w.split()) > 1 for w in words)
    items = [(m.group(1), m.group(2)) for m in _word_tag_pattern(tagset, spaced).finditer(text.strip())]
    if not words:
        status: Status = "ok" if not text.strip() else "partial"
        return T2TTags([], ParseInfo(status, text, () if status == "ok" else ("output for an empty sentence",)))
    if not items:
        return T2TTags([NO_TAG] * len(words), ParseInfo("unparsable", text, ("no word/TAG item",)))
    aligned, problems = _align(words, items)
    tags = [t if t is not None else NO_TAG for t in aligned]
    missing = sum(t is None for t in aligned)
    if missing and not any("no tags for" in p for p in problems):
        problems.append(f"{missing} word(s) without a tag")
    return T2TTags(tags, ParseInfo("partial" if problems else "ok", text, tuple(problems)))


# --------------------------------------------------------------------------- tags-only format
def parse_tag_sequence(text: str, words: Sequence[str], tagset: Sequence[str]) -> T2TTags:
    """``DET NOUN VERB`` -> tags by position; unknown tokens and missing positions get ``O``."""
    known = set(tagset)
    said = text.split()
    if not words:
        status: Status = "ok" if not said else "partial"
        return T2TTags([], ParseInfo(status, text, () if status == "ok" else ("output for an empty sentence",)))
    valid = [t if t in known else None for t in said]
    if not any(valid):
        return T2TTags([NO_TAG] * len(words), ParseInfo("unparsable", text, ("no tag of the tag set",)))
    problems: list[str] = []
    if len(said) != len(words):
        problems.append(f"{len(said)} tags for {len(words)} words")
    bad = [t for t in said[: len(words)] if t not in known]
    if bad:
        problems.append(f"unknown tags {bad[:5]}")
    tags = [(valid[i] if i < len(valid) and valid[i] else NO_TAG) for i in range(len(words))]
    return T2TTags(tags, ParseInfo("partial" if problems else "ok", text, tuple(problems)))


def parse_tags(text: str, words: Sequence[str], tagset: Sequence[str], fmt: str, separator: str = " $$ ") -> T2TTags:
    """Dispatch on the target format (``spans``, ``word_tags`` or ``tags``)."""
    if fmt == "spans":
        return parse_spans(text, words, tagset, separator)
    if fmt == "word_tags":
        return parse_word_tags(text, words, tagset)
    if fmt == "tags":
        return parse_tag_sequence(text, words, tagset)
    raise ValueError(f"unknown tag target format {fmt!r}; expected one of {', '.join(TAG_FORMATS)}")


# --------------------------------------------------------------------------- QA
@dataclass(frozen=True)
class Padded:
    """Text with punctuation padded as mT5's QA preprocessor does, plus, for each
    character of ``text``, the index of the original character it came from."""

    text: str
    origin: list[int] = field(repr=False)


def _pads(char: str) -> bool:
    """mT5's ``_pad_punctuation`` pads everything but ``_``, whitespace, numbers, letters, marks."""
    if char == "_" or char.isspace():
        return False
    return unicodedata.category(char)[0] not in ("N", "L", "M")


def pad_punctuation(text: str) -> Padded:
    """``r"([^_\\s\\p{N}\\p{L}\\p{M}])" -> r" \\1 "``, then whitespace collapsed to one space
    (as in google-research/multilingual-t5 ``preprocessors._pad_punctuation``)."""
    chars: list[str] = []
    origin: list[int] = []

    def put(char: str, index: int) -> None:
        if char.isspace():
            if chars and chars[-1] == " ":
                return
            char = " "
        chars.append(char)
        origin.append(index)

    for i, char in enumerate(text):
        if _pads(char):
            put(" ", i)
            put(char, i)
            put(" ", i)
        else:
            put(char, i)
    return Padded("".join(chars), origin)


def parse_answer(text: str, context: str, padded: bool = False) -> T2TText:
    """A generated answer; with ``padded`` (the checkpoint saw punctuation-padded
    inputs) it is mapped back to the original context characters when found there,
    so ``U . S .`` scores as ``U.S.``. Never unparsable: free text is an answer."""
    answer = text.strip()
    problems: tuple[str, ...] = ()
    if padded and answer:
        squeezed = " ".join(answer.split())
        pad = pad_punctuation(context)
        at = pad.text.find(squeezed)
        if at >= 0:
            start, end = pad.origin[at], pad.origin[at + len(squeezed) - 1] + 1
            answer = context[start:end]
        else:
            problems = ("answer not found in the padded context; kept as generated",)
    return T2TText(answer, ParseInfo("ok", text, problems))
