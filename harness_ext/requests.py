"""Request kinds beyond lm-eval's four.

lm-eval groups ``Instance``s by ``request_type`` and calls ``getattr(lm, request_type)``;
nothing checks the name, so each kind here is answered by the method of the same
name on :class:`harness_ext.adapters.xtreme_lm.XtremeLM`. ``tests/test_dispatch.py``
fails if a future lm-eval stops dispatching them this way.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
from lm_eval.api.instance import Instance

RequestKind = Literal["classify", "tag", "extract_span", "embed", "choose"]
REQUEST_KINDS: tuple[str, ...] = ("classify", "tag", "extract_span", "embed", "choose")

#: the model head each kind needs from an encoder checkpoint
HEAD_FOR_KIND: dict[str, str] = {
    "classify": "sequence-classification",
    "tag": "token-classification",
    "extract_span": "question-answering",
    "embed": "encoder",
    "choose": "multiple-choice",
}


def make_instance(kind: str, doc: dict, arguments: tuple, metadata: tuple, idx: int = 0) -> Instance:
    """Build an ``Instance`` of one of our kinds (``arguments[0]`` must be a str)."""
    if kind not in REQUEST_KINDS:
        raise ValueError(f"unknown request kind {kind!r}; known: {REQUEST_KINDS}")
    if not isinstance(arguments[0], str):
        raise TypeError("Instance.arguments[0] must be a string (lm-eval hashes it when logging samples)")
    return Instance(request_type=kind, doc=doc, arguments=arguments, idx=idx, metadata=metadata)  # type: ignore[arg-type]


def classify_args(text_a: str, text_b: str | None, labels: tuple[str, ...]) -> tuple[Any, ...]:
    return (text_a, text_b or "", tuple(labels))


def tag_args(words: list[str], tagset: tuple[str, ...]) -> tuple[Any, ...]:
    return (" ".join(words), tuple(words), tuple(tagset))


def span_args(question: str, context: str) -> tuple[Any, ...]:
    return (question, context)


def embed_args(text: str, max_tokens: int | None = None) -> tuple[Any, ...]:
    """``(text,)``, or ``(text, max_tokens)`` when the task fixes the input length (LAReQA's
    96/256 tokens, Mewsli-X's 64, as the official scripts truncate); adapters cap their own
    limit at it."""
    return (text,) if max_tokens is None else (text, int(max_tokens))


def embed_cap(args: tuple) -> int | None:
    """The token cap an ``embed`` request carries (None: the adapter's own limit)."""
    return int(args[1]) if len(args) > 1 and args[1] is not None else None


def by_cap(requests: list) -> dict[int | None, list[int]]:
    """Positions of ``embed`` requests grouped by the token cap they carry (each adapter embeds a group at once)."""
    groups: dict[int | None, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(embed_cap(tuple(request.args)), []).append(i)
    return groups


def vector_digest(vector: Any) -> str:
    """``384-d sha1:1a2b3c4d``: enough to tell two vectors apart in a log, 40 bytes instead of ~12 kB."""
    array = np.ascontiguousarray(vector, dtype=np.float32)
    return f"{array.shape[-1] if array.ndim else 1}-d sha1:{hashlib.sha1(array.tobytes()).hexdigest()[:8]}"


class EmbedVector(np.ndarray):
    """An ``embed`` response: a float32 vector that prints as its size and a digest.

    lm-eval's ``--log_samples`` writes every response with ``str()``; a plain array would
    dump every number of every vector (a Mewsli-X run holds a million). Computation sees an
    ordinary array (``np.asarray`` drops the subclass).
    """

    def __str__(self) -> str:
        digest = hashlib.sha1(np.ascontiguousarray(self).tobytes()).hexdigest()[:12]
        return f"<{self.shape[-1] if self.ndim else 0}-d {self.dtype} vector sha1:{digest}>"

    __repr__ = __str__


def embed_response(vector: Any) -> EmbedVector:
    """Wrap one vector as the response of an ``embed`` request (see :class:`EmbedVector`)."""
    return np.asarray(vector, dtype=np.float32).view(EmbedVector)


def choose_args(context: str, choices: tuple[str, ...], labels: tuple[str, ...]) -> tuple[Any, ...]:
    """A choice among the document's own candidates: ``labels[i]`` names ``choices[i]``; the
    response is the chosen label (XCOPA: ``choice1`` / ``choice2``)."""
    if len(choices) != len(labels):
        raise ValueError(f"{len(choices)} choices but {len(labels)} labels")
    return (context, tuple(choices), tuple(labels))
