"""Hugging Face backend: ``save_pretrained`` folders (safetensors, .bin, sharded
index) and hub ids. transformers does the loading; this module adds the checks that
make a bad folder fail loudly instead of evaluating a random head.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    check_loading_info,
    check_saved_head,
    hub_offline,
    load_tokenizer,
    model_class,
    offline_unless_hub_answers,
)
from harness_ext.backends._guards import check_config, check_local_config, check_stored_zip, loads_json
from harness_ext.backends.base import CheckpointError, register_backend

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def is_hf_folder(path: Path) -> bool:
    """A folder with config.json and transformers-named weights."""
    return path.is_dir() and (path / "config.json").exists() and any((path / f).exists() for f in WEIGHT_FILES)


@register_backend(
    "hf",
    is_hf_folder,
    priority=0,
    expects="Hugging Face folder: config.json + model.safetensors / pytorch_model.bin / *.index.json (or a hub id)",
)
def load_hf(
    source: str,
    head: str,
    *,
    tokenizer: str | None = None,
    revision: str | None = None,
    device_map: str | dict | None = None,
    max_memory: dict | tuple | None = None,
    dtype: str | None = None,
    offload_folder: str | None = None,
) -> tuple[Any, Any]:
    """Load a transformers folder or hub id with the class for ``head``."""
    from transformers import AutoConfig

    path = Path(source)
    local = path.is_dir()
    if local:
        check_weight_files(path)
        check_local_config(path)
    else:
        offline_unless_hub_answers()  # offline: the cache at once, not minutes of retries per file
    hub = {"revision": revision, "local_files_only": hub_offline() or local, "trust_remote_code": False}
    where = str(path / "config.json") if local else source
    try:
        config = AutoConfig.from_pretrained(source, **hub)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, JSON errors, hub errors
        raise CheckpointError(f"{where}: cannot read the model config: {exc}") from exc
    check_config(config, where)
    check_saved_head(config, head, where)
    cls = model_class(config, head)
    try:
        placement: dict[str, Any] = {}
        if dtype is not None:  # no float32 copy of a 13B model on the way to bf16
            placement["dtype"] = dtype
        if device_map is not None:  # accelerate spreads the layers over the GPUs (and CPU)
            placement.update(device_map=device_map, max_memory=dict(max_memory) if max_memory else None)
            if offload_folder:
                placement["offload_folder"] = offload_folder
        model, info = cls.from_pretrained(source, config=config, output_loading_info=True, **placement, **hub)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors/torch/zip errors on bad files
        files = ", ".join(weight_files(path)) if local else source
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        raise CheckpointError(f"{files}: cannot load {head} weights: {type(exc).__name__}: {first}") from exc
    check_loading_info(info, head, where)
    tok = load_tokenizer([path] if local else [], where, tokenizer if tokenizer else (None if local else source))
    return model, tok


def weight_files(folder: Path) -> list[str]:
    """The weight files a folder holds (shards included), as paths."""
    out = []
    for name in WEIGHT_FILES:
        f = folder / name
        if not f.exists():
            continue
        if name.endswith(".index.json"):
            out.extend(str(folder / s) for s in sorted(set(_index_map(f).values())))
        else:
            out.append(str(f))
    return out


def check_weight_files(folder: Path) -> None:
    """Refuse missing shards and truncated files before transformers reads them,
    so the error names the file instead of a deep stack."""
    files = weight_files(folder)
    if not files:
        raise CheckpointError(f"{folder}: no weights; expected one of {', '.join(WEIGHT_FILES)}")
    for name in files:
        f = Path(name)
        if not f.exists():
            raise CheckpointError(f"{f}: shard listed in the index is missing")
        if not f.is_file():
            raise CheckpointError(f"{f}: is a folder, not a weights file")
        try:
            if f.suffix == ".safetensors":
                check_safetensors(f)
            elif f.suffix == ".bin":
                check_torch_zip(f)
        except OSError as exc:
            raise CheckpointError(f"{f}: cannot be read ({exc.strerror or exc}); check the file and its permissions") from exc


def _index_map(index: Path) -> dict[str, str]:
    try:
        return dict(loads_json(index.read_bytes(), str(index), "a shard index")["weight_map"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{index}: not a valid shard index (expected JSON with a 'weight_map'): {exc}") from exc


def check_safetensors(f: Path) -> None:
    """Header parses and the data it describes fits the file exactly."""
    size = f.stat().st_size
    try:
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > size - 8:
                raise ValueError(f"header length {n} exceeds file size {size}")
            header = loads_json(fh.read(n), str(f), "a safetensors header")
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except CheckpointError:
        raise
    except (struct.error, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{f}: corrupted safetensors file (expected a valid header): {exc}") from exc
    if 8 + n + end != size:
        raise CheckpointError(
            f"{f}: truncated or corrupted safetensors file: header describes {8 + n + end} bytes, file has {size}"
        )


def check_torch_zip(f: Path) -> None:
    """A torch.save zip archive whose central directory is intact and whose pickle names
    nothing but torch's weights-only globals (legacy pickles pass; transformers reads
    them with ``weights_only=True``, which refuses the rest)."""
    from torch.serialization import get_unsafe_globals_in_checkpoint

    from harness_ext.backends._torchfile import check_legacy_weights_only, refuse

    with f.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":  # pre-1.6 pickle format: judged now as transformers' torch.load will
        check_legacy_weights_only(f, "Hugging Face weights")
        return
    check_stored_zip(f, "a torch.save archive")
    try:
        unsafe = get_unsafe_globals_in_checkpoint(str(f))
    except (zipfile.BadZipFile, RuntimeError, ValueError, EOFError) as exc:
        raise CheckpointError(f"{f}: truncated or corrupted torch file (expected a complete torch.save archive): {exc}") from exc
    if unsafe:
        raise refuse(f, "Hugging Face weights", unsafe[0])
