"""Run-time settings shared by every adapter (parsed from ``--model_args``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``--model xtreme`` keys read from ``settings.extra`` by the adapters (any other key that is not
#: an ``XtremeLM`` argument is refused, naming the closest one: a typo must not run with defaults).
#: Add the key here when an adapter starts reading a new one.
EXTRA_KEYS = (
    "waves", "pipeline",  # runtime/pipeline.py
    "max_query_length", "n_best",  # encoder/span.py
    "cache_layers", "max_batch_tokens",  # encoder/embed.py
    "t2t_mode", "max_new_tokens",  # text2text/adapter.py
)
#: families of keys (``template_<task>=``, text2text/adapter.py)
EXTRA_PREFIXES = ("template_",)


@dataclass
class AdapterSettings:
    device: str = "cpu"
    #: torch dtype name: float32, float16, bfloat16
    dtype: str = "float32"
    #: examples per batch; ``None`` = found automatically (largest that fits)
    batch_size: int | None = 32
    max_batch_size: int = 512
    #: tokens per window (defaults to the model's limit, capped at 512)
    max_length: int | None = None
    #: long inputs: for QA the step between window starts in tokens (XTREME's
    #: ``doc_stride``, official default 128); for tagging the overlap (sub-words) kept
    #: between neighbouring word windows
    stride: int = 128
    #: retrieval: hidden-state index (negative counts from the top; official scripts skip the embedding layer)
    layer: int | None = None
    pooling: str = "mean"
    #: QA: longest answer in tokens
    max_answer_length: int = 30
    #: where embeddings are cached (None = ~/.cache/xtreme-harness/embeddings)
    cache_dir: str | None = None
    use_cache: bool = True
    #: text-to-text checkpoints: template preset name or file (see docs/mt5.md)
    templates: str | None = None
    #: more adapter options from --model_args (keys in ``EXTRA_KEYS``)
    extra: dict[str, Any] = field(default_factory=dict)

    def torch_dtype(self):
        import torch

        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self.dtype]
