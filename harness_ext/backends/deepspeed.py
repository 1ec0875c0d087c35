"""DeepSpeed checkpoints: ``<dir>/latest`` + ``<dir>/global_step*/`` holding
``mp_rank_00_model_states.pt`` (ZeRO 0-2) or ``zero_pp_rank_*_mp_rank_00_model_states.pt``
(ZeRO 3) and the ``*_optim_states.pt`` shards with the fp32 master weights.

The fp32 master weights are rebuilt here from the optimizer shards (ZeRO 1-3), without
DeepSpeed: its own reconstruction (``zero_to_fp32``) unpickles every shard with no
restriction, so a hostile checkpoint would run code. Every file is read through
:func:`torch_load` (weights-only, allow-listed config stand-ins). Without optimizer shards
(ZeRO 0, or shards deleted to save space) the module states are used, in the training dtype.

Layout (DeepSpeed's ``engine.save_checkpoint``): ``*_model_states.pt`` hold ``module``
(ZeRO 0-2), ``buffer_names``, ``param_shapes`` (one ordered ``name -> shape`` dict per
parameter group), ``shared_params`` and the frozen parameters; ``*_optim_states.pt`` hold
``optimizer_state_dict`` with ``zero_stage``, ``partition_count`` and the rank's fp32
partition of each group (ZeRO 1-2: ``single_partition_of_fp32_groups``, the group's flat
vector split in contiguous pieces by rank; ZeRO 3: ``fp32_flat_groups``, every parameter
split in ``ceil(numel / world)`` pieces, one per rank).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    find_config,
    fit_num_labels,
    load_tokenizer,
    model_from_state_dict,
)
from harness_ext.backends._torchfile import check_complete, torch_load
from harness_ext.backends.base import CheckpointError, register_backend

_MODEL_STATES = re.compile(r"(zero_pp_rank_\d+_)?mp_rank_\d+_model_states\.pt$")


def _has_model_states(folder: Path) -> bool:
    return folder.is_dir() and any(_MODEL_STATES.search(p.name) for p in folder.iterdir())


def locate(path: Path, tag: str | None = None) -> tuple[Path, str]:
    """(checkpoint dir, tag) for a checkpoint dir or one of its tag folders."""
    if _has_model_states(path) and not (path / "latest").exists():
        return path.parent, path.name
    if tag is None and (path / "latest").is_file():
        tag = (path / "latest").read_text(errors="replace")[:256].strip()
        if not tag or "/" in tag or "\\" in tag or tag in (".", "..") or "\0" in tag:
            raise CheckpointError(f"{path / 'latest'}: names {tag[:80]!r}; expected the name of a tag folder "
                                  "inside the checkpoint (e.g. global_step100), or pass tag=")
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


def _natural(path: Path) -> list[Any]:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", path.name)]


def fp32_state_dict(folder: Path, tag: str) -> dict[str, Any]:
    """The model's weights: fp32 rebuilt from the optimizer shards, else the module states."""
    tag_dir = folder / tag
    for f in sorted(tag_dir.glob("*.pt")):
        check_complete(f, "a DeepSpeed state file")
    optim_files = sorted(tag_dir.glob("*_optim_states.pt"), key=_natural)
    if not optim_files:
        return _module_states(tag_dir)
    model_files = sorted(tag_dir.glob("*_model_states.pt"), key=_natural)
    if not model_files:
        raise CheckpointError(f"{tag_dir}: missing *_model_states.pt (expected next to the optimizer shards)")
    return _rebuild_fp32(tag_dir, model_files, optim_files)


def _field(data: Any, key: str, kind: type | tuple[type, ...], path: Path) -> Any:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise CheckpointError(f"{path}: no usable {key!r} (expected a {names} in DeepSpeed state)")
    return value


def _as_int(value: Any) -> int | None:
    """An int, or DeepSpeed's ZeroStageEnum read back as an inert stand-in (its value in ``__args__``)."""
    if isinstance(value, dict):
        value = (value.get("__args__") or (None,))[0]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _numel(shape: Any, name: str, path: Path) -> tuple[tuple[int, ...], int]:
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: bad shape for {name}: {shape!r}") from None
    if any(d < 0 for d in dims):
        raise CheckpointError(f"{path}: bad shape for {name}: {dims}")
    return dims, math.prod(dims)


def _rebuild_fp32(tag_dir: Path, model_files: list[Path], optim_files: list[Path]) -> dict[str, Any]:
    import torch

    states = torch_load(model_files[0], "DeepSpeed model states")
    shapes = _field(states, "param_shapes", (list, tuple), model_files[0])
    if not all(isinstance(group, dict) for group in shapes):
        raise CheckpointError(f"{model_files[0]}: 'param_shapes' is not a list of name -> shape dicts")
    groups, stage, world = [], None, None
    for f in optim_files:
        optim = _field(torch_load(f, "DeepSpeed optimizer states", mmap=True), "optimizer_state_dict", dict, f)
        stage = _as_int(optim.get("zero_stage"))
        if stage is None or not 0 <= stage <= 3:
            raise CheckpointError(f"{f}: no usable 'zero_stage' in DeepSpeed optimizer states")
        count = optim.get("partition_count")
        count = max(count) if isinstance(count, (list, tuple)) and count else count
        if not isinstance(count, int) or count < 1:
            raise CheckpointError(f"{f}: no usable 'partition_count' in DeepSpeed optimizer states")
        world = count
        key = "single_partition_of_fp32_groups" if stage <= 2 else "fp32_flat_groups"
        flat = _field(optim, key, (list, tuple), f)
        if not all(isinstance(t, torch.Tensor) for t in flat):
            raise CheckpointError(f"{f}: {key!r} holds something other than tensors")
        groups.append([t.float().reshape(-1) for t in flat])
    if world != len(optim_files):
        raise CheckpointError(f"{tag_dir}: {len(optim_files)} *_optim_states.pt files, the checkpoint was saved by "
                              f"{world} ranks (a shard is missing or left over from another run)")
    module = states.get("module") if isinstance(states.get("module"), dict) else {}
    buffer_names = set(states.get("buffer_names") or ())
    out: dict[str, Any] = {k: (v.float() if v.is_floating_point() else v) for k, v in module.items()
                           if k in buffer_names and isinstance(v, torch.Tensor)}
    if stage <= 2:
        _merge_zero2(out, shapes, groups, world, tag_dir)
    else:
        _merge_zero3(out, shapes, groups, world, tag_dir)
    _merge_frozen(out, stage, states, model_files)
    for name, target in (states.get("shared_params") or {}).items():
        if target in out:
            out[name] = out[target]
    return out


def _merge_zero2(out: dict[str, Any], shapes: list[dict], groups: list[list[Any]], world: int, where: Path) -> None:
    import torch

    if any(len(g) != len(shapes) for g in groups):
        raise CheckpointError(f"{where}: {len(shapes)} parameter groups in the model states, "
                              f"{[len(g) for g in groups]} in the optimizer shards")
    for index, group in enumerate(shapes):
        flat = torch.cat([g[index] for g in groups])
        offset = 0
        for name, shape in group.items():
            dims, numel = _numel(shape, name, where)
            if offset + numel > flat.numel():
                raise CheckpointError(f"{where}: optimizer shards hold {flat.numel()} values for group {index}, "
                                      f"{name} needs up to {offset + numel} (truncated or mismatched shards)")
            out[name] = flat.narrow(0, offset, numel).view(dims).clone()
            offset += numel
        align = 2 * world  # DeepSpeed pads each group to a multiple of 2 * world size
        if math.ceil(offset / align) != math.ceil(flat.numel() / align):
            raise CheckpointError(f"{where}: group {index} uses {offset} of {flat.numel()} values (mismatched shards)")


def _merge_zero3(out: dict[str, Any], shapes: list[dict], groups: list[list[Any]], world: int, where: Path) -> None:
    import torch

    flats = [torch.cat(g) if g else torch.zeros(0) for g in groups]
    offset = 0
    for name, shape in ((n, s) for group in shapes for n, s in group.items()):
        dims, numel = _numel(shape, name, where)
        part = math.ceil(numel / world)
        if offset + part > min(f.numel() for f in flats):
            raise CheckpointError(f"{where}: optimizer shards end before {name} (truncated or mismatched shards)")
        out[name] = torch.cat([f[offset:offset + part] for f in flats])[:numel].view(dims).clone()
        offset += part
    if offset != flats[0].numel():
        raise CheckpointError(f"{where}: parameters use {offset} of {flats[0].numel()} values per rank (mismatched shards)")


def _merge_frozen(out: dict[str, Any], stage: int, states: dict, model_files: list[Path]) -> None:
    """Parameters with requires_grad=False are kept in the model states, not the optimizer."""
    import torch

    frozen = states.get("frozen_param_shapes") or {}
    if not frozen:
        return
    ranks = [states] + [torch_load(f, "DeepSpeed model states") for f in model_files[1:]] if stage == 3 else [states]
    for name, shape in frozen.items():
        dims, numel = _numel(shape, name, model_files[0])
        pieces = [(r.get("frozen_param_fragments") or {}).get(name) for r in ranks]
        if not all(isinstance(p, torch.Tensor) for p in pieces):
            raise CheckpointError(f"{model_files[0]}: frozen parameter {name} has no stored fragment")
        full = torch.cat([p.reshape(-1) for p in pieces])
        if full.numel() < numel:
            raise CheckpointError(f"{model_files[0]}: frozen parameter {name} has {full.numel()} of {numel} values")
        out[name] = full[:numel].view(dims).float().clone()


def _module_states(tag_dir: Path) -> dict[str, Any]:
    states = tag_dir / "mp_rank_00_model_states.pt"
    if not states.exists():
        if any(tag_dir.glob("zero_pp_rank_*_model_states.pt")):
            raise CheckpointError(f"{tag_dir}: ZeRO stage 3 keeps the weights only in the *_optim_states.pt "
                                  "shards, and none are here (copy them from the training run)")
        raise CheckpointError(f"{states}: missing (expected DeepSpeed model states)")
    data = torch_load(states, "DeepSpeed model states")
    module = data.get("module") if isinstance(data, dict) else None
    if not isinstance(module, dict) or any(getattr(v, "numel", lambda: 1)() == 0 for v in module.values()):
        raise CheckpointError(f"{states}: no usable 'module' weights (expected ZeRO stage 0-2 model states)")
    return module
