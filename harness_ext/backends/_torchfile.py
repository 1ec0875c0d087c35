"""Read ``torch.save`` files from other frameworks without running their code.

fairseq, Lightning, DeepSpeed and jiant pickle configuration objects (argparse
Namespace, omegaconf DictConfig, Lightning AttributeDict, numpy scalars ...) next to
the tensors. ``torch.load(weights_only=True)`` refuses unknown classes; instead of
falling back to full unpickling (arbitrary code), each unknown class is replaced by an
inert stand-in that keeps its data, so configs stay readable and nothing executes.
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from pathlib import Path
from typing import Any

from harness_ext.backends.base import CheckpointError


class Opaque(dict):
    """Stand-in for a class we do not import: a dict of whatever state it carried."""

    __qualname_in_file__ = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        if args:
            self["__args__"] = args
        self.update(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict_state, slots_state)
        if isinstance(state, dict):
            self.update(state)
        else:
            self["__state__"] = state

    def __reduce__(self):  # never pickled back; keep copy/deepcopy working
        return (dict, (dict(self),))


def _stand_in(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (Opaque,), {"__qualname_in_file__": name})


def torch_load(path: Path, what: str = "a torch.save file") -> Any:
    """``torch.load`` on CPU, weights-only, with inert stand-ins for foreign classes."""
    import torch
    from torch.serialization import get_unsafe_globals_in_checkpoint, safe_globals

    check_complete(path, what)
    try:
        unsafe = get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - legacy (non-zip) files: found while loading instead
        unsafe = []
    allowed: list[Any] = [argparse.Namespace]
    allowed += [(_stand_in(name), name) for name in unsafe if name != "argparse.Namespace"]
    for _ in range(50):  # legacy pickles reveal unknown globals one at a time
        try:
            with safe_globals(allowed):
                return torch.load(str(path), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            name = _unsupported_global(str(exc))
            if not name:
                raise CheckpointError(f"{path}: cannot read {what}: {exc}") from exc
            allowed.append((_stand_in(name), name))
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): {exc}") from exc
    raise CheckpointError(f"{path}: cannot read {what}: too many foreign classes")


def _unsupported_global(message: str) -> str | None:
    marker = "Unsupported global: GLOBAL "
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split()[0].strip()


def check_complete(path: Path, what: str) -> None:
    """A zip-format torch file whose central directory is intact (detects truncation)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (expected {what})")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        return
    try:
        with zipfile.ZipFile(path) as z:  # CRC-check what is cheap to read; the directory always
            bad = z.testzip() if path.stat().st_size < 2**31 else (z.infolist() and None)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): {exc}") from exc
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted entry {bad} (expected {what})")


def find_key(obj: Any, key: str, depth: int = 0) -> Any:
    """First value stored under ``key`` anywhere in nested dicts/lists/Namespaces/stand-ins
    (omegaconf nodes keep values under ``_content``/``_val``)."""
    if depth > 12:
        return None
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        if key in obj:
            value = obj[key]
            if isinstance(value, dict) and "_val" in value:
                return value["_val"]
            return value
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    else:
        return None
    for child in children:
        found = find_key(child, key, depth + 1)
        if found is not None:
            return found
    return None
