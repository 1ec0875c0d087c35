"""Checkpoint backends: read weights from disk (or the hub) into a transformers model
plus its tokenizer, whatever framework trained them.

``load_checkpoint(source, head)`` is the one entry point: it picks a backend from what
is on disk (``detect_backend``), loads, checks the result (no random task heads, tokenizer
fits the embeddings) and hands back a ``LoadedCheckpoint`` in eval mode. A new format is
one module here with a loader decorated by ``@register_backend``.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from harness_ext.backends._guards import refuse_remote_code
from harness_ext.backends.base import (
    HEADS,
    TASK_HEADS,
    CheckpointError,
    LoadedCheckpoint,
    check_head,
    get_backend,
    register_backend,
    registered,
)
from harness_ext.progress import quiet_library_bars

__all__ = [
    "HEADS",
    "TASK_HEADS",
    "CheckpointError",
    "LoadedCheckpoint",
    "detect_backend",
    "load_checkpoint",
    "register_backend",
]

#: built-in backend modules, imported for their ``@register_backend`` side effect;
#: none imports an optional dependency at module level.
_BUILTIN = ("hf", "peft", "jiant", "fairseq", "flax", "lightning", "deepspeed", "dcp")
for _name in _BUILTIN:
    try:
        importlib.import_module(f"harness_ext.backends.{_name}")
    except ModuleNotFoundError as exc:  # a backend module not written yet
        if exc.name != f"harness_ext.backends.{_name}":
            raise

_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
           "half": "float16", "bfloat16": "bfloat16", "bf16": "bfloat16"}


def detect_backend(source: str) -> str:
    """Name of the backend that reads ``source``.

    A source that is not an existing path is a hub id, read by the Hugging Face backend.
    """
    path = Path(source).expanduser()
    if not path.exists():
        if _looks_like_path(source):
            raise CheckpointError(f"{source}: no such file or folder (expected a checkpoint path or a hub id 'org/name')")
        return "hf"
    for backend in registered():
        try:
            if backend.detect(path):
                return backend.name
        except OSError:
            continue
    expected = "\n".join(f"  - {b.name}: {b.expects}" for b in registered() if b.expects)
    listing = sorted(p.name for p in path.iterdir())[:20] if path.is_dir() else [path.name]
    raise CheckpointError(
        f"{path}: unknown checkpoint format (found {listing}); expected one of:\n{expected}"
    )


def _looks_like_path(source: str) -> bool:
    """A local path that does not exist, as opposed to a hub id (``name`` or ``org/name``)."""
    return source.startswith(("/", "./", "../", "~", "\\")) or source.count("/") > 1 or "\\" in source


def load_checkpoint(
    source: str,
    head: str,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    backend: str | None = None,
    **options: Any,
) -> LoadedCheckpoint:
    """Load ``source`` for ``head``, on ``device`` in ``dtype``, ready for evaluation.

    ``options`` go to the backend's loader (e.g. ``tokenizer=`` for formats that carry
    none, ``revision=`` for hub ids); an option the backend does not know is an error.
    ``labels=`` (names in output order) is handled here for every backend.
    """
    check_head(head)
    source = str(source)
    refuse_remote_code(options.pop("trust_remote_code", None), source)
    name = backend or detect_backend(source)
    chosen = get_backend(name)
    target = source if not Path(source).expanduser().exists() else str(Path(source).expanduser())
    labels = options.pop("labels", None)
    placement = _placement_after_loading(chosen.loader, options)
    if options.get("device_map") is not None:
        options.setdefault("dtype", _DTYPES[str(dtype).removeprefix("torch.")])
    with quiet_library_bars():  # "Loading weights" is trivial next to evaluation; downloads keep theirs
        model, tokenizer = chosen.loader(target, head, **_options_for(chosen.loader, options, source, name))
    if labels:
        set_labels(model, labels, source)
    check_vocab(model, tokenizer, source)
    fit_tokenizer_length(model, tokenizer)
    model.eval()
    if placement.get("device_map") is not None:  # a loader that builds the model itself: accelerate places it now
        from harness_ext.backends.placement import dispatch

        model = dispatch(model, placement["device_map"], placement.get("max_memory"), _torch_dtype(dtype, source),
                         placement.get("offload_folder"), source)
    if not getattr(model, "hf_device_map", None):  # one placed by accelerate stays where it was put
        model.to(device=device, dtype=_torch_dtype(dtype, source))
    return LoadedCheckpoint(model=model, tokenizer=tokenizer, source=source, backend=name, head=head)


def _placement_after_loading(loader: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Take ``device_map`` / ``max_memory`` / ``offload_folder`` out of ``options`` when ``loader``
    does not place the model itself (every backend but Hugging Face folders); they are applied
    after loading by :func:`harness_ext.backends.placement.dispatch`."""
    from harness_ext.backends.placement import PLACEMENT_OPTIONS

    params = inspect.signature(loader).parameters
    if "device_map" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return {}
    return {key: options.pop(key) for key in PLACEMENT_OPTIONS if key in options}


def _options_for(loader: Any, options: dict[str, Any], source: str, name: str) -> dict[str, Any]:
    """The options ``loader`` takes; an unknown one is an error."""
    params = inspect.signature(loader).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(options)
    taken = {k: v for k, v in options.items() if k in params}
    unknown = sorted(k for k in options if k not in params)
    if unknown:
        known = sorted(k for k, p in params.items() if p.kind is p.KEYWORD_ONLY)
        raise CheckpointError(f"{source}: backend {name!r} does not take option(s) {unknown}; it takes {known}")
    return taken


def set_labels(model: Any, labels: Any, source: str) -> None:
    """Name the head's outputs (``labels`` in output order) when the checkpoint's own
    config does not, e.g. a Lightning or jiant run, or a folder saved with LABEL_0..."""
    names = [s.strip() for s in labels.split(",")] if isinstance(labels, str) else [str(x) for x in labels]
    config = model.config
    if getattr(config, "num_labels", len(names)) != len(names):
        raise CheckpointError(
            f"{source}: labels={names} names {len(names)} outputs but the head has {config.num_labels}"
        )
    config.id2label = dict(enumerate(names))
    config.label2id = {n: i for i, n in enumerate(names)}


#: model types whose position ids start after the padding index
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "data2vec-text"}


def fit_tokenizer_length(model: Any, tokenizer: Any) -> None:
    """Cap ``tokenizer.model_max_length`` at the positions the model has, so truncating to
    the tokenizer's limit never indexes past the position table (tokenizers rebuilt from a
    sentencepiece/vocab file carry no limit of their own)."""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if tokenizer is None or not positions:
        return
    if getattr(config, "model_type", "") in _OFFSET_POSITIONS:
        positions -= (getattr(config, "pad_token_id", 1) or 0) + 1
    current = getattr(tokenizer, "model_max_length", None)
    if current is None or current > positions:
        tokenizer.model_max_length = int(positions)


def check_vocab(model: Any, tokenizer: Any, source: str) -> None:
    """Refuse a tokenizer that produces ids past the model's embedding table."""
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    rows = getattr(embeddings, "num_embeddings", None)
    if rows is None or tokenizer is None:
        return
    size = len(tokenizer)
    if size > rows:
        raise CheckpointError(
            f"{source}: tokenizer has {size} tokens but the model's embedding table has {rows} rows; "
            "expected the tokenizer the checkpoint was trained with (pass tokenizer=...)"
        )


def _torch_dtype(dtype: str, source: str) -> Any:
    import torch

    key = str(dtype).removeprefix("torch.")
    if key not in _DTYPES:
        raise CheckpointError(f"{source}: unknown dtype {dtype!r}; expected one of {sorted(set(_DTYPES.values()))}")
    return getattr(torch, _DTYPES[key])
