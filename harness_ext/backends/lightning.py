"""PyTorch Lightning ``.ckpt`` files: ``state_dict`` (keys behind the LightningModule's
attribute, e.g. ``model.``) plus ``hyper_parameters``.

Lightning itself is not needed: the file is read weights-only, the attribute prefix is
found by matching keys against the transformers model, and the config comes from
``config=``, a config.json beside the file, or the model name in the hyper-parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    apply_label_names,
    find_config,
    fit_num_labels,
    load_tokenizer,
    model_from_state_dict,
)
from harness_ext.backends._guards import named_location
from harness_ext.backends._torchfile import find_key, torch_load
from harness_ext.backends.base import CheckpointError, register_backend

#: hyper-parameter names under which LightningModules commonly record the base model
MODEL_NAME_KEYS = ("model_name_or_path", "pretrained_model_name_or_path", "model_name", "base_model",
                   "pretrained_model", "encoder_name", "hf_model")
LABEL_KEYS = ("id2label", "labels", "label_names", "label_list")


def ckpt_file(path: Path) -> Path | None:
    """The .ckpt file ``path`` names, or the only one inside folder ``path``."""
    if path.is_file() and path.suffix == ".ckpt":
        return path
    if path.is_dir() and not (path / "config.json").exists():
        files = sorted(p for p in path.glob("*.ckpt") if p.is_file())
        if len(files) == 1:
            return files[0]
    return None


@register_backend("lightning", lambda p: ckpt_file(p) is not None, priority=20,
                  expects="PyTorch Lightning .ckpt file (state_dict + hyper_parameters)")
def load_lightning(source: str, head: str, *, tokenizer: str | None = None, config: str | None = None) -> tuple[Any, Any]:
    path = ckpt_file(Path(source))
    if path is None:
        raise CheckpointError(f"{source}: expected a Lightning .ckpt file or a folder holding exactly one")
    ckpt = torch_load(path, "a PyTorch Lightning checkpoint")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (expected a dict with 'state_dict')")
    state_dict = ckpt["state_dict"]
    hparams = ckpt.get("hyper_parameters") or {}
    # a recorded hub id is fetched like one the user typed; a recorded local path only inside the folder
    names = [v for v in (named_location(find_key(hparams, k), path.resolve().parent.parent) for k in MODEL_NAME_KEYS) if v]
    cfg, _ = find_config(path, config, names)
    fit_num_labels(cfg, head, state_dict)
    apply_label_names(cfg, head, _label_names(hparams), str(path))
    model = model_from_state_dict(cfg, head, state_dict, str(path))
    tok = load_tokenizer([path.parent, path.parent.parent, *names], str(path), tokenizer)
    return model, tok


def _label_names(hparams: Any) -> list[str] | None:
    for key in LABEL_KEYS:
        value = find_key(hparams, key)
        if isinstance(value, dict) and value:
            return [str(value[k]) for k in sorted(value, key=lambda k: int(k))]
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return list(value)
    return None
