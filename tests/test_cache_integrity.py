"""The embedding cache verifies what it reads: vectors edited in place, NaN, a wrong width,
a truncated, empty or deleted file are each dropped with one warning and embedded again
(the result equals an uncached run); so are poisoned entries (check file missing, or rewritten
without the per-user key, keys reordered); an unwritable cache warns once and the run goes on."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from harness_ext.adapters.encoder.embed import Embedder
from harness_ext.adapters.runtime.settings import AdapterSettings
from harness_ext.backends import load_checkpoint
from harness_ext.retrieval.cache import EmbeddingCache
from tests.helpers.tiny_models import tiny_bert

TEXTS = ["hello world this is a test", "bonjour le monde", "hallo welt das ist ein hund haus", "hello"]


def _vectors_file(root: Path) -> Path:
    (found,) = root.rglob("*.vectors.npy")
    return found


def _overwrite(f: Path) -> None:
    data = np.load(f)
    data[0, 0] += 1.0
    np.save(f, data)


def _nan(f: Path) -> None:
    data = np.load(f)
    data[1, 2] = np.nan
    np.save(f, data)


def _wider(f: Path) -> None:
    data = np.load(f)
    np.save(f, np.concatenate([data, data], axis=1))


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _sibling(f: Path, suffix: str) -> Path:
    return f.with_name(f.name.replace(".vectors.npy", suffix))


def _forged_check(f: Path) -> None:
    """Poisoning: new vectors plus a check file recomputed by someone without the user's secret."""
    import hashlib
    import hmac
    import json

    _overwrite(f)
    data = np.load(f)
    keys = np.load(_sibling(f, ".keys.npy"))
    mac = hmac.new(b"guessed-key-guessed-key", digestmod=hashlib.sha256)
    mac.update(f"{f.parent.name}\0{list(data.shape)}\0".encode() + keys.tobytes() + data.tobytes())
    _sibling(f, ".check.json").write_text(json.dumps({"shape": list(data.shape), "dtype": "float32",
                                                      "mac": mac.hexdigest(), "sha1": hashlib.sha1(data.tobytes()).hexdigest()}))


def _swapped_keys(f: Path) -> None:
    """Poisoning without touching the vectors: text 0 now finds text 1's vector."""
    keys_file = _sibling(f, ".keys.npy")
    keys = np.load(keys_file)
    np.save(keys_file, keys[[1, 0, *range(2, len(keys))]])


FAULTS = {
    "check-file-missing": lambda f: _sibling(f, ".check.json").unlink(),
    "check-file-forged": _forged_check,
    "keys-swapped": _swapped_keys,
    "overwritten": _overwrite,
    "nan": _nan,
    "wrong-width": _wider,
    "truncated": _truncate,
    "empty": lambda f: f.write_bytes(b""),
    "deleted": lambda f: f.unlink(),
}


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return load_checkpoint(str(tiny_bert(tmp_path_factory.mktemp("cache"), head="encoder")), "encoder")


@pytest.mark.parametrize("fault", list(FAULTS))
def test_damaged_entry_is_recomputed_with_one_warning(bert, tmp_path, caplog, fault):
    settings = AdapterSettings(cache_dir=str(tmp_path / "cache"), use_cache=True)
    clean = Embedder(bert, AdapterSettings(use_cache=False)).embed(TEXTS)
    first = Embedder(bert, settings)
    np.testing.assert_allclose(first.embed(TEXTS), clean, rtol=0, atol=1e-6)
    FAULTS[fault](_vectors_file(tmp_path / "cache"))
    again = Embedder(bert, settings)
    with caplog.at_level(logging.WARNING, logger="harness_ext.retrieval.cache"):
        vectors = again.embed(TEXTS)
        vectors_twice = again.embed(TEXTS)
    np.testing.assert_allclose(vectors, clean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(vectors_twice, clean, rtol=0, atol=1e-6)
    assert again.forward_calls >= 1, "the damaged entry was used instead of being recomputed"
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "damaged" in warnings[0] and "embedded again" in warnings[0], warnings
    third = Embedder(bert, settings)  # the re-embedded entry is cached and verified
    np.testing.assert_allclose(third.embed(TEXTS), clean, rtol=0, atol=1e-6)
    assert third.forward_calls == 0


def test_unwritable_cache_warns_once_and_runs_uncached(bert, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings = AdapterSettings(cache_dir=str(blocker / "cache"), use_cache=True)
    clean = Embedder(bert, AdapterSettings(use_cache=False)).embed(TEXTS)
    with caplog.at_level(logging.WARNING, logger="harness_ext.retrieval.cache"):
        for _ in range(2):
            np.testing.assert_allclose(Embedder(bert, settings).embed(TEXTS), clean, rtol=0, atol=1e-6)
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot write" in warnings[0] and "without caching" in warnings[0], warnings
    assert not EmbeddingCache(blocker / "cache").writable


def test_write_failure_midway_warns_once(tmp_path, caplog, monkeypatch):
    """A disk that fills up after the start: the put fails, one warning, later puts are skipped."""
    import harness_ext.retrieval.cache as cache

    namespace = EmbeddingCache(tmp_path / "c").namespace({"x": 1}, layer=0)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "_atomic_save", full)
    with caplog.at_level(logging.WARNING, logger="harness_ext.retrieval.cache"):
        namespace.put(["a"], np.ones((1, 4), np.float32))
        namespace.put(["b"], np.ones((1, 4), np.float32))
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left" in warnings[0]
    assert namespace.get(["a", "b"]) == (None, [0, 1])
