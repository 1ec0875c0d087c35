"""A CoNLL-U reader that turns UD treebanks into XTREME's UD-POS sentences.

XTREME does not read CoNLL-U directly: ``scripts/download_data.sh`` first runs
``third_party/ud-conversion-tools/conllu_to_conll.py --lang <xx>
--replace_subtokens_with_fused_forms`` on every treebank, then
``utils_preprocess.py udpos_preprocess`` reads the result. This module does the
same in one pass, so local UD files give the same words and tags as the official
``udpos/test-<lang>.tsv`` files:

* comment lines (``#``) are skipped;
* empty nodes (``24.1``, enhanced UD) are skipped: they are not surface words;
* a multi-word token (``11-12 du`` over ``de`` + ``le``) becomes ONE word, its
  surface form, tagged with the UPOS of its *head* sub-token (see
  :func:`multiword_head`);
* ``udpos_preprocess`` then removes U+200C (zero-width non-joiner) and ASCII
  spaces inside a word (``1 000`` -> ``1000``) and drops sentences whose forms
  are hidden (``_``, e.g. treebanks distributed without text): we do the same
  and *count* every dropped sentence (see :class:`ReadReport`).

What "head" means in ``conllu_to_conll``
----------------------------------------
The converter builds one directed graph per sentence with an edge
``HEAD -> ID`` for the basic tree *and* ``h -> ID`` for every enhanced
dependency ``h:rel`` in DEPS whose ``h`` is a plain integer. For a multi-word
token spanning ``start..end`` it counts, for every sub-token, how many nodes
(the root 0 included) have a path to it (``networkx.ancestors``):

1. the sub-token with strictly the fewest ancestors (the one nearest the root)
   is the head;
2. on a tie, among the tied sub-tokens (in sentence order), the first whose
   UPOS ranks highest in a per-language precedence list (:data:`POS_PRECEDENCE`;
   ``es``, ``fr``, ``it`` have their own, every other language the default).

The original raises ``ValueError`` when a tied sub-token's UPOS is missing from
the list (e.g. ``SYM``, or ``CCONJ`` under the French list, which still says
``CONJ``); we rank such tags after every listed one instead of failing. That is
the only place we differ, and the released XTREME data was produced without
hitting it.

Malformed input raises :class:`~xtreme_tasks.data.DataError` naming the file and
line: wrong column count, bad IDs, ids out of order, a multi-word range whose
sub-tokens are missing, a UPOS outside the 17 UD tags, bytes that are not UTF-8, a
last sentence without its closing blank line (a truncated file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from xtreme_tasks.data import DataError
from xtreme_tasks.data.textio import read_lines

N_COLUMNS = 10
_INT_ID = re.compile(r"[1-9][0-9]*")
_RANGE_ID = re.compile(r"([1-9][0-9]*)-([1-9][0-9]*)")
_EMPTY_ID = re.compile(r"[0-9]+\.[1-9][0-9]*")

#: UPOS precedence used to break ties between equally high sub-tokens of a
#: multi-word token, as ``conllu_to_conll.py`` defines it (highest first).
POS_PRECEDENCE: dict[str, tuple[str, ...]] = {
    "default": (
        "VERB", "NOUN", "PROPN", "PRON", "ADJ", "NUM", "ADV", "INTJ", "AUX",
        "ADP", "DET", "PART", "CCONJ", "SCONJ", "X", "PUNCT",
    ),
    "es": ("VERB", "AUX", "PRON", "ADP", "DET"),
    "fr": ("VERB", "AUX", "PRON", "NOUN", "ADJ", "ADV", "ADP", "DET", "PART", "SCONJ", "CONJ"),
    "it": ("VERB", "AUX", "ADV", "PRON", "ADP", "DET", "INTJ"),
}


@dataclass
class Token:
    """One integer-ID line of a CoNLL-U sentence (the fields the conversion needs)."""

    id: int
    form: str
    upos: str
    #: basic head (0 = root) or None when the HEAD column is ``_``
    head: int | None
    #: integer heads of the enhanced dependencies in DEPS
    enhanced_heads: tuple[int, ...]
    line_no: int


@dataclass
class MultiwordToken:
    """A ``start-end`` range line: one surface form over several syntactic words."""

    start: int
    end: int
    form: str
    line_no: int


@dataclass
class Sentence:
    """One CoNLL-U sentence as read, before the multi-word conversion."""

    path: Path
    #: line of the first token (or comment) of the sentence, 1-based
    line_no: int
    sent_id: str | None
    tokens: list[Token] = field(default_factory=list)
    multiword: list[MultiwordToken] = field(default_factory=list)
    #: number of empty nodes (``n.m`` ids) that were skipped
    empty_nodes: int = 0


@dataclass
class Skip:
    """A sentence that was read but not kept, and why."""

    where: str
    reason: str


@dataclass
class ReadReport:
    """Counts of what a reader skipped, so that nothing is dropped silently."""

    skipped: list[Skip] = field(default_factory=list)
    empty_nodes: int = 0
    multiword_tokens: int = 0

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for skip in self.skipped:
            reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
        parts = [f"{n} sentence(s) skipped: {reason}" for reason, n in sorted(reasons.items())]
        return "; ".join(parts) if parts else "no sentence skipped"


def _parse_heads(value: str, where: str) -> int | None:
    if value == "_":
        return None
    if not value.isdigit():
        raise DataError(f"{where}: HEAD column {value!r} is not an integer or '_'")
    return int(value)


def _parse_enhanced(value: str) -> tuple[int, ...]:
    """Integer heads of ``h:rel|h:rel`` (heads like ``8.1`` are skipped, as the converter does)."""
    if value == "_":
        return ()
    heads = []
    for pair in value.split("|"):
        head = pair.split(":", 1)[0]
        if head.isdigit():
            heads.append(int(head))
    return tuple(heads)


def _check_sentence(sentence: Sentence) -> None:
    """IDs must run 1..n and every multi-word range must cover tokens that follow it."""
    for expected, token in enumerate(sentence.tokens, 1):
        if token.id != expected:
            raise DataError(
                f"{sentence.path}:{token.line_no}: token id {token.id} where {expected} was expected "
                f"(CoNLL-U word ids run 1, 2, 3, ... within a sentence)"
            )
    n = len(sentence.tokens)
    previous_end = 0
    for mwt in sentence.multiword:
        if not (mwt.start < mwt.end <= n) or mwt.start <= previous_end:
            raise DataError(
                f"{sentence.path}:{mwt.line_no}: multi-word token {mwt.start}-{mwt.end} {mwt.form!r} does not "
                f"cover a valid, non-overlapping range of the sentence's {n} words"
            )
        previous_end = mwt.end


def read_conllu(path: Path, valid_upos: Sequence[str]) -> Iterator[Sentence]:
    """Yield the sentences of one CoNLL-U file; malformed lines raise DataError(file:line).

    A byte-order mark is dropped and bytes that are not UTF-8 are refused with file:line
    (:mod:`xtreme_tasks.data.textio`). A file whose last sentence is not closed by a blank
    line is refused as truncated: CoNLL-U ends every sentence with one, and a file cut at a
    line boundary would otherwise give a partial last sentence (the official
    ``udpos_preprocess`` silently drops such a sentence instead).
    """
    valid = set(valid_upos)
    sentence: Sentence | None = None
    text = read_lines(path, "CoNLL-U file")
    line_no = 0
    for line_no, line in enumerate(text.lines, 1):
        where = f"{path}:{line_no}"
        if not line.strip():
            if sentence is not None:
                _check_sentence(sentence)
                yield sentence
            sentence = None
            continue
        if sentence is None:
            sentence = Sentence(path=path, line_no=line_no, sent_id=None)
        if line.startswith("#"):
            match = re.match(r"#\s*sent_id\s*=\s*(.*\S)", line)
            if match:
                sentence.sent_id = match.group(1)
            continue
        columns = line.split("\t")
        if len(columns) != N_COLUMNS:
            raise DataError(
                f"{where}: {len(columns)} tab-separated columns, CoNLL-U has {N_COLUMNS} "
                f"(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC)"
                + ("; the file ends here without a line end: it looks truncated, re-extract it"
                   if line_no == len(text.lines) and not text.ends_with_newline else "")
            )
        token_id, form, upos = columns[0], columns[1], columns[3]
        if _EMPTY_ID.fullmatch(token_id):
            sentence.empty_nodes += 1
            continue
        match = _RANGE_ID.fullmatch(token_id)
        if match:
            sentence.multiword.append(MultiwordToken(int(match.group(1)), int(match.group(2)), form, line_no))
            continue
        if not _INT_ID.fullmatch(token_id):
            raise DataError(f"{where}: ID {token_id!r} is not a word id (n), a range (n-m) or an empty node (n.m)")
        if upos not in valid:
            raise DataError(
                f"{where}: UPOS {upos!r} is not one of the 17 UD tags ({' '.join(valid_upos)})"
            )
        sentence.tokens.append(Token(
            id=int(token_id), form=form, upos=upos,
            head=_parse_heads(columns[6], where),
            enhanced_heads=_parse_enhanced(columns[8]),
            line_no=line_no,
        ))
    if sentence is not None:
        raise DataError(
            f"{path}:{line_no}: the file ends inside the sentence that starts at line {sentence.line_no} "
            f"(no blank line after its last token): it looks truncated. CoNLL-U closes every sentence "
            f"with a blank line; re-extract the file from the UD release"
        )


def _ancestor_counts(sentence: Sentence, nodes: Iterable[int]) -> dict[int, int]:
    """How many nodes reach each of ``nodes`` in the basic + enhanced graph (the converter's depth)."""
    parents: dict[int, set[int]] = {}
    for token in sentence.tokens:
        heads = set(token.enhanced_heads)
        if token.head is not None:
            heads.add(token.head)
        heads.discard(token.id)
        parents[token.id] = heads
    counts = {}
    for node in nodes:
        seen: set[int] = set()
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for parent in parents.get(current, ()):
                if parent not in seen:
                    seen.add(parent)
                    frontier.append(parent)
        seen.discard(node)
        counts[node] = len(seen)
    return counts


def multiword_head(sentence: Sentence, mwt: MultiwordToken, lang: str) -> Token:
    """The sub-token whose UPOS the fused form takes (see the module docstring)."""
    span = sentence.tokens[mwt.start - 1 : mwt.end]
    counts = _ancestor_counts(sentence, (t.id for t in span))
    fewest = min(counts.values())
    highest = [t for t in span if counts[t.id] == fewest]
    if len(highest) == 1:
        return highest[0]
    precedence = POS_PRECEDENCE.get(lang, POS_PRECEDENCE["default"])
    rank = {tag: i for i, tag in enumerate(precedence)}
    # min() keeps the first of equal ranks, like the converter's strict '<' scan
    return min(highest, key=lambda t: rank.get(t.upos, len(precedence)))


def fuse(sentence: Sentence, lang: str) -> tuple[list[str], list[str]]:
    """Words and tags of a sentence with every multi-word token replaced by its surface form."""
    starts = {mwt.start: mwt for mwt in sentence.multiword}
    words: list[str] = []
    tags: list[str] = []
    i = 1
    n = len(sentence.tokens)
    while i <= n:
        mwt = starts.get(i)
        if mwt is not None:
            words.append(mwt.form)
            tags.append(multiword_head(sentence, mwt, lang).upos)
            i = mwt.end + 1
        else:
            token = sentence.tokens[i - 1]
            words.append(token.form)
            tags.append(token.upos)
            i += 1
    return words, tags


def clean_word(word: str) -> str:
    """``udpos_preprocess``'s clean-up: drop U+200C and ASCII spaces inside a word."""
    return "".join(word.replace("\u200c", "").split(" "))


def hidden_forms(words: Sequence[str]) -> bool:
    """True for a sentence XTREME drops: (almost) every form is ``_`` (text not distributed)."""
    hidden = sum(word == "_" for word in words)
    return hidden > 0 and hidden >= len(words) - 1


def xtreme_sentences(
    path: Path, lang: str, valid_upos: Sequence[str], report: ReadReport
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``(where, words, tags)`` per kept sentence, as XTREME's UD-POS files hold them."""
    for sentence in read_conllu(path, valid_upos):
        where = f"{path}:{sentence.line_no}"
        report.empty_nodes += sentence.empty_nodes
        report.multiword_tokens += len(sentence.multiword)
        if not sentence.tokens:
            report.skipped.append(Skip(where, "no words (only comments or empty nodes)"))
            continue
        words, tags = fuse(sentence, lang)
        if hidden_forms(words):
            report.skipped.append(Skip(where, "word forms hidden as '_' (dropped by XTREME's udpos_preprocess)"))
            continue
        yield where, [clean_word(w) for w in words], tags


# --------------------------------------------------------------------------------------
# Two-column CoNLL files (``word<TAB>tag``, a blank line between sentences): the layout of
# XTREME's ``udpos/<split>-<lang>.tsv`` and ``panx/<split>-<lang>.tsv``.


def read_word_tag_tsv(
    path: Path, valid_tags: Sequence[str], *, what: str, strip_prefix: str | None = None
) -> Iterator[tuple[str, list[str], list[str]]]:
    """``(where, words, tags)`` per sentence of a ``word<TAB>tag`` file.

    Blank lines (and ``-DOCSTART-`` lines, which XTREME's reader also treats as
    boundaries) only separate sentences, so a run of them is not an "empty
    sentence". A line with one column is a file whose labels were stripped (the
    official download script does this for test files): it is refused with the
    fix, since nothing could be scored. ``strip_prefix`` (e.g. ``"en:"``) is
    removed from every word when the file's first word carries it (PAN-X's raw
    files); then every word must carry it.
    """
    valid = set(valid_tags)
    words: list[str] = []
    tags: list[str] = []
    start = 0
    prefixed: bool | None = None
    for line_no, line in enumerate(read_lines(path, what).lines, 1):
        where = f"{path}:{line_no}"
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                yield f"{path}:{start}", words, tags
            words, tags = [], []
            continue
        columns = line.split("\t")
        if len(columns) == 1:
            raise DataError(
                f"{where}: one column (the word) and no tag. The official XTREME download script "
                f"strips test labels; write the labelled file ({what}: word<TAB>tag, a blank line "
                f"between sentences) or unset XTREME_DATA_DIR to read the hub copy"
            )
        if len(columns) != 2:
            raise DataError(f"{where}: expected 2 tab-separated columns (word, tag), got {len(columns)}")
        word, tag = columns[0], columns[1].strip()
        if strip_prefix is not None:
            if prefixed is None:
                prefixed = word.startswith(strip_prefix)
            if prefixed:
                if not word.startswith(strip_prefix):
                    raise DataError(
                        f"{where}: word {word!r} lacks the {strip_prefix!r} prefix that the file's first "
                        f"word has (raw PAN-X files prefix every word with its language)"
                    )
                word = word[len(strip_prefix):]
        if tag not in valid:
            raise DataError(f"{where}: tag {tag!r} is not one of {' '.join(valid_tags)} ({what})")
        if not words:
            start = line_no
        words.append(word)
        tags.append(tag)
    if words:
        yield f"{path}:{start}", words, tags
