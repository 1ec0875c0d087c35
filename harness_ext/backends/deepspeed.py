"""DeepSpeed checkpoints: ``<dir>/latest`` + ``<dir>/global_step*/`` holding
``mp_rank_00_model_states.pt`` (ZeRO 0-2) or ``zero_pp_rank_*_mp_rank_00_model_states.pt``
(ZeRO 3) and the ``*_optim_states.pt`` shards with the fp32 master weights.

With the ``deepspeed`` extra, DeepSpeed's own ``zero_to_fp32`` rebuilds the fp32 weights
(any stage). Without it, ZeRO 0-2 are read from the module states (the weights in the
training dtype) and ZeRO 3, whose module states are empty, asks for the extra.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    find_config,
    fit_num_labels,
    load_tokenizer,
    missing_extra,
    model_from_state_dict,
)
from harness_ext.backends._torchfile import torch_load
from harness_ext.backends.base import CheckpointError, register_backend

_MODEL_STATES = re.compile(r"(zero_pp_rank_\d+_)?mp_rank_\d+_model_states\.pt$")


def _has_model_states(folder: Path) -> bool:
    return folder.is_dir() and any(_MODEL_STATES.search(p.name) for p in folder.iterdir())


def locate(path: Path, tag: str | None = None) -> tuple[Path, str]:
    """(checkpoint dir, tag) for a checkpoint dir or one of its tag folders."""
    if _has_model_states(path) and not (path / "latest").exists():
        return path.parent, path.name
    if tag is None and (path / "latest").is_file():
        tag = (path / "latest").read_text().strip()
    if tag is None:
        tags = sorted((p.name for p in path.iterdir() if _has_model_states(p)),
                      key=lambda n: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", n)])
        if not tags:
            raise CheckpointError(f"{path}: no DeepSpeed tag folder (expected global_step*/mp_rank_00_model_states.pt)")
        tag = tags[-1]
    if not _has_model_states(path / tag):
        raise CheckpointError(f"{path / tag}: missing (expected *mp_rank_00_model_states.pt; 'latest' says {tag!r})")
    return path, tag


def is_deepspeed(path: Path) -> bool:
    if not path.is_dir():
        return False
    if _has_model_states(path):
        return True
    if (path / "latest").is_file():
        return True
    return any(_has_model_states(p) for p in path.glob("global_step*"))


@register_backend("deepspeed", is_deepspeed, priority=30,
                  expects="DeepSpeed folder: latest + global_step*/mp_rank_00_model_states.pt (+ *_optim_states.pt)")
def load_deepspeed(source: str, head: str, *, tokenizer: str | None = None, config: str | None = None,
                   tag: str | None = None) -> tuple[Any, Any]:
    folder, tag = locate(Path(source), tag)
    state_dict = fp32_state_dict(folder, tag)
    cfg, _ = find_config(folder / tag, config)
    fit_num_labels(cfg, head, state_dict)
    where = str(folder / tag)
    model = model_from_state_dict(cfg, head, state_dict, where)
    tok = load_tokenizer([folder, folder.parent], where, tokenizer)
    return model, tok


def fp32_state_dict(folder: Path, tag: str) -> dict[str, Any]:
    """The model's weights: DeepSpeed's fp32 reconstruction, or the module states without it."""
    tag_dir = folder / tag
    for f in sorted(tag_dir.glob("*.pt")):
        from harness_ext.backends._torchfile import check_complete

        check_complete(f, "a DeepSpeed state file")
    try:
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    except ImportError:
        return _module_states(tag_dir)
    try:
        return dict(get_fp32_state_dict_from_zero_checkpoint(str(folder), tag=tag))
    except Exception as exc:  # noqa: BLE001 - deepspeed raises ValueError/KeyError/FileNotFoundError
        raise CheckpointError(f"{tag_dir}: DeepSpeed could not rebuild the fp32 weights: {type(exc).__name__}: {exc}") from exc


def _module_states(tag_dir: Path) -> dict[str, Any]:
    states = tag_dir / "mp_rank_00_model_states.pt"
    if not states.exists():
        if any(tag_dir.glob("zero_pp_rank_*_model_states.pt")):
            raise missing_extra("deepspeed", "deepspeed", f"{tag_dir} (ZeRO stage 3: weights only in the optimizer shards)")
        raise CheckpointError(f"{states}: missing (expected DeepSpeed model states)")
    data = torch_load(states, "DeepSpeed model states")
    module = data.get("module") if isinstance(data, dict) else None
    if not isinstance(module, dict) or any(getattr(v, "numel", lambda: 1)() == 0 for v in module.values()):
        raise CheckpointError(f"{states}: no usable 'module' weights (expected ZeRO stage 0-2 model states)")
    return module
