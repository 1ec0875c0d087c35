"""Request kinds beyond lm-eval's four.

lm-eval groups ``Instance``s by ``request_type`` and calls ``getattr(lm, request_type)``;
nothing checks the name, so each kind here is answered by the method of the same
name on :class:`harness_ext.adapters.xtreme_lm.XtremeLM`. ``tests/test_dispatch.py``
fails if a future lm-eval stops dispatching them this way.
"""

from __future__ import annotations

from typing import Any, Literal

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


def embed_args(text: str) -> tuple[Any, ...]:
    return (text,)


def choose_args(context: str, choices: tuple[str, ...], labels: tuple[str, ...]) -> tuple[Any, ...]:
    """A choice among the document's own candidates: ``labels[i]`` names ``choices[i]``; the
    response is the chosen label (XCOPA: ``choice1`` / ``choice2``)."""
    if len(choices) != len(labels):
        raise ValueError(f"{len(choices)} choices but {len(labels)} labels")
    return (context, tuple(choices), tuple(labels))
