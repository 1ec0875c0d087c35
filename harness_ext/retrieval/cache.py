"""On-disk cache of sentence embeddings.

Why: BUCC has ~1M sentences per language pair and a layer sweep or a re-run
would otherwise embed them all again. Entries are keyed by

* the checkpoint's identity (:func:`checkpoint_identity`: resolved path plus a
  fingerprint of its files, or a hub id plus commit, or a digest of the weights),
* the embedding settings (layer, pooling, max_length, dtype), which select a
  *namespace* folder, and
* the text itself (SHA-1 of its UTF-8 bytes) inside the namespace.

Layout: ``<root>/<namespace digest>/namespace.json`` (human-readable key) and
chunk files ``<uuid>.vectors.npy`` + ``<uuid>.keys.npy``. A chunk is written as
temporary files renamed into place with ``os.replace``, keys last: a reader
only sees chunks whose keys file exists, so a crash or a concurrent writer never
leaves a half-written entry visible. Vectors are read through ``mmap``.

Entries are verified before use: each chunk has a ``<uuid>.check.json`` holding its shape
and a keyed digest (HMAC-SHA256) of its namespace, keys and vector bytes, made with a
per-user secret kept *outside* the cache folder (:func:`secret_key`). On first use in a
process a chunk's vectors must match it, be float32, have as many rows as its keys and be
finite. A chunk that fails (edited, truncated, deleted, NaN, wrong width, no check file, a
check file rewritten without the secret, a chunk moved from another namespace) is dropped
with one warning and its texts are embedded again. So whoever can write the cache folder
but not read the secret cannot change a score; whoever can read the secret (the user)
can. A cache folder that cannot be written warns once; the run goes on uncached.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from harness_ext.outputs import writable_dir

log = logging.getLogger(__name__)

CACHE_ENV = "XTREME_EMBED_CACHE"
DEFAULT_CACHE_DIR = Path("~/.cache/xtreme-harness/embeddings")
KEY_BYTES = 20  # SHA-1
#: files whose bytes are hashed (small, and they change the model's behaviour)
HASHED_CONFIG_FILES = {
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "modules.json", "sentence_bert_config.json", "adapter_config.json",
}


KEY_ENV = "XTREME_CACHE_KEY_FILE"


def key_file() -> Path:
    """Where the per-user cache secret lives: ``$XTREME_CACHE_KEY_FILE``, else
    ``$XDG_CONFIG_HOME/xtreme-harness/cache.key`` (``~/.config/...``), never in the cache."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return Path(configured).expanduser()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or "~/.config").expanduser()
    return config_home / "xtreme-harness" / "cache.key"


def secret_key() -> bytes:
    """The per-user secret that keys the cache's digests, created (mode 0600) on first use;
    OSError when it can neither be read nor created."""
    return _secret_at(key_file())


@functools.lru_cache(maxsize=8)
def _secret_at(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    if len(data) < 16:
        raise OSError(f"{path}: cache key shorter than 16 bytes (delete it to make a new one)")
    return data


def default_cache_dir(configured: str | os.PathLike | None = None) -> Path:
    """``configured`` (e.g. ``--model_args cache_dir=``), else ``$XTREME_EMBED_CACHE``, else ~/.cache."""
    value = configured or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR
    return Path(value).expanduser()


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


# --------------------------------------------------------------------------- checkpoint identity
def folder_fingerprint(folder: Path) -> str:
    """Digest of every file's relative name, size and mtime, plus the bytes of config files.

    Cheap (no weight bytes are read) yet changes when weights are re-saved; config
    and tokenizer files are hashed by content because they are small.
    """
    digest = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        stat = path.stat()
        rel = path.relative_to(folder).as_posix()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        if path.name in HASHED_CONFIG_FILES and stat.st_size < 50_000_000:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def weights_digest(model: Any) -> str:
    """SHA-1 over parameter/buffer names, shapes and bytes (fallback when no files are known)."""
    import torch

    digest = hashlib.sha1()
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach()
        digest.update(f"{name}\0{tuple(tensor.shape)}\0{tensor.dtype}\0".encode())
        digest.update(tensor.to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_identity(source: str, model: Any = None, backend: str | None = None, head: str | None = None) -> dict:
    """What identifies the weights that produced an embedding.

    A local path: its resolved location and :func:`folder_fingerprint` (or size
    and mtime of a single file). A hub id: the id and the commit the weights were
    downloaded at (``config._commit_hash``); without one, a digest of the weights.
    """
    identity: dict[str, Any] = {"backend": backend, "head": head}
    if model is not None:
        identity["model_class"] = type(model).__name__
    path = Path(str(source)).expanduser()
    if path.exists():
        resolved = path.resolve()
        identity["path"] = str(resolved)
        if resolved.is_dir():
            identity["files"] = folder_fingerprint(resolved)
        else:
            stat = resolved.stat()
            identity["files"] = f"{stat.st_size}:{stat.st_mtime_ns}"
        return identity
    identity["hub_id"] = str(source)
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    if commit:
        identity["commit"] = commit
    elif model is not None:
        identity["weights"] = weights_digest(model)
    return identity


# --------------------------------------------------------------------------- the cache
@dataclass
class CacheNamespace:
    """All cached vectors of one (checkpoint, layer, pooling, max_length, dtype)."""

    folder: Path
    key: Mapping[str, Any]
    _index: dict[bytes, tuple[int, int]] = field(default_factory=dict, repr=False)
    _chunks: list[Path] = field(default_factory=list, repr=False)
    _arrays: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _seen_files: set[str] = field(default_factory=set, repr=False)
    _keys: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _verified: dict[int, bool] = field(default_factory=dict, repr=False)
    _width: int | None = field(default=None, repr=False)
    _unwritable: bool = field(default=False, repr=False)

    def refresh(self) -> None:
        """Pick up chunks written since the last look (by us or another process)."""
        if not self.folder.is_dir():
            return
        for keys_file in sorted(self.folder.glob("*.keys.npy")):
            if keys_file.name in self._seen_files:
                continue
            try:
                keys = np.load(keys_file)
            except (OSError, ValueError) as err:  # unreadable chunk: ignore it, it will be re-embedded
                log.warning("embedding cache: skipping unreadable %s (%s)", keys_file, err)
                self._seen_files.add(keys_file.name)
                continue
            self._seen_files.add(keys_file.name)
            chunk = len(self._chunks)
            self._chunks.append(keys_file.with_name(keys_file.name.replace(".keys.npy", ".vectors.npy")))
            if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
                log.warning("embedding cache: skipping %s (not a %d-byte key table)", keys_file, KEY_BYTES)
                continue
            self._keys[chunk] = keys
            for row, key in enumerate(keys):
                self._index.setdefault(key.tobytes(), (chunk, row))

    def _check(self, chunk: int) -> bool:
        """True when the chunk's vectors are what was written (once per process per chunk);
        otherwise its entries leave the index, with one warning, to be embedded again."""
        if chunk in self._verified:
            return self._verified[chunk]
        vectors_file = self._chunks[chunk]
        problem = self._problem(chunk, vectors_file)
        self._verified[chunk] = problem is None
        if problem is None:
            return True
        log.warning("embedding cache: %s is damaged (%s); its %d entries are embedded again",
                    vectors_file, problem, len(self._keys.get(chunk, ())))
        for row, key in enumerate(self._keys.get(chunk, ())):
            if self._index.get(key.tobytes()) == (chunk, row):
                del self._index[key.tobytes()]
        self._arrays.pop(chunk, None)
        for path in (vectors_file, _check_file(vectors_file), vectors_file.with_name(
                vectors_file.name.replace(".vectors.npy", ".keys.npy"))):
            try:  # remove it so later runs do not warn again; a read-only cache keeps it
                path.unlink(missing_ok=True)
            except OSError:
                pass
        return False

    def _problem(self, chunk: int, vectors_file: Path) -> str | None:
        try:
            array = np.load(vectors_file, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return "vectors file missing"
        except Exception as err:  # noqa: BLE001 - truncated/empty/garbled .npy: EOF, ValueError, ...
            return f"unreadable: {type(err).__name__}: {str(err)[:120]}"
        rows = len(self._keys.get(chunk, ()))
        if array.dtype != np.float32 or array.ndim != 2:
            return f"expected a float32 matrix, found {array.dtype} with shape {array.shape}"
        if array.shape[0] != rows:
            return f"{array.shape[0]} vectors for {rows} keys"
        try:
            check = json.loads(_check_file(vectors_file).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return "check file missing"
        except (OSError, ValueError, RecursionError) as err:
            return f"unreadable check file: {type(err).__name__}"
        if not isinstance(check, dict) or not isinstance(check.get("mac"), str):
            return "check file without a keyed digest (written by an older version or edited)"
        if list(check.get("shape", [])) != list(array.shape) or check.get("dtype") != "float32":
            return f"shape {list(array.shape)}, written as {str(check.get('shape'))[:40]}"
        try:
            digest = self._mac(array.shape)
        except OSError as err:
            return f"cache key unavailable ({err})"
        digest.update(np.ascontiguousarray(self._keys.get(chunk, np.zeros((0, KEY_BYTES), np.uint8))).tobytes())
        finite = True
        for start in range(0, array.shape[0], 65536):
            block = np.ascontiguousarray(array[start:start + 65536])
            digest.update(block.tobytes())
            finite = finite and bool(np.isfinite(block).all())
        if not hmac.compare_digest(check["mac"], digest.hexdigest()):
            return "keyed digest differs from the one written (the keys or vectors were changed)"
        if not finite:
            return "holds NaN or infinite values"
        if self._width is not None and array.shape[1] != self._width:
            return f"vectors of width {array.shape[1]}, the namespace's are {self._width}"
        self._width = array.shape[1]
        self._arrays[chunk] = array
        return None

    def _mac(self, shape: tuple[int, ...]) -> Any:
        """HMAC over the namespace and the shape, to be fed the keys then the vector bytes."""
        mac = hmac.new(secret_key(), digestmod=hashlib.sha256)
        mac.update(f"{self.folder.name}\0{list(shape)}\0".encode())
        return mac

    def __len__(self) -> int:
        return len(self._index)

    def _array(self, chunk: int) -> np.ndarray:
        if chunk not in self._arrays:  # normally filled by _check
            self._arrays[chunk] = np.load(self._chunks[chunk], mmap_mode="r", allow_pickle=False)
        return self._arrays[chunk]

    def get(self, texts: Sequence[str]) -> tuple[np.ndarray | None, list[int]]:
        """``(vectors, missing)``: a float32 matrix with the cached rows filled in (zeros
        for misses; ``None`` when nothing is cached) and the positions of the misses.

        Rows are gathered chunk by chunk with fancy indexing, so a hit costs no
        per-text Python copy even for a million sentences.
        """
        self.refresh()
        located = [self._index.get(text_key(text)) for text in texts]
        bad = {c for c in {w[0] for w in located if w is not None} if not self._check(c)}
        if bad:
            located = [None if w is not None and w[0] in bad else w for w in located]
        missing = [i for i, where in enumerate(located) if where is None]
        if len(missing) == len(texts):
            return None, missing
        by_chunk: dict[int, tuple[list[int], list[int]]] = {}
        for i, where in enumerate(located):
            if where is not None:
                positions, rows = by_chunk.setdefault(where[0], ([], []))
                positions.append(i)
                rows.append(where[1])
        out: np.ndarray | None = None
        for chunk, (positions, rows) in by_chunk.items():
            block = np.asarray(self._array(chunk)[np.asarray(rows)], dtype=np.float32)
            if out is None:
                out = np.zeros((len(texts), block.shape[1]), dtype=np.float32)
            out[np.asarray(positions)] = block
        return out, missing

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Add one chunk (atomic: temp files + ``os.replace``, keys last)."""
        if not len(texts):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[0] != len(texts):
            raise ValueError(f"{len(texts)} texts but {vectors.shape[0]} vectors")
        if self._unwritable:
            return
        # raw bytes as uint8 rows: a numpy "S20" string would drop a digest's trailing NUL bytes
        keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8).reshape(len(texts), KEY_BYTES)
        name = uuid.uuid4().hex
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "namespace.json"
            if not meta.exists():
                _atomic_write_bytes(meta, json.dumps(dict(self.key), indent=1, sort_keys=True, default=str).encode())
            vectors_file = self.folder / f"{name}.vectors.npy"
            _atomic_save(vectors_file, vectors)
            mac = self._mac(vectors.shape)
            mac.update(keys.tobytes())
            mac.update(vectors.tobytes())
            check = {"shape": list(vectors.shape), "dtype": "float32", "mac": mac.hexdigest()}
            _atomic_write_bytes(_check_file(vectors_file), json.dumps(check).encode())
            _atomic_save(self.folder / f"{name}.keys.npy", keys)
        except OSError as err:
            self._unwritable = True
            warn_unwritable(self.folder.parent, err)


class EmbeddingCache:
    """Namespaces of cached embeddings under one root folder."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = default_cache_dir(root)
        self._namespaces: dict[str, CacheNamespace] = {}
        problem = writable_dir(self.root)
        if problem is None:
            try:  # without the secret nothing cached can be trusted or written
                secret_key()
            except OSError as err:
                problem = f"no cache key at {key_file()}: {err.strerror or err}; set ${KEY_ENV} to a writable file"
        self.writable = problem is None
        if problem:  # found before any embedding; cached entries are still read
            warn_unwritable(self.root, problem)

    def namespace(self, identity: Mapping[str, Any], **settings: Any) -> CacheNamespace:
        key = {"checkpoint": dict(identity), **settings}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:24]
        if digest not in self._namespaces:
            self._namespaces[digest] = CacheNamespace(self.root / digest, key, _unwritable=not self.writable)
        return self._namespaces[digest]


_WARNED: set[str] = set()


def warn_unwritable(folder: Path, err: BaseException | str) -> None:
    """One warning per cache root and process: the run goes on without caching."""
    root = str(folder)
    if root in _WARNED:
        return
    _WARNED.add(root)
    reason = getattr(err, "strerror", None) or str(err)
    log.warning("embedding cache: cannot write to %s (%s); continuing without caching "
                "(set cache_dir= in --model_args or $%s to a writable folder)", root, reason, CACHE_ENV)


def _check_file(vectors_file: Path) -> Path:
    return vectors_file.with_name(vectors_file.name.replace(".vectors.npy", ".check.json"))


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as handle:
        np.save(handle, array, allow_pickle=False)
    os.replace(tmp, path)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def stack(vectors: Iterable[np.ndarray]) -> np.ndarray:
    """Rows -> one float32 matrix (an empty input gives shape (0, 0))."""
    rows = list(vectors)
    return np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, 0), np.float32)
