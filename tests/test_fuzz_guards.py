"""Generated input thrown at the surfaces a hostile checkpoint controls (see
tests/test_hostile_checkpoints.py): nested JSON, array size claims, regular expressions,
zip entries and legacy torch pickles. Outcomes allowed: a result or a one-line
CheckpointError, within a bounded time; never a traceback from deeper down or a hang.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from harness_ext.backends._guards import (
    MAX_JSON_DEPTH,
    check_claimed_bytes,
    check_stored_zip,
    json_depth,
    loads_json,
    regex_select,
)
from harness_ext.backends.base import CheckpointError
from tests.test_fuzz_readers import FUZZ, GARBAGE, _expect_result_or_ours

NAMES = [f"roberta.encoder.layer.{i}.attention.self.{p}" for i in range(4) for p in ("query", "key", "value")]
JSON_TEXT = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                         lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                 st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                         max_leaves=30).map(json.dumps)


def _one_line_or_result(call):
    return _expect_result_or_ours(call)


@FUZZ
@given(depth=st.integers(0, 5000), brackets=st.sampled_from(["[]", "{}"]), tail=GARBAGE)
def test_nested_json(depth: int, brackets: str, tail: bytes) -> None:
    opening, closing = brackets
    text = ('{"a": ' if opening == "{" else "[") * depth + "1" + closing * depth
    for raw in (text.encode(), text.encode() + tail, tail):
        try:
            loads_json(raw, "f.json", "a test file")
        except CheckpointError as exc:
            assert "\n" not in str(exc)
            assert json_depth(raw) > MAX_JSON_DEPTH or "not valid JSON" in str(exc)


@FUZZ
@given(text=JSON_TEXT)
def test_json_depth_agrees_with_the_parser(text: str) -> None:
    def depth(value) -> int:
        if isinstance(value, dict):
            return 1 + max(map(depth, value.values()), default=0)
        if isinstance(value, list):
            return 1 + max(map(depth, value), default=0)
        return 0

    assert json_depth(text) == depth(json.loads(text))
    assert loads_json(text, "f.json", "x") == json.loads(text)


@FUZZ
@given(claimed=st.integers(0, 2**62), on_disk=st.integers(0, 2**40), expansion=st.integers(1, 2048))
def test_size_claims(claimed: int, on_disk: int, expansion: int) -> None:
    try:
        check_claimed_bytes(claimed, on_disk, "f", "an array", expansion)
    except CheckpointError as exc:
        assert "\n" not in str(exc)
    else:
        assert claimed <= max(64 * 2**20, expansion * on_disk)


_REGEX_ALPHABET = st.sampled_from(list("().*+?|[]{}^$\\\\1,9") + ["query", "layer", r"\d", r"\w", "(?:", "(?<=", "{1,20}"])


@FUZZ
@given(parts=st.lists(_REGEX_ALPHABET, max_size=40))
def test_regex_fields_are_bounded(parts: list[str]) -> None:
    pattern = "".join(parts)
    start = time.monotonic()
    result = _one_line_or_result(lambda: regex_select(pattern, NAMES, "adapter_config.json", "target_modules"))
    assert time.monotonic() - start < 5
    if result is not None:
        assert set(result) <= set(NAMES)


@FUZZ
@given(entries=st.lists(st.tuples(st.text("abc/._", min_size=1, max_size=12), st.binary(max_size=300),
                                  st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])),
                        min_size=1, max_size=4),
       cut=st.integers(0, 2000))
def test_zip_entries(entries, cut: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.pt"
        with zipfile.ZipFile(path, "w") as z:
            for name, body, method in entries:
                z.writestr(zipfile.ZipInfo(name), body, compress_type=method)
        data = path.read_bytes()
        for raw in (data, data[:cut]):
            path.write_bytes(raw)
            try:
                check_stored_zip(path, "a torch.save archive")
            except CheckpointError as exc:
                assert "\n" not in str(exc)
            else:
                assert all(m == zipfile.ZIP_STORED for _, _, m in entries)


@FUZZ
@given(raw=GARBAGE)
def test_legacy_torch_pickles(raw: bytes) -> None:
    import tempfile

    from harness_ext.backends._torchfile import check_legacy_storages

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.bin"
        path.write_bytes(raw)
        _one_line_or_result(lambda: check_legacy_storages(path, "a torch.save file"))
