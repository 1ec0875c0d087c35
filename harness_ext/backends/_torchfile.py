"""Read ``torch.save`` files from other frameworks without running their code.

fairseq, Lightning, DeepSpeed and jiant pickle configuration objects (argparse
Namespace, omegaconf DictConfig, Lightning AttributeDict, numpy scalars ...) next to
the tensors. ``torch.load(weights_only=True)`` refuses unknown classes; instead of
falling back to full unpickling (arbitrary code), each unknown class is replaced by an
inert stand-in that keeps its data, so configs stay readable and nothing executes.
Stand-ins are only made for classes of the packages that put configs into checkpoints
(``STAND_IN_ROOTS``); any other global (``os.system``, ``builtins.eval``, a class of an
unknown package) is refused with :class:`UnsafeCheckpointError` naming the file and the class.

Plain pickles that are not ``torch.save`` files (DCP's ``.metadata``) are read with
:func:`restricted_unpickle`, which resolves only an explicit allow-list of globals.
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

from harness_ext.backends._guards import check_stored_zip
from harness_ext.backends.base import CheckpointError


#: Packages whose classes sit next to the tensors in training checkpoints (hyper-parameters,
#: configs, numpy scalars). Their classes are replaced by inert stand-ins; nothing else is.
STAND_IN_ROOTS = frozenset({
    "argparse", "collections", "typing", "enum", "pathlib", "datetime", "decimal", "fractions", "uuid",
    "numpy", "torch", "omegaconf", "hydra", "fairseq", "jiant", "pytorch_lightning", "lightning",
    "lightning_fabric", "torchmetrics", "transformers", "tokenizers", "peft", "deepspeed", "accelerate",
})


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint file references code we do not run; nothing from it was executed."""


def refuse(path: Path | str, what: str, name: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"{path}: refused to load {what}: it references {name!r}, which is not a tensor, a container "
        "or an allowed config type, so it could run code (nothing from the file was run); "
        "if you trust the file, re-save the weights as safetensors and point the checkpoint at that")


def _root(name: str) -> str:
    return name.split(".", 1)[0]


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


def torch_load(path: Path, what: str = "a torch.save file", mmap: bool = False) -> Any:
    """``torch.load`` on CPU, weights-only, with inert stand-ins for foreign classes.

    ``mmap=True`` maps a zip-format file's storages instead of reading them (optimizer
    shards: only the fp32 master weights are touched)."""
    import torch
    from torch.serialization import get_unsafe_globals_in_checkpoint, safe_globals

    check_complete(path, what)
    try:
        unsafe = get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # noqa: BLE001 - legacy (non-zip) files: found while loading instead
        unsafe = []
    allowed: list[Any] = [argparse.Namespace]
    for name in unsafe:
        if _root(name) not in STAND_IN_ROOTS:
            raise refuse(path, what, name)
        if name != "argparse.Namespace":
            allowed.append((_stand_in(name), name))
    for _ in range(50):  # legacy pickles reveal unknown globals one at a time
        try:
            with safe_globals(allowed):
                return torch.load(str(path), map_location="cpu", weights_only=True,
                                  **({"mmap": True} if mmap and _is_zip(path) else {}))
        except pickle.UnpicklingError as exc:
            name = _unsupported_global(str(exc))
            if not name:
                raise CheckpointError(f"{path}: cannot read {what}: {_first_line(exc)}") from exc
            if _root(name) not in STAND_IN_ROOTS:
                raise refuse(path, what, name) from None
            allowed.append((_stand_in(name), name))
        except Exception as exc:  # noqa: BLE001 - torch's readers raise anything on garbage (struct, Index, OS...)
            raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): "
                                  f"{type(exc).__name__}: {_first_line(exc)}") from exc
    raise CheckpointError(f"{path}: cannot read {what}: too many foreign classes")


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``allowed``; persistent ids are refused."""

    def __init__(self, fh: Any, allowed: Mapping[str, Any], path: Path, what: str) -> None:
        super().__init__(fh)
        self._allowed, self._path, self._what = allowed, path, what

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[f"{module}.{name}"]
        except KeyError:
            raise refuse(self._path, self._what, f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise refuse(self._path, self._what, f"persistent id {str(pid)[:40]!r}")


def restricted_unpickle(path: Path, allowed: Mapping[str, Any], what: str) -> Any:
    """Unpickle ``path`` resolving only ``allowed`` (``"module.name" -> object``).

    For plain pickles (not ``torch.save`` zips): anything outside the allow-list is
    refused before it is called; a damaged file is a one-line CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (expected {what})")
    try:
        with path.open("rb") as fh:
            return _RestrictedUnpickler(fh, allowed, path, what).load()
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - EOF/UnpicklingError/ValueError/... on damaged bytes
        raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): "
                              f"{type(exc).__name__}: {_first_line(exc)}") from exc


def _unsupported_global(message: str) -> str | None:
    for marker in ("Unsupported global: GLOBAL ", "unsupported GLOBAL "):  # zip / legacy wording
        if marker in message:
            return message.split(marker, 1)[1].split()[0].strip()
    return None


def _is_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def check_complete(path: Path, what: str) -> None:
    """A zip-format torch file whose central directory is intact (detects truncation)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (expected {what})")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        check_legacy_storages(path, what)
        return
    check_stored_zip(path, what)
    try:
        with zipfile.ZipFile(path) as z:  # CRC-check what is cheap to read; the directory always
            bad = z.testzip() if path.stat().st_size < 2**31 else (z.infolist() and None)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, OSError (bad seek), struct/zlib errors
        raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): "
                              f"{type(exc).__name__}: {_first_line(exc)}") from exc
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted entry {bad} (expected {what})")


_INT_OPS = frozenset({"INT", "LONG", "BININT", "BININT1", "BININT2", "LONG1", "LONG4"})


def check_legacy_storages(path: Path, what: str) -> None:
    """A pre-1.6 ``torch.save`` file allocates every storage at the size its pickle claims
    before reading it; refuse claims the file cannot hold, scanning the pickle's opcodes
    (nothing is unpickled). Each persistent id (a storage) counts the largest integer
    since the previous one, which bounds its element count."""
    import pickletools

    size = path.stat().st_size
    claimed = 0
    try:
        with path.open("rb") as fh:
            for _ in range(4):  # magic number, protocol, sys info, then the object itself
                largest = 0
                for op, arg, _pos in pickletools.genops(fh):
                    if op.name in _INT_OPS and isinstance(arg, int):
                        largest = max(largest, arg)
                    elif op.name in ("BINPERSID", "PERSID"):
                        claimed += largest
                        largest = 0
    except Exception as exc:  # noqa: BLE001 - ValueError on unknown opcodes, EOF on truncation
        raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): "
                              f"{type(exc).__name__}: {_first_line(exc)}") from None
    if claimed > 2 * size + 2**20:
        raise CheckpointError(f"{path}: its storages claim {claimed} elements but the file has {size} bytes "
                              f"(expected {what}); the file is damaged or hostile, nothing was allocated")


def check_legacy_weights_only(path: Path, what: str) -> None:
    """Judge a pre-1.6 file as transformers' ``torch.load(weights_only=True)`` will, so
    ``checkpoints validate`` refuses what the run would refuse."""
    import torch

    check_legacy_storages(path, what)
    try:
        torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = _unsupported_global(str(exc))
        if name:
            raise refuse(path, what, name) from None
        raise CheckpointError(f"{path}: cannot read {what}: {_first_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - torch's legacy reader raises anything on garbage
        raise CheckpointError(f"{path}: truncated or corrupted file (expected {what}): "
                              f"{type(exc).__name__}: {_first_line(exc)}") from None


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
