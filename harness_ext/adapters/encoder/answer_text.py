"""The text of a predicted QA span, recovered as the official XTREME QA scripts recover it.

XTREME's ``third_party/run_squad.py`` turns the best (start, end) token pair into text
with transformers' ``compute_predictions_logits`` (the version XTREME pins):

1. the context is split into words at ``" \\t\\r\\n"`` and U+202F only (``SquadExample``);
   each sub-word belongs to the word it was cut from;
2. ``tok_text``: the span's sub-words joined back (WordPiece: ``" ".join`` then ``" ##"``
   removed; SentencePiece: ``"".join`` then ``"▁"`` -> space; byte-level BPE: bytes
   decoded), stripped, whitespace runs collapsed to one space;
3. ``orig_text``: the whole words from the start word to the end word, joined by ONE space;
4. ``get_final_text``: ``orig_text`` is run through BERT's basic tokenizer (punctuation
   and CJK characters split off; lower-cased and accents stripped for uncased models),
   ``tok_text`` is looked up in it and, if found and the two agree character for
   character once spaces are dropped, the matching piece of ``orig_text`` is the answer;
   otherwise (an ``[UNK]`` in the span, a normalised character, ...) the answer is the
   whole of ``orig_text``.

So an answer can start or end inside a word only where punctuation splits it, runs of
whitespace inside it become one space, and it need not be a substring of the context.
The ``offsets`` alternative (``answer_text=offsets``) cuts the context at the sub-words'
character offsets instead. See docs/official_pipeline.md.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

#: ``SquadExample``'s word separators (``processors/squad.py`` ``_is_whitespace``)
SQUAD_WHITESPACE = frozenset(" \t\r\n\u202f")


@dataclass(frozen=True)
class Words:
    """A context split into words as ``SquadExample`` splits it."""

    words: list[str]
    starts: list[int]  # character offset of each word

    @classmethod
    def of(cls, context: str) -> "Words":
        words: list[str] = []
        starts: list[int] = []
        previous_space = True
        for i, char in enumerate(context):
            if char in SQUAD_WHITESPACE:
                previous_space = True
                continue
            if previous_space:
                words.append(char)
                starts.append(i)
            else:
                words[-1] += char
            previous_space = False
        return cls(words, starts)

    def word_at(self, char: int) -> int:
        """The word holding the first non-separator character at or after ``char`` (a
        SentencePiece ``▁`` piece whose offset covers the space belongs to the next word)."""
        index = bisect.bisect_right(self.starts, char) - 1
        if index < 0 or char >= self.starts[index] + len(self.words[index]):
            index += 1
        return min(max(index, 0), len(self.words) - 1)


@lru_cache(maxsize=4)
def _basic_tokenizer(lower: bool) -> tuple[Any, Any]:
    from tokenizers import normalizers, pre_tokenizers

    return (normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lower),
            pre_tokenizers.BertPreTokenizer())


def basic_tokens(text: str, lower: bool) -> list[str]:
    """BERT's basic tokenizer (clean, CJK split, lower-case + strip accents, split on
    whitespace and punctuation), as ``get_final_text`` runs it; from the ``tokenizers`` library."""
    normalizer, pre_tokenizer = _basic_tokenizer(lower)
    return [piece for piece, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]


def _strip_spaces(text: str) -> tuple[str, list[int]]:
    kept = [i for i, char in enumerate(text) if char != " "]
    return "".join(text[i] for i in kept), kept


def final_text(pred_text: str, orig_text: str, lower: bool) -> str:
    """``get_final_text``: ``pred_text`` projected back onto ``orig_text``, else all of ``orig_text``."""
    tok_text = " ".join(basic_tokens(orig_text, lower))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = _strip_spaces(orig_text)
    tok_ns, tok_map = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_to_ns = {s: ns for ns, s in enumerate(tok_map)}
    if start not in tok_to_ns or end not in tok_to_ns:  # the span starts or ends on a space
        return orig_text
    return orig_text[orig_map[tok_to_ns[start]] : orig_map[tok_to_ns[end]] + 1]


@dataclass(frozen=True)
class Detokenizer:
    """``tokenizer.convert_tokens_to_string`` as the slow tokenizers XTREME ran define it
    (the fast ones' decoders also clean up spaces before punctuation, which the official code did not)."""

    kind: str  # wordpiece | metaspace | decoder | tokenizer
    marker: str = ""
    decoder: Any = None
    tokenizer: Any = None

    @classmethod
    def of(cls, tokenizer: Any) -> "Detokenizer":
        backend = getattr(tokenizer, "backend_tokenizer", None)
        model = getattr(backend, "model", None)
        decoder = getattr(backend, "decoder", None)
        if type(model).__name__ == "WordPiece":
            return cls("wordpiece", marker=model.continuing_subword_prefix)
        if type(decoder).__name__ == "Metaspace":
            return cls("metaspace", marker=decoder.replacement)
        if type(decoder).__name__ == "ByteLevel":
            return cls("decoder", decoder=decoder)
        return cls("tokenizer", tokenizer=tokenizer)

    def __call__(self, tokens: Sequence[str]) -> str:
        if self.kind == "wordpiece":
            return " ".join(tokens).replace(" " + self.marker, "").strip()
        if self.kind == "metaspace":
            return "".join(tokens).replace(self.marker, " ").strip()
        if self.kind == "decoder":
            return self.decoder.decode(list(tokens))
        return self.tokenizer.convert_tokens_to_string(list(tokens))


def lower_cases(tokenizer: Any) -> bool:
    """Whether the model is uncased (run_squad's ``--do_lower_case``, which XTREME sets for uncased models)."""
    flag = getattr(tokenizer, "do_lower_case", None)
    if flag is not None:
        return bool(flag)
    normalizer = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    return bool(getattr(normalizer, "lowercase", False))


class OfficialText:
    """Answer text of (window ids, start, end, offsets) as ``compute_predictions_logits`` gives it."""

    def __init__(self, tokenizer: Any, lower: bool | None = None) -> None:
        self.tokenizer = tokenizer
        self.detokenize = Detokenizer.of(tokenizer)
        self.lower = lower_cases(tokenizer) if lower is None else lower
        self._words: dict[str, Words] = {}

    def words(self, context: str) -> Words:
        found = self._words.get(context)
        if found is None:
            if len(self._words) > 64:
                self._words.clear()
            found = self._words[context] = Words.of(context)
        return found

    def __call__(self, context: str, token_ids: Sequence[int], first_char: int, last_token_char: int) -> str:
        """``token_ids``: the span's sub-words; ``first_char``/``last_token_char``: the character
        offsets where the first and the last of them start in ``context``."""
        words = self.words(context)
        if not words.words:
            return ""
        first, last = words.word_at(first_char), words.word_at(last_token_char)
        orig_text = " ".join(words.words[first : last + 1])
        tok_text = " ".join(self.detokenize(self.tokenizer.convert_ids_to_tokens(list(token_ids))).split())
        return final_text(tok_text, orig_text, self.lower)
