"""PEFT adapter folders (``adapter_config.json`` + ``adapter_model.safetensors``/``.bin``)
on a base model, merged into it for speed.

peft does the loading and merging; this module picks the base model (``base_model=`` or
the adapter's ``base_model_name_or_path``), sizes the task head from the adapter's saved
head (``modules_to_save``), and refuses a head that neither the base nor the adapter holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    TASK_HEADS,
    check_loading_info,
    config_from,
    fit_num_labels,
    hub_offline,
    load_tokenizer,
    missing_extra,
    model_class,
    model_from_state_dict,
)
from harness_ext.backends._guards import named_location, plain_names, read_json, regex_select
from harness_ext.backends._torchfile import torch_load
from harness_ext.backends.base import CheckpointError, register_backend

#: peft TaskType -> our head
TASK_TYPES = {
    "SEQ_CLS": "sequence-classification",
    "TOKEN_CLS": "token-classification",
    "QUESTION_ANS": "question-answering",
    "FEATURE_EXTRACTION": "encoder",
    "SEQ_2_SEQ_LM": "seq2seq",
}
_PREFIX = "base_model.model."


def is_peft(path: Path) -> bool:
    return path.is_dir() and (path / "adapter_config.json").is_file()


@register_backend("peft", is_peft, priority=40, expects="PEFT adapter folder: adapter_config.json + adapter_model.safetensors")
def load_peft(source: str, head: str, *, tokenizer: str | None = None, base_model: str | None = None,
              revision: str | None = None) -> tuple[Any, Any]:
    folder = Path(source)
    adapter_cfg = _read_json(folder / "adapter_config.json")
    try:
        from peft import PeftConfig, PeftModel
    except ImportError:
        raise missing_extra("peft", "peft", str(folder)) from None
    recorded = adapter_cfg.get("base_model_name_or_path")
    base = base_model or named_location(recorded, folder.resolve().parent)  # beside the adapter at most
    if not base:
        why = "no base_model_name_or_path" if not recorded else \
            f"base_model_name_or_path {str(recorded)[:80]!r} is a path outside the folder holding the adapter (not followed)"
        raise CheckpointError(f"{folder / 'adapter_config.json'}: {why}; pass base_model=<folder or hub id>")
    trained = TASK_TYPES.get(str(adapter_cfg.get("task_type")), None)
    if head in TASK_HEADS and trained not in (None, head):
        raise CheckpointError(f"{folder / 'adapter_config.json'}: adapter trained for {trained} (task_type "
                              f"{adapter_cfg.get('task_type')}); expected a {head} adapter")
    load_head = trained if head == "encoder" and trained in TASK_HEADS | {"seq2seq"} else head
    saved = _saved_modules(folder)
    if Path(base).is_dir():  # refuse unsafe/truncated base weights before transformers reads them
        from harness_ext.backends.hf import check_weight_files

        check_weight_files(Path(base))
    try:
        config = config_from(base) if Path(base).exists() else _hub_config(base, revision)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{folder}: cannot read the base model {base!r}: {exc}") from exc
    fit_num_labels(config, load_head, saved)
    _label_names(folder, config)
    cls = model_class(config, load_head)
    try:
        model, info = cls.from_pretrained(base, config=config, output_loading_info=True, revision=revision,
                                          local_files_only=hub_offline() or Path(base).exists(), trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{folder}: cannot load base model {base!r}: {exc}") from exc
    covered = set(saved)  # head weights the adapter brings (modules_to_save)
    check_loading_info({"missing_keys": [k for k in info["missing_keys"] if k not in covered],
                        "mismatched_keys": [k for k in info["mismatched_keys"] if k[0] not in covered]},
                       load_head, f"{base} + {folder}")
    try:
        peft_config = PeftConfig.from_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - peft raises TypeError/ValueError on unknown fields
        raise CheckpointError(f"{folder / 'adapter_config.json'}: not a PEFT adapter config peft can read: "
                              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    defuse_patterns(peft_config, [name for name, _ in model.named_modules() if name], folder / "adapter_config.json")
    try:
        model = PeftModel.from_pretrained(model, str(folder), config=peft_config).merge_and_unload()
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{folder}: peft could not apply the adapter to {base!r}: {exc}") from exc
    if load_head != head:  # an encoder from a task adapter: the merged model's base
        model = model_from_state_dict(config, head, model.state_dict(), str(folder))
    tok = load_tokenizer([folder, base], str(folder), tokenizer)
    return model, tok


def _read_json(path: Path) -> dict[str, Any]:
    data = read_json(path, "a PEFT adapter config")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object (a PEFT adapter config), got {type(data).__name__}")
    return data


def defuse_patterns(config: Any, names: list[str], where: Path) -> None:
    """Replace the regular expressions an adapter config may hold (``target_modules``,
    ``exclude_modules``, ``rank_pattern``/``alpha_pattern`` keys) by the module names they
    match, found with a time budget, so peft's own backtracking ``re`` never sees them;
    fields peft pastes into a regex must be plain names; Megatron (a module import) is refused."""
    import re

    for field in ("target_modules", "exclude_modules"):
        value = getattr(config, field, None)
        if isinstance(value, str):
            matched = regex_select(value, names, str(where), field)
            if field == "target_modules" and not matched:
                raise CheckpointError(f"{where}: target_modules {value[:80]!r} matches no module of the base model")
            setattr(config, field, set(matched) if matched or field == "target_modules" else None)
    for field in ("rank_pattern", "alpha_pattern"):
        value = getattr(config, field, None)
        if isinstance(value, dict) and value:
            exact: dict[str, Any] = {}
            for pattern, setting in value.items():
                for name in regex_select(rf"(?:.*\.)?(?:{pattern})", names, str(where), f"{field} key"):
                    exact.setdefault(re.escape(name), setting)
            setattr(config, field, exact)
    for field in ("layers_pattern", "modules_to_save"):
        plain_names(getattr(config, field, None), str(where), field)
    if getattr(config, "megatron_config", None) or getattr(config, "megatron_core", "megatron.core") != "megatron.core":
        raise CheckpointError(f"{where}: megatron_config/megatron_core would import a module named by the adapter; "
                              "remove them (XTREME adapters are plain LoRA on transformers models)")


def _saved_modules(folder: Path) -> dict[str, Any]:
    """The adapter file's weights by the base model's key names; the full (non-LoRA) ones
    among them are the head modules it saved (``modules_to_save``)."""
    st, binf = folder / "adapter_model.safetensors", folder / "adapter_model.bin"
    if st.exists():
        from safetensors.torch import load_file

        from harness_ext.backends.hf import check_safetensors

        check_safetensors(st)
        weights = load_file(str(st))
    elif binf.exists():
        weights = torch_load(binf, "PEFT adapter weights")
    else:
        raise CheckpointError(f"{folder}: no adapter weights (expected adapter_model.safetensors or adapter_model.bin)")
    return {key.removeprefix(_PREFIX).replace(".modules_to_save.default", ""): value for key, value in weights.items()}


def _label_names(folder: Path, config: Any) -> None:
    """id2label from a config.json saved beside the adapter, when it fits the head."""
    local = folder / "config.json"
    if local.exists():
        data = read_json(local, "a transformers config.json")
        id2label = (data.get("id2label") if isinstance(data, dict) else None) or {}
        if isinstance(id2label, dict) and len(id2label) == config.num_labels:
            config.id2label = {int(k): v for k, v in id2label.items()}
            config.label2id = {v: int(k) for k, v in id2label.items()}


def _hub_config(base: str, revision: str | None) -> Any:
    from transformers import AutoConfig

    from harness_ext.backends._guards import check_config

    config = AutoConfig.from_pretrained(base, revision=revision, trust_remote_code=False, local_files_only=hub_offline())
    check_config(config, base)
    return config
