"""Shared types of the checkpoint backends: what a loaded checkpoint is, the error
they raise, and the registry that maps what is on disk to a loader.

Kept apart from ``__init__`` so backend modules can import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

if TYPE_CHECKING:  # torch/transformers are heavy; only needed for type names here
    import torch
    from transformers import PreTrainedTokenizerBase

Head = Literal["sequence-classification", "token-classification", "question-answering", "multiple-choice",
               "encoder", "seq2seq"]
HEADS: tuple[str, ...] = (
    "sequence-classification",
    "token-classification",
    "question-answering",
    "multiple-choice",
    "encoder",
    "seq2seq",
)
TASK_HEADS: frozenset[str] = frozenset(HEADS[:4])


class CheckpointError(ValueError):
    """A checkpoint cannot be used as asked; the message names the file and what was expected."""


@dataclass
class LoadedCheckpoint:
    """A model ready to answer requests, with the tokenizer that belongs to it."""

    model: "torch.nn.Module"  # eval mode, on the requested device/dtype
    tokenizer: "PreTrainedTokenizerBase"  # fast where one exists (offset mappings)
    source: str  # path or hub id as given
    backend: str
    head: str
    extra: dict[str, Any] = field(default_factory=dict)

    def id2label(self) -> dict[int, str]:
        """Label names by class index, as the checkpoint's config stores them."""
        config = getattr(self.model, "config", None)
        mapping = getattr(config, "id2label", None) or {}
        return {int(k): str(v) for k, v in mapping.items()}


Loader = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class Backend:
    """One registered backend: how to recognise its files and how to load them."""

    name: str
    detect: Callable[[Path], bool]
    priority: int
    loader: Loader
    #: one line shown in "unknown format" errors: what files this backend expects
    expects: str = ""


_REGISTRY: dict[str, Backend] = {}


def register_backend(
    name: str, detect: Callable[[Path], bool], priority: int = 0, expects: str = ""
) -> Callable[[Loader], Loader]:
    """Decorator: register ``loader(path, head, **options) -> (model, tokenizer)``.

    Higher ``priority`` is tried first when detecting, so a more specific format
    (a PEFT adapter folder, which may also hold a config.json) wins over a generic one.
    """

    def wrap(loader: Loader) -> Loader:
        _REGISTRY[name] = Backend(name, detect, priority, loader, expects)
        return loader

    return wrap


def registered() -> list[Backend]:
    """Backends in detection order (highest priority first, then name)."""
    return sorted(_REGISTRY.values(), key=lambda b: (-b.priority, b.name))


def get_backend(name: str) -> Backend:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise CheckpointError(f"unknown backend {name!r}; expected one of: {known}") from None


def check_head(head: str) -> None:
    if head not in HEADS:
        raise CheckpointError(f"unknown head {head!r}; expected one of: {', '.join(HEADS)}")
