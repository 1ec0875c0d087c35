"""PAN-X data: the official layout (with and without ``lang:`` prefixes), the hub copy, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xtreme_tasks.data import DataError, load_docs
from xtreme_tasks.table import PANX_TAGS

SENTENCES = [
    (["John", "Smith", "lives", "in", "New", "York", "."], ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O"]),
    (["Google", "opened", "at", "12:30", "."], ["B-ORG", "O", "O", "O", "O"]),
]


def write_panx(root: Path, lang: str, sentences=SENTENCES, prefix: str = "") -> Path:
    folder = root / "panx"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"test-{lang}.tsv"
    blocks = ["\n".join(f"{prefix}{w}\t{t}" for w, t in zip(words, tags)) for words, tags in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def test_official_layout(tmp_path):
    write_panx(tmp_path, "de")
    docs = load_docs("panx", "de", data_dir=tmp_path)
    assert docs == [
        {"id": f"panx-de-test-{i}", "words": words, "tags": tags} for i, (words, tags) in enumerate(SENTENCES)
    ]


def test_raw_language_prefix_is_cut_and_colons_inside_tokens_are_kept(tmp_path):
    write_panx(tmp_path, "en", prefix="en:")
    docs = load_docs("panx", "en", data_dir=tmp_path)
    assert [d["words"] for d in docs] == [w for w, _ in SENTENCES]  # "12:30" intact, "en:" gone
    # without the prefix, a token that looks like one is a token
    write_panx(tmp_path, "fr", sentences=[(["x", "fr:abc"], ["O", "O"])])
    assert load_docs("panx", "fr", data_dir=tmp_path)[0]["words"] == ["x", "fr:abc"]


def test_prefix_must_be_on_every_token_of_a_raw_file(tmp_path):
    path = write_panx(tmp_path, "en", prefix="en:")
    path.write_text(path.read_text(encoding="utf-8") + "\nen:ok\tO\nmissing\tO\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:\d+: word 'missing' lacks the 'en:' prefix"):
        load_docs("panx", "en", data_dir=tmp_path)


@pytest.mark.parametrize(
    "content, line, message",
    [
        ("Paris\tB-LOC\nParis\tB-MISC\n", 2, "tag 'B-MISC'"),
        ("Paris\tB-LOC\tx\n", 1, "expected 2 tab-separated columns"),
        ("Paris\n", 1, "one column .* strips test labels"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, content, line, message):
    folder = tmp_path / "panx"
    folder.mkdir()
    path = folder / "test-sw.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:{line}: {message}"):
        load_docs("panx", "sw", data_dir=tmp_path)


def test_blank_line_runs_only_separate_sentences(tmp_path):
    folder = tmp_path / "panx"
    folder.mkdir()
    (folder / "test-yo.tsv").write_text("\n\nA\tO\n\n\n\nB\tB-PER\n\n", encoding="utf-8")
    assert [d["words"] for d in load_docs("panx", "yo", data_dir=tmp_path)] == [["A"], ["B"]]


def test_missing_file_names_the_path(tmp_path):
    (tmp_path / "panx").mkdir()
    with pytest.raises(DataError, match=r"panx/test-ka\.tsv does not exist"):
        load_docs("panx", "ka", data_dir=tmp_path)


def test_hub_maps_class_ids_to_names(monkeypatch):
    import datasets

    # the hub's class order is not assumed: names are read from the features
    names = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG"]
    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        "langs": datasets.Sequence(datasets.Value("string")),
    })
    rows = datasets.Dataset.from_dict(
        {"tokens": [["Ada", "in", "Rome"], []], "ner_tags": [[3, 0, 1], []], "langs": [["it"] * 3, []]},
        features=features,
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config, split, revision: rows)
    monkeypatch.delenv("XTREME_DATA_DIR", raising=False)
    docs = load_docs("panx", "it")
    assert docs == [{"id": "panx-it-test-0", "words": ["Ada", "in", "Rome"], "tags": ["B-PER", "O", "B-LOC"]}]
    assert set(PANX_TAGS) >= set(docs[0]["tags"])
