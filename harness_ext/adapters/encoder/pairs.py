"""Text pairs as the official XTREME scripts encode them: ``[CLS] a [SEP] b [SEP]`` /
``<s> a </s></s> b </s>`` read from the tokenizer, and transformers 2.x's ``longest_first``
truncation (``encode_plus(text_a, text_b, max_length=128)`` in ``run_classify.py``).

Why not the tokenizer's own ``truncation=True``: the Rust ``longest_first`` breaks ties the
other way (two equally long texts cut to an odd budget keep one more token of the SECOND
text; transformers 2.x, which XTREME ran, keeps one more of the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class PairTemplate:
    """Special tokens and token types around (question, context), read from the tokenizer."""

    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    #: token type of prefix, question, middle, context, suffix (None: no token_type_ids)
    types: tuple[list[int], int, list[int], int, list[int]] | None
    keys: tuple[str, ...]


def pair_template(tokenizer: Any) -> PairTemplate | None:
    """``[CLS] q [SEP] c [SEP]`` / ``<s> q </s></s> c </s>``: the pair layout, or None if it is not of that form."""
    if getattr(tokenizer, "truncation_side", "right") != "right":
        return None
    enc = tokenizer("a", "b")
    ids, seq = enc["input_ids"], enc.sequence_ids(0)
    q = [i for i, x in enumerate(seq) if x == 0]
    c = [i for i, x in enumerate(seq) if x == 1]
    if not q or not c or q != list(range(q[0], q[-1] + 1)) or c != list(range(c[0], c[-1] + 1)) or q[-1] >= c[0]:
        return None
    if len(ids) - len(q) - len(c) != tokenizer.num_special_tokens_to_add(pair=True):
        return None
    types = None
    if "token_type_ids" in enc:
        t = enc["token_type_ids"]
        if len({t[i] for i in q}) != 1 or len({t[i] for i in c}) != 1:
            return None
        types = (t[: q[0]], t[q[0]], t[q[-1] + 1 : c[0]], t[c[0]], t[c[-1] + 1 :])
    keys = tuple(k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc)
    return PairTemplate(ids[: q[0]], ids[q[-1] + 1 : c[0]], ids[c[-1] + 1 :], types, keys)


def longest_first(n_a: int, n_b: int, budget: int) -> tuple[int, int]:
    """Lengths kept of two texts of ``n_a`` and ``n_b`` tokens: one token at a time off the longer,
    off the second on a tie, until ``budget`` is met (transformers 2.x ``truncate_sequences``)."""
    excess = n_a + n_b - budget
    if excess <= 0:
        return n_a, n_b
    if n_a > n_b:
        cut = min(excess, n_a - n_b)
        n_a, excess = n_a - cut, excess - cut
    else:
        cut = min(excess, n_b - n_a)
        n_b, excess = n_b - cut, excess - cut
    return n_a - excess // 2, n_b - (excess + 1) // 2


def encode_pairs(tokenizer: Any, template: PairTemplate, firsts: Sequence[str], seconds: Sequence[str],
                 max_length: int) -> list[dict[str, list[int]]]:
    """``encode_plus(a, b, max_length)`` of every pair, as transformers 2.x builds it (no padding)."""
    a_ids = tokenizer(list(firsts), add_special_tokens=False)["input_ids"] if firsts else []
    b_ids = tokenizer(list(seconds), add_special_tokens=False)["input_ids"] if seconds else []
    budget = max_length - len(template.prefix) - len(template.middle) - len(template.suffix)
    rows = []
    for a, b in zip(a_ids, b_ids):
        n_a, n_b = longest_first(len(a), len(b), budget)
        a, b = a[: max(n_a, 0)], b[: max(n_b, 0)]
        row = {"input_ids": template.prefix + a + template.middle + b + template.suffix}
        if template.types is not None:
            t_pre, t_a, t_mid, t_b, t_suf = template.types
            row["token_type_ids"] = t_pre + [t_a] * len(a) + t_mid + [t_b] * len(b) + t_suf
        rows.append(row)
    return rows
