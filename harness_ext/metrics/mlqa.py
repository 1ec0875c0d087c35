"""MLQA exact match and F1: SQuAD's metric with language-aware normalisation.

Same rules as MLQA's official ``mlqa_evaluation_v1.py`` (``third_party/evaluate_mlqa.py``
in XTREME), which differs from SQuAD's in three ways, all needed to reproduce the
published MLQA numbers:

* punctuation is every Unicode character whose category starts with ``P`` plus
  ASCII ``string.punctuation`` (so ``，`` ``。`` ``«`` ``»`` ``¿`` go too);
* articles are removed per language (none for hi and zh); for ar the official
  pattern ``'\\sال^|ال'`` can only ever match its second branch, so every ``ال`` is
  replaced by a space, also inside words (``مال`` -> ``م``) -- reproduced on purpose;
* zh is segmented "mixed": every CJK character in U+4E00..U+9FA5 (the range the
  official script uses, not the whole block) is its own token, other runs are split
  on whitespace.

The answer language is the context language (``lang``), as in XTREME.
"""

from __future__ import annotations

import re
import string
import unicodedata
from functools import lru_cache
from typing import Mapping, Sequence

from harness_ext.metrics.squad import best_over_golds, corpus_scores, token_f1

WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MIXED_SEGMENTATION_LANGS = ("zh",)
LANGUAGES = WHITESPACE_LANGS + MIXED_SEGMENTATION_LANGS

_ARTICLES: dict[str, re.Pattern[str] | None] = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "hi": None,
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "zh": None,
}
_ASCII_PUNCTUATION = frozenset(string.punctuation)
_CJK = re.compile(r"[\u4e00-\u9fa5]")


@lru_cache(maxsize=4096)
def is_punctuation(ch: str) -> bool:
    """Unicode category P* or ASCII punctuation (the official ``PUNCT`` set, computed per character)."""
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(
            f"MLQA normalisation is defined for {', '.join(LANGUAGES)}; got lang={lang!r}"
        )


def _remove_articles(text: str, lang: str) -> str:
    if lang == "ar":
        return text.replace("ال", " ")
    pattern = _ARTICLES[lang]
    return pattern.sub(" ", text) if pattern is not None else text


def mixed_segmentation(text: str) -> list[str]:
    """Tokens for zh: each CJK character (or punctuation mark) alone, whitespace split elsewhere."""
    tokens: list[str] = []
    run = ""
    for ch in text:
        if _CJK.match(ch) or is_punctuation(ch):
            tokens.extend(run.split())
            run = ""
            tokens.append(ch)
        else:
            run += ch
    tokens.extend(run.split())
    return tokens


def normalize_answer(text: str, lang: str) -> str:
    """Lower-case, drop Unicode punctuation, drop ``lang``'s articles, re-join the tokens with spaces."""
    _check_lang(lang)
    text = "".join(ch for ch in text.lower() if not is_punctuation(ch))
    text = _remove_articles(text, lang)
    tokens = mixed_segmentation(text) if lang in MIXED_SEGMENTATION_LANGS else text.split()
    return " ".join(t for t in tokens if t.strip())


def _em_unit(prediction: str, gold: str, lang: str) -> float:
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def _f1_unit(prediction: str, gold: str, lang: str) -> float:
    return token_f1(normalize_answer(prediction, lang).split(), normalize_answer(gold, lang).split())


def exact_match(prediction: str, golds: Sequence[str], lang: str) -> float:
    """100.0 when the prediction matches some gold answer after ``lang``'s normalisation, else 0.0."""
    return 100.0 * best_over_golds(lambda p, g: _em_unit(p, g, lang), prediction, golds)


def f1(prediction: str, golds: Sequence[str], lang: str) -> float:
    """Best token F1 (0-100) after ``lang``'s normalisation (zh: per-character tokens)."""
    return 100.0 * best_over_golds(lambda p, g: _f1_unit(p, g, lang), prediction, golds)


def mlqa_scores(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], lang: str
) -> dict[str, float]:
    """Corpus EM and F1 (0-100) of ``{id: answer}`` against ``{id: [gold answers]}`` in ``lang``."""
    _check_lang(lang)
    return corpus_scores(
        predictions, golds, lambda p, g: _em_unit(p, g, lang), lambda p, g: _f1_unit(p, g, lang)
    )
