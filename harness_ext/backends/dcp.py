"""torch.distributed.checkpoint (DCP) folders: ``.metadata`` + ``__<rank>_<n>.distcp``,
as FSDP/torchtitan-style training writes them.

Only the model's tensors are read: the key prefix (e.g. ``model.``) is found from the
metadata, so optimizer state is never read. The config comes from ``config=`` or a config.json beside/above the folder.

torch's own ``FileSystemReader`` unpickles ``.metadata`` with no restriction (code in it
would run), so :func:`load_metadata` reads it with an allow-list of DCP's metadata
dataclasses, torch sizes/dtypes/layouts and ``pathlib`` paths, and :func:`read_tensors`
reads each tensor chunk itself with ``weights_only=True``; byte items (pickled objects,
which DCP's default planner unpickles without restriction) are never read.
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
from harness_ext.backends._guards import check_claimed_bytes
from harness_ext.backends._torchfile import restricted_unpickle
from harness_ext.backends.base import CheckpointError, register_backend

METADATA_WHAT = "DCP metadata (.metadata of torch.distributed.checkpoint)"


def _metadata_globals() -> dict[str, Any]:
    """Every global a ``.metadata`` written by ``FileSystemWriter`` refers to (checked against
    torch's metadata.py/filesystem.py): plain dataclasses, an enum, and torch value types."""
    import pathlib

    import torch
    from torch.distributed.checkpoint import filesystem, metadata

    allowed: dict[str, Any] = {}
    for module, names in (
        (metadata, ("Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata",
                    "TensorProperties", "StorageMeta", "MetadataIndex", "_MEM_FORMAT_ENCODING")),
        (filesystem, ("_StorageInfo", "_StoragePrefix")),
        (pathlib, ("PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath", "Path")),
    ):
        allowed.update({f"{module.__name__}.{n}": getattr(module, n) for n in names if hasattr(module, n)})
    allowed["collections.OrderedDict"] = __import__("collections").OrderedDict
    allowed["torch.Size"] = torch.Size
    values = {n: v for n, v in vars(torch).items() if isinstance(v, (torch.dtype, torch.layout, torch.memory_format))}
    allowed.update({f"torch.{n}": v for n, v in values.items()})
    layouts = {str(v): v for v in values.values() if isinstance(v, torch.layout)}

    def get_layout(name: str) -> Any:  # stands in for torch.serialization._get_layout: a lookup only
        return layouts[name]

    allowed["torch.serialization._get_layout"] = get_layout
    return allowed


def load_metadata(folder: Path) -> Any:
    """``.metadata`` through the allow-list; anything else is refused, naming the class."""
    from torch.distributed.checkpoint.metadata import Metadata

    path = folder / ".metadata"
    metadata = restricted_unpickle(path, _metadata_globals(), METADATA_WHAT)
    if not isinstance(metadata, Metadata) or not isinstance(getattr(metadata, "state_dict_metadata", None), dict) \
            or not isinstance(getattr(metadata, "storage_data", None), dict):
        raise CheckpointError(f"{path}: not DCP metadata (expected a Metadata object written by "
                              f"torch.distributed.checkpoint, got {type(metadata).__name__})")
    return metadata


def read_tensors(folder: Path, metadata: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """Fill ``wanted`` (name -> empty tensor) from the ``*.distcp`` files, chunk by chunk.

    Each chunk is a ``torch.save`` blob at (file, offset, length) per the metadata; it is
    read with ``weights_only=True``. Byte items (pickled objects) are never read."""
    import io

    import torch
    from torch.distributed.checkpoint.metadata import MetadataIndex

    where = {(index.fqn, tuple(index.offset or ())): info for index, info in metadata.storage_data.items()
             if isinstance(index, MetadataIndex)}
    handles: dict[str, Any] = {}
    try:
        for name, target in wanted.items():
            for chunk in metadata.state_dict_metadata[name].chunks:
                info = where.get((name, tuple(chunk.offsets)))
                if info is None:
                    raise CheckpointError(f"{folder / '.metadata'}: no storage entry for {name} at offset "
                                          f"{tuple(chunk.offsets)} (incomplete metadata)")
                if getattr(info, "transform_descriptors", None):
                    raise CheckpointError(f"{folder / info.relative_path}: {name} is stored with transforms "
                                          f"{list(info.transform_descriptors)}, which this reader does not support")
                path = (folder / str(info.relative_path)).resolve()
                if path.parent != folder.resolve():
                    raise CheckpointError(f"{folder / '.metadata'}: {name} points outside the folder ({info.relative_path})")
                fh = handles.get(str(path))
                if fh is None:
                    fh = handles[str(path)] = path.open("rb")
                fh.seek(int(info.offset))
                blob = fh.read(int(info.length))
                if len(blob) != int(info.length):
                    raise CheckpointError(f"{path}: truncated or corrupted file (expected {info.length} bytes of "
                                          f"{name} at offset {info.offset}, found {len(blob)})")
                try:
                    piece = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
                except Exception as exc:  # noqa: BLE001 - pickle/zip errors on damaged bytes
                    raise CheckpointError(f"{path}: truncated or corrupted file (cannot read {name}): "
                                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
                region = target
                for dim, (start, size) in enumerate(zip(chunk.offsets, chunk.sizes)):
                    region = region.narrow(dim, int(start), int(size))
                if not isinstance(piece, torch.Tensor) or tuple(piece.shape) != tuple(region.shape):
                    raise CheckpointError(f"{path}: {name} chunk has shape {tuple(getattr(piece, 'shape', ()))}, "
                                          f"metadata says {tuple(region.shape)} (corrupted?)")
                region.copy_(piece)
    except OSError as exc:
        raise CheckpointError(f"{folder}: cannot read DCP data: {exc}") from exc
    finally:
        for fh in handles.values():
            fh.close()
    return wanted


def is_dcp(path: Path) -> bool:
    return path.is_dir() and (path / ".metadata").is_file() and any(path.glob("*.distcp"))


@register_backend("dcp", is_dcp, priority=20, expects="torch.distributed.checkpoint folder: .metadata + *.distcp")
def load_dcp(source: str, head: str, *, tokenizer: str | None = None, config: str | None = None) -> tuple[Any, Any]:
    import torch
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    folder = Path(source)
    metadata = load_metadata(folder)
    try:
        shapes = {k: torch.empty(tuple(v.size), dtype=v.properties.dtype, device="meta")
                  for k, v in metadata.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}
    except (TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(f"{folder / '.metadata'}: malformed tensor entry in DCP metadata: {exc}") from exc
    cfg, _ = find_config(folder, config)
    fit_num_labels(cfg, head, shapes)
    with torch.device("meta"):
        expected = model_class(cfg, head)(cfg).state_dict()
    prefix = guess_prefix(shapes, expected)  # e.g. 'model.'; 'model.roberta.' for an encoder
    chosen = {k: m for k, m in shapes.items() if k.startswith(prefix)}
    claimed, needed = sum(m.numel() for m in chosen.values()), sum(t.numel() for t in expected.values())
    if claimed > 2 * needed + 2**20:  # never allocate what a damaged/hostile .metadata claims
        raise CheckpointError(f"{folder / '.metadata'}: claims {claimed} values under {prefix!r}, the model "
                              f"from the config has {needed} (wrong config or corrupted metadata)")
    on_disk = sum(f.stat().st_size for f in folder.glob("*.distcp"))
    check_claimed_bytes(sum(m.numel() * m.element_size() for m in chosen.values()), on_disk,
                        str(folder / ".metadata"), "the DCP metadata", expansion=2)
    wanted = {k: torch.empty(tuple(m.shape), dtype=m.dtype) for k, m in chosen.items()}
    if not wanted:
        raise CheckpointError(f"{folder}: no model tensors found (expected keys like '{next(iter(expected))}')")
    read_tensors(folder, metadata, wanted)
    model = model_from_state_dict(cfg, head, wanted, str(folder))
    tok = load_tokenizer([folder, folder.parent, folder.parent.parent], str(folder), tokenizer)
    return model, tok


