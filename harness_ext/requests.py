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

RequestKind = Literal["classify", "tag", "extract_span", "embed"]
REQUEST_KINDS: tuple[str, ...] = ("classify", "tag", "extract_span", "embed")

#: the model head each kind needs from an encoder checkpoint
HEAD_FOR_KIND: dict[str, str] = {
    "classify": "sequence-classification",
    "tag": "token-classification",
    "extract_span": "question-answering",
    "embed": "encoder",
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


def embed_args(text: str) -> tuple[Any, ...]:
    return (text,)


def vector_digest(vector: Any) -> str:
    """``384-d sha1:1a2b3c4d``: enough to tell two vectors apart in a log, 40 bytes instead of ~12 kB."""
    array = np.ascontiguousarray(vector, dtype=np.float32)
    return f"{array.shape[-1] if array.ndim else 1}-d sha1:{hashlib.sha1(array.tobytes()).hexdigest()[:8]}"


class Embedding(np.ndarray):
    """An ``embed`` response: a plain vector whose text form is a digest. ``--log_samples``
    writes ``str()`` of every response: 36 Tatoeba languages at ``--limit 300`` wrote 266 MB
    of vector text."""

    def __str__(self) -> str:
        return f"<vector {vector_digest(self)}>"

    __repr__ = __str__

    def __reduce__(self):  # pickles (multi-rank gathering, request cache) as a plain array
        return (np.asarray, (np.asarray(self),))


def embedding_responses(vectors: list) -> list:
    """``embed`` responses as :class:`Embedding` views (the same numbers, no copy)."""
    return [v.view(Embedding) if isinstance(v, np.ndarray) else v for v in vectors]
