"""UD-POS file layouts as UD releases them, treebank selection by file-name language code
(as XTREME's download_data.sh), pooling order, and damaged CoNLL-U files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xtreme_tasks.data import DataError, load_docs, udpos

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UD = SHARED / "udpos"
EWT = UD / "en_ewt-ud-test.conllu"
GSD = UD / "fr_gsd-ud-test.conllu"


@pytest.fixture(scope="module")
def ewt() -> list[dict]:
    return udpos.read_conllu_files([EWT], "en", "test")[0]


@pytest.fixture(scope="module")
def gsd() -> list[dict]:
    return udpos.read_conllu_files([GSD], "fr", "test")[0]


def link(path: Path, target: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


def test_shared_folder_read_in_place_flat_files_and_licenses(ewt, gsd):
    # ../shared/data/udpos holds flat *-ud-test.conllu files plus LICENSE.*.txt
    assert sorted(p.name for p in UD.iterdir() if p.name.startswith("LICENSE"))
    assert load_docs("udpos", "en", data_dir=SHARED) == ewt
    assert load_docs("udpos", "fr", data_dir=SHARED) == gsd
    assert len(ewt) == 2077 and len(gsd) == 416


def test_unpacked_release_selects_by_file_name_code_not_folder_name(tmp_path, gsd, ewt):
    release = tmp_path / "udpos" / "ud-treebanks-v2.5"
    link(release / "UD_Greek-GDT" / "el_gdt-ud-test.conllu", GSD)
    # Ancient Greek: the hub's `_Greek in path` rule takes it, XTREME's `el_` prefix rule does not
    link(release / "UD_Ancient_Greek-PROIEL" / "grc_proiel-ud-test.conllu", EWT)
    link(release / "UD_Greek-GDT" / "el_gdt-ud-train.conllu", EWT)  # other splits are not pooled
    link(release / "UD_Greek-GDT" / "LICENSE.txt", SHARED / "udpos" / "LICENSE.fr_gsd.txt")
    docs = load_docs("udpos", "el", data_dir=tmp_path)
    assert [d["words"] for d in docs] == [d["words"] for d in gsd]
    assert docs[0]["id"] == "udpos-el-test-0"


def test_treebanks_pooled_in_file_name_order_across_folders(tmp_path, ewt, gsd):
    # folder order (UD_A.. < UD_Z..) is the opposite of file-name order (en_aaa < en_zzz)
    link(tmp_path / "udpos" / "UD_Zulu-Last" / "en_aaa-ud-test.conllu", GSD)
    link(tmp_path / "udpos" / "UD_Alpha-First" / "en_zzz-ud-test.conllu", EWT)
    docs = load_docs("udpos", "en", data_dir=tmp_path)
    assert len(docs) == len(gsd) + len(ewt)
    assert docs[0]["words"] == gsd[0]["words"] and docs[len(gsd)]["words"] == ewt[0]["words"]
    assert [d["id"] for d in docs] == [f"udpos-en-test-{i}" for i in range(len(docs))]


def test_flat_and_folder_files_are_pooled_together(tmp_path, ewt, gsd):
    link(tmp_path / "udpos" / "en_ewt-ud-test.conllu", EWT)
    link(tmp_path / "udpos" / "UD_English-GSD" / "en_gsd-ud-test.conllu", GSD)
    docs = load_docs("udpos", "en", data_dir=tmp_path)
    assert len(docs) == len(ewt) + len(gsd) and docs[0]["words"] == ewt[0]["words"]


def test_a_language_folder_wins_over_release_files(tmp_path, gsd):
    link(tmp_path / "udpos" / "fr" / "fr_gsd-ud-test.conllu", GSD)
    link(tmp_path / "udpos" / "ud-treebanks-v2.5" / "UD_French-X" / "fr_x-ud-test.conllu", EWT)
    assert load_docs("udpos", "fr", data_dir=tmp_path) == [dict(d) for d in gsd]


def test_the_same_file_twice_is_refused(tmp_path):
    link(tmp_path / "udpos" / "en_ewt-ud-test.conllu", EWT)
    second = link(tmp_path / "udpos" / "UD_English-EWT" / "en_ewt-ud-test.conllu", EWT)
    with pytest.raises(DataError, match=rf"en_ewt-ud-test\.conllu is found twice.*{re.escape(str(second))}"):
        load_docs("udpos", "en", data_dir=tmp_path)


def test_another_release_is_read_with_a_warning(tmp_path, caplog, gsd):
    link(tmp_path / "udpos" / "ud-treebanks-v2.7" / "UD_French-GSD" / "fr_gsd-ud-test.conllu", GSD)
    with caplog.at_level("WARNING", logger="xtreme_tasks.data.udpos"):
        assert len(load_docs("udpos", "fr", data_dir=tmp_path)) == len(gsd)
    assert "ud-treebanks-v2.7" in caplog.text and "UD v2.5" in caplog.text


# ------------------------------------------------------------------ damaged CoNLL-U
S1 = "# sent_id = 1\n1\tLe\tle\tDET\t_\t_\t2\tdet\t_\t_\n2\tchat\tchat\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
S2 = "# sent_id = 2\n1\tIl\til\tPRON\t_\t_\t2\tnsubj\t_\t_\n2\tdort\tdormir\tVERB\t_\t_\t0\troot\t_\t_\n\n"


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "udpos" / "fr_x-ud-test.conllu"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_bom_and_crlf_give_the_same_documents(tmp_path):
    plain = load_docs("udpos", "fr", data_dir=tmp_path) if write(tmp_path, (S1 + S2).encode()) else None
    write(tmp_path, b"\xef\xbb\xbf" + (S1 + S2).replace("\n", "\r\n").encode())
    assert load_docs("udpos", "fr", data_dir=tmp_path) == plain
    assert [d["words"] for d in plain] == [["Le", "chat"], ["Il", "dort"]]


@pytest.mark.parametrize(
    "text, line, message",
    [
        (S1 + S2[:-1], 7, "ends inside the sentence that starts at line 5"),  # cut at a line boundary
        (S1 + S2[:-40], 6, "ends here without a line end: it looks truncated"),  # cut inside a line
        (S1 + "# sent_id = 2\n", 5, "ends inside the sentence"),
    ],
    ids=["cut-at-line-end", "cut-mid-line", "cut-after-comment"],
)
def test_a_truncated_file_is_refused(tmp_path, text, line, message):
    path = write(tmp_path, text.encode())
    with pytest.raises(DataError) as err:
        load_docs("udpos", "fr", data_dir=tmp_path)
    assert f"{path}:{line}:" in str(err.value) and message in str(err.value)


def test_a_multiword_range_past_the_last_word_is_refused(tmp_path):
    path = write(tmp_path, (S1 + "1-3\tau\t_\t_\t_\t_\t_\t_\t_\t_\n" + S2.split("\n", 1)[1]).encode())
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:5: multi-word token 1-3"):
        load_docs("udpos", "fr", data_dir=tmp_path)


def test_bad_bytes_name_file_and_line(tmp_path):
    path = write(tmp_path, S1.encode() + b"# sent_id = 2\n1\tcaf\xe9\tx\tNOUN\t_\t_\t0\troot\t_\t_\n\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:6: bytes b'\\xe9' are not UTF-8.*iconv"):
        load_docs("udpos", "fr", data_dir=tmp_path)


def test_an_empty_file_is_named(tmp_path):
    path = write(tmp_path, b"\n\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}: the CoNLL-U file is empty"):
        load_docs("udpos", "fr", data_dir=tmp_path)
