"""``device_map`` / ``max_memory`` for checkpoints whose loader builds the model itself.

Why: transformers places a model over several GPUs while it loads
(``from_pretrained(device_map=...)``), but a fairseq, jiant, T5X, Lightning,
DeepSpeed or DCP checkpoint is read by our own code into a plain torch model.
Such a model is placed *after* loading with accelerate, the same library
transformers uses: ``infer_auto_device_map`` (layers kept whole via the model's
``_no_split_modules``) and ``dispatch_model`` (hooks that move activations
between devices). So one system can mix HF and non-HF checkpoints with the same
``device_map=auto``.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: loader options that say where the model goes, handled here for loaders that do not take them
PLACEMENT_OPTIONS = ("device_map", "max_memory", "offload_folder")
#: accelerate's named strategies; anything else is one device ("cuda:1", "cpu") or a dict
STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def device_map_for(model: Any, device_map: Any, max_memory: Any = None, dtype: Any = None) -> dict[str, Any]:
    """The concrete ``{module name: device}`` map for ``device_map`` on ``model``."""
    if isinstance(device_map, dict):
        return dict(device_map)
    if device_map not in STRATEGIES:
        return {"": device_map}
    from accelerate import infer_auto_device_map
    from accelerate.utils import get_balanced_memory

    no_split = list(getattr(model, "_no_split_modules", None) or [])
    memory = dict(max_memory) if max_memory else None
    if device_map != "sequential":
        memory = get_balanced_memory(
            model, max_memory=memory, no_split_module_classes=no_split, dtype=dtype,
            low_zero=device_map == "balanced_low_0",
        )
    return infer_auto_device_map(model, max_memory=memory, no_split_module_classes=no_split, dtype=dtype)


def dispatch(model: Any, device_map: Any, max_memory: Any = None, dtype: Any = None,
             offload_folder: str | None = None, source: str = "checkpoint") -> Any:
    """Place a loaded torch model by ``device_map`` (sets ``model.hf_device_map`` as transformers does)."""
    from accelerate import dispatch_model

    from harness_ext.backends.base import CheckpointError

    if dtype is not None:
        model.to(dtype=dtype)
    plan = device_map_for(model, device_map, max_memory, dtype)
    if "disk" in plan.values() and not offload_folder:
        raise CheckpointError(
            f"{source}: device_map={device_map!r} with max_memory={dict(max_memory or {})} leaves layers for the "
            "disk; raise max_memory or pass offload_folder=DIR"
        )
    log.info("%s: placed by device_map %s", source, plan)
    model = dispatch_model(model, device_map=plan, offload_dir=offload_folder)
    model.hf_device_map = plan
    return model
