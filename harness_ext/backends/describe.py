"""What a checkpoint carries (backend, saved head, labels) for ``checkpoints validate``,
reading as little as possible: a config for Hugging Face folders and hub ids, a full
load for formats whose head is only known from their weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness_ext.backends.base import CheckpointError


class NotChecked(Exception):
    """The checkpoint could not be inspected here (e.g. a hub id with no network)."""


@dataclass(frozen=True)
class Description:
    backend: str
    saved_head: str | None
    id2label: dict[int, str] = field(default_factory=dict)
    num_labels: int | None = None


def describe(source: str, head: str, *, backend: str | None = None, **options: Any) -> Description:
    """Backend, saved head and labels of ``source``; CheckpointError when it is unusable."""
    from harness_ext.backends import detect_backend, load_checkpoint
    from harness_ext.backends._guards import refuse_remote_code

    refuse_remote_code(options.pop("trust_remote_code", None), source)
    name = backend or detect_backend(source)
    if name == "hf":
        return _describe_hf(source, options)
    loaded = load_checkpoint(source, head, backend=name, **options)
    return _from_config(name, loaded.model.config, head)


def _describe_hf(source: str, options: dict[str, Any]) -> Description:
    from transformers import AutoConfig

    from harness_ext.backends._common import TOKENIZER_FILES, hub_offline, saved_head
    from harness_ext.backends._guards import check_config, check_local_config
    from harness_ext.backends.hf import check_weight_files

    path = Path(source)
    if path.is_dir():
        check_weight_files(path)
        check_local_config(path)
        if not options.get("tokenizer") and not any((path / f).exists() for f in TOKENIZER_FILES):
            raise CheckpointError(f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); pass tokenizer=")
        where = str(path / "config.json")
    else:
        where = source
    try:
        config = AutoConfig.from_pretrained(source, revision=options.get("revision"), trust_remote_code=False,
                                            local_files_only=hub_offline() or path.is_dir())
    except Exception as exc:  # noqa: BLE001
        if not path.exists() and hub_offline():
            raise NotChecked("hub id not in the local cache and the hub is offline (HF_HUB_OFFLINE, or no "
                             "connection); checked when the hub answers") from exc
        raise CheckpointError(f"{where}: cannot read the model config: {exc}") from exc
    check_config(config, where)
    labels = options.get("labels")
    desc = _from_config("hf", config, None)
    if labels:
        names = labels.split(",") if isinstance(labels, str) else list(labels)
        desc = Description("hf", desc.saved_head, dict(enumerate(names)), desc.num_labels)
    return Description(desc.backend, saved_head(config), desc.id2label, desc.num_labels)


def _from_config(backend: str, config: Any, head: str | None) -> Description:
    from harness_ext.backends._common import saved_head

    id2label = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    return Description(backend, head or saved_head(config), id2label, getattr(config, "num_labels", None))
