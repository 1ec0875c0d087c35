"""Tatoeba (real LASER files) and BUCC 2018 (both file layouts) loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from xtreme_tasks.data import DataError, load_docs
from xtreme_tasks.data import bucc, tatoeba
from xtreme_tasks.table import TASKS

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --------------------------------------------------------------------------- Tatoeba
def test_all_36_xtreme_languages_load_from_the_real_files():
    sizes = {}
    for lang in TASKS["tatoeba"].languages:
        docs = load_docs("tatoeba", lang, data_dir=SHARED_DATA)
        assert [d["index"] for d in docs] == list(range(len(docs)))
        assert all(d["src"] and d["tgt"] and "\n" not in d["src"] + d["tgt"] for d in docs)
        sizes[lang] = len(docs)
    assert len(sizes) == 36
    assert sizes["de"] == 1000 and min(sizes.values()) >= 100


def test_tatoeba_pairs_are_line_aligned_and_codes_are_mapped():
    docs = tatoeba.local(SHARED_DATA, "tatoeba", "zh", "test")  # zh -> cmn
    xx = (SHARED_DATA / "tatoeba" / "tatoeba.cmn-eng.cmn").read_text(encoding="utf-8").splitlines()
    en = (SHARED_DATA / "tatoeba" / "tatoeba.cmn-eng.eng").read_text(encoding="utf-8").splitlines()
    assert (docs[17]["src"], docs[17]["tgt"]) == (xx[17], en[17])
    assert docs[17]["id"] == "tatoeba-zh-17"


def test_laser_languages_outside_xtreme_load_by_three_letter_code():
    assert len(tatoeba.LASER_LANGUAGES) == 112
    assert len(tatoeba.LASER_EXTRA) == 112 - 36 - 5  # XTREME's 36, XTREME-R's az lt pl uk ro
    on_disk = {p.name.split(".")[1].split("-")[0] for p in (SHARED_DATA / "tatoeba").glob("tatoeba.*-eng.eng")}
    assert on_disk == set(tatoeba.LASER_LANGUAGES)
    docs = tatoeba.local(SHARED_DATA, "tatoeba", "amh", "test")
    assert docs and docs[0]["id"].startswith("tatoeba-amh-")
    # XTREME-R's added languages load by their two-letter code (leaf xtreme-tatoeba-az)
    az = tatoeba.local(SHARED_DATA, "tatoeba", "az", "test")
    assert [d["src"] for d in az] == [d["src"] for d in tatoeba.local(SHARED_DATA, "tatoeba", "aze", "test")]


def test_tatoeba_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="no language 'xx'"):
        tatoeba.local(SHARED_DATA, "tatoeba", "xx", "test")
    with pytest.raises(DataError, match="single split"):
        tatoeba.local(SHARED_DATA, "tatoeba", "de", "train")
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.deu-eng.deu").write_text("a\nb\n", encoding="utf-8")
    (folder / "tatoeba.deu-eng.eng").write_text("a\n", encoding="utf-8")
    with pytest.raises(DataError, match="2 de sentences but 1 English"):
        tatoeba.local(tmp_path, "tatoeba", "de", "test")
    (folder / "tatoeba.fra-eng.fra").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="tatoeba.fra-eng.eng"):
        tatoeba.local(tmp_path, "tatoeba", "fr", "test")


def test_tatoeba_lines_are_read_as_the_official_reader_reads_them(tmp_path):
    # evaluate_retrieval.py: [l.strip() for l in open(f)] -- universal newlines, stripped lines
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.deu-eng.deu").write_bytes("\ufeffeins \r\nzwei\rdrei\n vier".encode())
    (folder / "tatoeba.deu-eng.eng").write_bytes(b"one\ntwo\nthree\nfour\n")
    docs = tatoeba.local(tmp_path, "tatoeba", "de", "test")
    assert [d["src"] for d in docs] == ["eins", "zwei", "drei", "vier"]  # BOM dropped, lone \r ends a line
    (folder / "tatoeba.deu-eng.eng").write_bytes(b"one\ntw\xf6\n")
    with pytest.raises(DataError, match=r"tatoeba\.deu-eng\.eng:2: bytes b'\\xf6' are not UTF-8"):
        tatoeba.local(tmp_path, "tatoeba", "de", "test")
    (folder / "tatoeba.deu-eng.eng").write_bytes(b"")
    with pytest.raises(DataError, match=r"tatoeba\.deu-eng\.eng: the Tatoeba English file is empty"):
        tatoeba.local(tmp_path, "tatoeba", "de", "test")


# --------------------------------------------------------------------------- BUCC
def write_bucc(folder: Path, lang: str, stem: str, xx: dict, en: dict, gold: list | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / f"{lang}-en.{stem}"
    Path(f"{prefix}.{lang}").write_text("".join(f"{k}\t{v}\n" for k, v in xx.items()), encoding="utf-8")
    Path(f"{prefix}.en").write_text("".join(f"{k}\t{v}\n" for k, v in en.items()), encoding="utf-8")
    if gold is not None:
        Path(f"{prefix}.gold").write_text("".join(f"{a}\t{b}\n" for a, b in gold), encoding="utf-8")


XX = {"de-000000001": "Hallo Welt", "de-000000002": "Ein Satz ohne Partner"}
EN = {"en-000000001": "Hello world", "en-000000002": "Unrelated", "en-000000003": "Also unrelated"}
GOLD = [("de-000000001", "en-000000001")]


@pytest.mark.parametrize("layout", ["xtreme", "original-flat", "original-folder"])
def test_bucc_layouts(tmp_path, layout):
    base = tmp_path / "bucc2018"
    if layout == "xtreme":  # download_data.sh: sample->dev, training->test, test gold deleted
        write_bucc(base, "de", "dev", XX, EN, GOLD)
        write_bucc(base, "de", "test", XX, EN, None)
    else:
        folder = base if layout == "original-flat" else base / "de-en"
        write_bucc(folder, "de", "sample", XX, EN, GOLD)
        write_bucc(folder, "de", "training", XX, EN, GOLD)
    dev = load_docs("bucc2018", "de", "dev", data_dir=tmp_path)
    assert len(dev) == 5 and {d["split"] for d in dev} == {"dev"}
    xx_docs = [d for d in dev if d["side"] == "xx"]
    assert [(d["sent_id"], d["text"], d["gold"]) for d in xx_docs] == [
        ("de-000000001", "Hallo Welt", ["en-000000001"]), ("de-000000002", "Ein Satz ohne Partner", [])]
    assert all(d["gold"] is None for d in dev if d["side"] == "en")
    test = load_docs("bucc2018", "de", "test", data_dir=tmp_path)
    assert {d["split"] for d in test} == {"test"}
    has_test_gold = layout != "xtreme"
    assert all((d["gold"] is not None) == has_test_gold for d in test if d["side"] == "xx")
    assert len({d["id"] for d in dev + test}) == 10


def test_bucc_missing_files_and_bad_lines(tmp_path):
    with pytest.raises(DataError, match="original BUCC 2018 files"):
        bucc.local(tmp_path, "bucc2018", "fr", "test")
    base = tmp_path / "bucc2018"
    write_bucc(base, "fr", "dev", {"fr-1": "a"}, {"en-1": "b"}, [("fr-1", "en-9")])
    with pytest.raises(DataError, match="gold pair"):
        bucc.local(tmp_path, "bucc2018", "fr", "dev")
    (base / "fr-en.dev.fr").write_text("fr-1 no tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match="no tab"):
        bucc.local(tmp_path, "bucc2018", "fr", "dev")
    with pytest.raises(DataError, match="splits dev"):
        bucc.local(tmp_path, "bucc2018", "fr", "train")


def test_bucc_hub_copy_is_refused_for_mining():
    with pytest.raises(DataError, match="no distractor|without the distractor"):
        bucc.hub("bucc2018", "de", "test", "main")


def test_bucc_sentences_are_mined_as_the_lines_cut_gives(tmp_path):
    """run_bucc2018.sh: ``cut -f2`` lines, unified as they are (a trailing space makes another row);
    utils_retrieve.read_sent2id strips only to map back to ids, where the two then collide."""
    import numpy as np

    from harness_ext.retrieval.mining import bucc_candidates, unique_texts

    folder = tmp_path / "bucc2018"
    folder.mkdir()
    (folder / "de-en.dev.de").write_text("de-1\tHallo Welt\nde-2 \tHallo Welt \nde-3\tGuten Tag\n", encoding="utf-8")
    (folder / "de-en.dev.en").write_text("en-1\tHello world\nen-2\tGood day\nen-3\tNice day\n", encoding="utf-8")
    (folder / "de-en.dev.gold").write_text("de-3\ten-2\n", encoding="utf-8")
    rows = [(d["sent_id"], d["text"]) for d in bucc.local(tmp_path, "bucc2018", "de", "dev") if d["side"] == "xx"]
    assert rows == [("de-1", "Hallo Welt"), ("de-2", "Hallo Welt "), ("de-3", "Guten Tag")]
    unique, _ = unique_texts([text for _, text in rows])
    assert len(unique) == 3, "two rows, as text_load_unify keys on the whole line"
    # both 'Hallo Welt' rows sit next to en-1 and en-2: the second one uses up en-2, so de-3 gets en-3,
    # and the two 'Hallo Welt' candidates are dropped (the stripped text is repeated: no unique id)
    xx = np.array([[1.0, 0.1, 0.0], [0.99, 0.2, 0.0], [0.0, 0.9, 0.5]], dtype=np.float32)
    en = np.array([[1.0, 0.0, 0.0], [0.3, 1.0, 0.0], [0.0, 0.6, 0.8]], dtype=np.float32)
    candidates = bucc_candidates(["de-1", "de-2", "de-3"], [t for _, t in rows], xx,
                                 ["en-1", "en-2", "en-3"], ["Hello world", "Good day", "Nice day"], en, k=2, backend="cpu")
    assert set(candidates) == {("de-3", "en-3")}
