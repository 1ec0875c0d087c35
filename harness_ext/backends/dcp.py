"""torch.distributed.checkpoint (DCP) folders: ``.metadata`` + ``__<rank>_<n>.distcp``,
as FSDP/torchtitan-style training writes them.

Read with DCP's own loader in a single process (``no_dist``), only the model's tensors:
the key prefix (e.g. ``model.``) is found from the metadata, so optimizer state is never
read. The config comes from ``config=`` or a config.json beside/above the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    find_config,
    fit_num_labels,
    guess_prefix,
    load_tokenizer,
    model_class,
    model_from_state_dict,
)
from harness_ext.backends.base import CheckpointError, register_backend


def is_dcp(path: Path) -> bool:
    return path.is_dir() and (path / ".metadata").is_file() and any(path.glob("*.distcp"))


@register_backend("dcp", is_dcp, priority=20, expects="torch.distributed.checkpoint folder: .metadata + *.distcp")
def load_dcp(source: str, head: str, *, tokenizer: str | None = None, config: str | None = None) -> tuple[Any, Any]:
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    folder = Path(source)
    try:
        metadata = dcp.FileSystemReader(str(folder)).read_metadata()
    except Exception as exc:  # noqa: BLE001 - pickle/EOF errors on a damaged file
        raise CheckpointError(f"{folder / '.metadata'}: unreadable DCP metadata (expected a complete .metadata file): {exc}") from exc
    shapes = {k: torch.empty(tuple(v.size), dtype=v.properties.dtype, device="meta")
              for k, v in metadata.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}
    cfg, _ = find_config(folder, config)
    fit_num_labels(cfg, head, shapes)
    with torch.device("meta"):
        expected = model_class(cfg, head)(cfg).state_dict()
    prefix = guess_prefix(shapes, expected)  # e.g. 'model.'; 'model.roberta.' for an encoder
    wanted = {k: torch.empty(tuple(m.shape), dtype=m.dtype) for k, m in shapes.items() if k.startswith(prefix)}
    if not wanted:
        raise CheckpointError(f"{folder}: no model tensors found (expected keys like '{next(iter(expected))}')")
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        dcp.load(wanted, checkpoint_id=str(folder), no_dist=True)
    except (Exception, CheckpointException) as exc:  # noqa: BLE001 - CheckpointException is a BaseException
        files = ", ".join(sorted(p.name for p in folder.glob("*.distcp")))
        raise CheckpointError(f"{folder}: cannot read tensors from {files} (truncated or corrupted?): {_last_line(exc)}") from exc
    model = model_from_state_dict(cfg, head, wanted, str(folder))
    tok = load_tokenizer([folder, folder.parent, folder.parent.parent], str(folder), tokenizer)
    return model, tok



def _last_line(exc: BaseException) -> str:
    """DCP wraps errors with per-rank tracebacks; the last line says what went wrong."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
