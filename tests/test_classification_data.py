"""XNLI / PAWS-X local files read as the official code reads them: split on tabs, quotes are
plain characters, BOM dropped, CRLF ends a line, bad input is one DataError naming file:line."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from xtreme_tasks.data import DataError, load_docs


def write(tmp_path: Path, data: bytes | str, task: str = "xnli", lang: str = "de") -> Path:
    path = tmp_path / task / f"test-{lang}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def official_read_tsv(path: Path) -> list[list[str]]:
    """What transformers.DataProcessor._read_tsv (used by XTREME's processors) returns."""
    with open(path, encoding="utf-8-sig") as handle:
        return list(csv.reader(handle, delimiter="\t", quotechar=None))


QUOTED = (
    '"Hi," he said.\tHe said hi.\tentailment\n'
    'An "unbalanced quote\tstays on its line.\tneutral\n'
    '"""Doubled"" by csv.writer"\tas the official preprocessing wrote it\tcontradictory\n'
    "Plain.\tAlso plain.\t contradiction \n"
)


def test_quotes_are_plain_characters_as_in_the_official_reader(tmp_path):
    path = write(tmp_path, QUOTED)
    docs = load_docs("xnli", "de", data_dir=tmp_path)
    assert [d["text_a"] for d in docs] == [row[0] for row in official_read_tsv(path)]
    assert [d["text_b"] for d in docs] == [row[1] for row in official_read_tsv(path)]
    assert docs[0]["text_a"] == '"Hi," he said.'  # csv quoting would give 'Hi, he said.'
    assert len(docs) == 4  # the unbalanced quote swallows nothing
    assert [d["label"] for d in docs] == ["entailment", "neutral", "contradiction", "contradiction"]
    assert [d["id"] for d in docs] == [f"xnli-de-test-{i}" for i in range(4)]


def test_csv_writer_output_is_read_exactly_as_the_official_model_saw_it(tmp_path):
    # utils_preprocess.py writes test-<lang>.tsv with csv.writer (QUOTE_MINIMAL, \r\n);
    # run_classify.py reads it back without quote handling: the doubled quotes stay.
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t").writerows([['"Hi," he said.', "b", "1"], ["a b", "c", "0"]])
    path = write(tmp_path, buffer.getvalue(), task="pawsx")
    docs = load_docs("pawsx", "de", data_dir=tmp_path)
    assert [[d["text_a"], d["text_b"], d["label"]] for d in docs] == official_read_tsv(path)
    assert docs[0]["text_a"] == '"""Hi,"" he said."'


def test_bom_and_crlf_give_the_same_documents(tmp_path):
    write(tmp_path, QUOTED)
    plain = load_docs("xnli", "de", data_dir=tmp_path)
    write(tmp_path, b"\xef\xbb\xbf" + QUOTED.replace("\n", "\r\n").encode())
    assert load_docs("xnli", "de", data_dir=tmp_path) == plain
    assert not plain[0]["text_a"].startswith("\ufeff")


def test_trailing_blank_lines_are_ignored_but_not_inner_ones(tmp_path):
    write(tmp_path, QUOTED + "\n\n")
    assert len(load_docs("xnli", "de", data_dir=tmp_path)) == 4
    path = write(tmp_path, QUOTED.replace("\n", "\n\n", 1))
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:2: blank line inside the file"):
        load_docs("xnli", "de", data_dir=tmp_path)


@pytest.mark.parametrize(
    "data, line, message",
    [
        (b"ok\tok\tneutral\nsch\xf6n\tok\tneutral\n", 2, r"bytes b'\\xf6' are not UTF-8.*iconv"),
        ("a\tb\tneutral\nc\td\n", 2, "2 columns .* strips test labels"),
        ("a\tb\tneutral\tx\n", 1, "expected 3 tab-separated columns .* got 4.*utils_preprocess"),
        ("sentence1\tsentence2\tlabel\na\tb\tneutral\n", 1, "a header line"),
        ("a\tb\tmaybe\n", 1, "label 'maybe' is not one of"),
    ],
    ids=["bad-bytes", "no-label", "raw-columns", "header", "bad-label"],
)
def test_bad_input_is_one_error_naming_file_and_line(tmp_path, data, line, message):
    path = write(tmp_path, data)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{line}: {message}"):
        load_docs("xnli", "de", data_dir=tmp_path)


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf\r\n\n"], ids=["empty", "bom-and-blank"])
def test_an_empty_file_is_named(tmp_path, data):
    path = write(tmp_path, data, task="pawsx", lang="ko")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: the PAWS-X file is empty"):
        load_docs("pawsx", "ko", data_dir=tmp_path)
