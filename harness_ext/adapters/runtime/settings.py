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


#: ``answer_text``: run_squad's text recovery (official) or the context cut at sub-word offsets
ANSWER_TEXT_MODES = ("official", "offsets")
#: ``tag_split``: XTREME's non-overlapping chunks of ``--max_len`` 128 (official) or overlapping windows
TAG_SPLIT_MODES = ("official", "windows")
#: ``tag_outputs``: head outputs outside the task's tags visible to the argmax (official) or masked
TAG_OUTPUT_MODES = ("official", "mask")


@dataclass
class AdapterSettings:
    device: str = "cpu"
    #: torch dtype name: float32, float16, bfloat16
    dtype: str = "float32"
    #: examples per batch; ``None`` = found automatically (largest that fits)
    batch_size: int | None = 32
    max_batch_size: int = 512
    #: tokens per input; default as the official scripts: QA 384, tagging 128 (``tag_split=windows``:
    #: the model's limit, capped at 512), classification 128; never beyond the model's limit
    max_length: int | None = None
    #: long inputs: for QA the step between window starts in tokens (XTREME's
    #: ``doc_stride``, official default 128); for tagging with ``tag_split=windows`` the
    #: overlap (sub-words) kept between neighbouring word windows
    stride: int = 128
    #: retrieval: hidden-state index (negative counts from the top; official scripts skip the embedding layer)
    layer: int | None = None
    pooling: str = "mean"
    #: QA: longest answer in tokens
    max_answer_length: int = 30
    #: QA: how the best span becomes text: ``official`` (run_squad's whole-word recovery,
    #: see encoder/answer_text.py) or ``offsets`` (the context cut at the sub-words' offsets)
    answer_text: str = "official"
    #: tagging: long sentences in XTREME's non-overlapping chunks of ``max_length`` (default 128)
    #: sub-words, over-long words as the unknown token (``official``), or in overlapping windows
    #: of up to the model's limit (``windows``)
    tag_split: str = "official"
    #: tagging: head outputs outside the task's tags (the ``O`` of XTREME's UD-POS heads) seen by the
    #: argmax as in run_tag.py (``official``; such a prediction counts as wrong) or masked (``mask``)
    tag_outputs: str = "official"
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
