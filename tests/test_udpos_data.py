"""UD-POS data: CoNLL-U on the two real treebanks, XTREME's multi-word conversion,
the official tsv layout, the hub copy, and bad input."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import pytest

from harness_ext.metrics.tagging import span_prf, token_accuracy
from xtreme_tasks.data import DataError, load_docs
from xtreme_tasks.data import conllu, udpos
from xtreme_tasks.table import UPOS_TAGS

UD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "udpos"
TREEBANKS = {"en": UD / "en_ewt-ud-test.conllu", "fr": UD / "fr_gsd-ud-test.conllu"}

#: sha256 of json.dumps([(words, tags), ...]) of the OFFICIAL pipeline's output on these files:
#: google-research/xtreme third_party/ud-conversion-tools/conllu_to_conll.py --lang xx
#: --replace_subtokens_with_fused_forms (run once with networkx 3 API fixes only), then the
#: reading + clean-up of utils_preprocess.udpos_preprocess.
OFFICIAL_DIGEST = {
    "en": "ae7cb1b6060aca5e82edea629ffd16cd957c73ec1bc715f25e494b69b9caba1f",
    "fr": "67e8202e3c515526fa20f95af5ab646ce091cd3d847ba96adbb8c9578606f1ed",
}


def independent_word_count(path: Path) -> tuple[int, int]:
    """(sentences, surface words) counted straight from the text, without our reader.

    A surface word is a multi-word range line, or an integer-id line not covered by a range;
    comments and empty nodes (``n.m``) are not words.
    """
    sentences = words = 0
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        ids = [line.split("\t", 1)[0] for line in block.splitlines() if line and not line.startswith("#")]
        if not ids:
            continue
        sentences += 1
        covered: set[int] = set()
        for token_id in ids:
            if "-" in token_id:
                a, b = map(int, token_id.split("-"))
                covered.update(range(a, b + 1))
                words += 1
        words += sum(1 for t in ids if t.isdigit() and int(t) not in covered)
    return sentences, words


def ud_folder(tmp_path: Path, langs=("en", "fr")) -> Path:
    """$XTREME_DATA_DIR with the real treebanks linked in the UD layout (nothing copied)."""
    for lang in langs:
        folder = tmp_path / "udpos" / lang
        folder.mkdir(parents=True, exist_ok=True)
        (folder / TREEBANKS[lang].name).symlink_to(TREEBANKS[lang])
    return tmp_path


@pytest.fixture(scope="module")
def real_docs() -> dict[str, tuple[list[dict], conllu.ReadReport]]:
    return {lang: udpos.read_conllu_files([path], lang, "test") for lang, path in TREEBANKS.items()}


# ------------------------------------------------------------------ the real treebanks
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_words_read_equal_an_independent_multiword_aware_count(real_docs, lang):
    docs, report = real_docs[lang]
    sentences, words = independent_word_count(TREEBANKS[lang])
    assert len(docs) == sentences == TREEBANKS[lang].read_text(encoding="utf-8").count("# sent_id")
    assert sum(len(d["words"]) for d in docs) == words
    assert all(len(d["words"]) == len(d["tags"]) for d in docs)
    assert report.skipped == []


def test_real_treebank_counts(real_docs):
    en, fr = real_docs["en"], real_docs["fr"]
    assert (len(en[0]), sum(len(d["words"]) for d in en[0])) == (2077, 24740)
    assert (len(fr[0]), sum(len(d["words"]) for d in fr[0])) == (416, 9738)
    assert (en[1].empty_nodes, en[1].multiword_tokens) == (2, 354)
    assert (fr[1].empty_nodes, fr[1].multiword_tokens) == (0, 280)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_output_is_identical_to_the_official_conversion(real_docs, lang):
    docs, _ = real_docs[lang]
    pairs = [(d["words"], d["tags"]) for d in docs]
    assert hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest() == OFFICIAL_DIGEST[lang]


def test_empty_nodes_are_skipped_and_multiword_tokens_are_surface_forms(real_docs):
    en_words = [w for d in real_docs["en"][0] for w in d["words"]]
    fr = real_docs["fr"][0]
    fr_words = [w for d in fr for w in d["words"]]
    assert "don't" in en_words and "n't" not in en_words
    assert "du" in fr_words
    # every multi-word "du" (de ADP + le DET, tied under the noun) takes ADP: French precedence
    fused_du = [
        conllu.multiword_head(s, m, "fr").upos
        for s in conllu.read_conllu(TREEBANKS["fr"], UPOS_TAGS) for m in s.multiword if m.form == "du"
    ]
    assert len(fused_du) == 110 and set(fused_du) == {"ADP"}
    # spaces inside words are removed as udpos_preprocess does ("1 000" in GSD)
    assert "1000" in fr_words and not any(" " in w for w in fr_words)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_gold_tags_as_predictions_score_100(real_docs, lang):
    docs, _ = real_docs[lang]
    gold = [d["tags"] for d in docs]
    assert span_prf(gold, [list(t) for t in gold])["f1"] == pytest.approx(100.0)
    assert token_accuracy(gold, gold) == pytest.approx(100.0)


def test_load_docs_reads_the_ud_layout_and_pools_treebanks(tmp_path, real_docs):
    root = ud_folder(tmp_path)
    assert load_docs("udpos", "en", data_dir=root) == real_docs["en"][0]
    # two treebanks of one language are pooled in file-name order
    (root / "udpos" / "en" / "zz_second-ud-test.conllu").symlink_to(TREEBANKS["fr"])
    pooled = load_docs("udpos", "en", data_dir=root)
    assert len(pooled) == 2077 + 416
    assert pooled[2077]["words"][:3] == real_docs["fr"][0][0]["words"][:3]


def test_official_tsv_layout_round_trip(tmp_path, real_docs):
    docs = real_docs["fr"][0]
    folder = tmp_path / "udpos"
    folder.mkdir()
    lines = []
    for d in docs:
        lines += [f"{w}\t{t}" for w, t in zip(d["words"], d["tags"])] + [""]
    (folder / "test-fr.tsv").write_text("\n".join(lines), encoding="utf-8")
    assert load_docs("udpos", "fr", data_dir=tmp_path) == docs


# ------------------------------------------------------------------ head of a multi-word token
def _sentence(rows: list[str]) -> conllu.Sentence:
    path = Path("synthetic.conllu")
    sentence = conllu.Sentence(path=path, line_no=1, sent_id="s")
    for n, row in enumerate(rows, 1):
        cols = row.split()
        if "-" in cols[0]:
            a, b = map(int, cols[0].split("-"))
            sentence.multiword.append(conllu.MultiwordToken(a, b, cols[1], n))
        else:
            enhanced = conllu._parse_enhanced(cols[4])
            sentence.tokens.append(conllu.Token(int(cols[0]), cols[1], cols[2], int(cols[3]), enhanced, n))
    return sentence


I_M = [
    "1-2 I'm",
    "1 I PRON 3 3:nsubj|5:nsubj:xsubj",
    "2 'm AUX 3 3:cop",
    "3 happy ADJ 0 0:root",
    "4 to PART 5 5:mark",
    "5 help VERB 3 3:xcomp",
]


def test_head_counts_enhanced_dependencies_like_the_converter():
    # basic tree: I and 'm are both children of "happy" (tie; default precedence picks PRON);
    # the enhanced edge help -> I gives "I" one more ancestor, so 'm is the head: AUX.
    assert conllu.fuse(_sentence(I_M), "en") == (["I'm", "happy", "to", "help"], ["AUX", "ADJ", "PART", "VERB"])
    basic_only = [re.sub(r"\|5:nsubj:xsubj", "", row) for row in I_M]
    assert conllu.fuse(_sentence(basic_only), "en")[1][0] == "PRON"


def test_tie_break_uses_the_language_precedence_list():
    rows = ["1-2 xy", "1 x NOUN 3 _", "2 y PRON 3 _", "3 z VERB 0 _"]
    assert conllu.fuse(_sentence(rows), "de")[1][0] == "NOUN"  # default list: NOUN before PRON
    assert conllu.fuse(_sentence(rows), "fr")[1][0] == "PRON"  # French list: PRON before NOUN
    unlisted = ["1-2 xy", "1 x CCONJ 3 _", "2 y SYM 3 _", "3 z VERB 0 _"]
    assert conllu.fuse(_sentence(unlisted), "fr")[1][0] == "CCONJ"  # neither listed: first in order


def test_the_subtoken_nearest_the_root_wins_without_a_tie():
    rows = ["1-2 au", "1 à ADP 3 _", "2 le DET 1 _", "3 z NOUN 0 _"]
    assert conllu.fuse(_sentence(rows), "fr") == (["au", "z"], ["ADP", "NOUN"])


# ------------------------------------------------------------------ bad input
GOOD = "# sent_id = 1\n1\tLe\tle\tDET\t_\t_\t2\tdet\t_\t_\n2\tchat\tchat\tNOUN\t_\t_\t0\troot\t_\t_\n"


def _write(tmp_path: Path, text: str, lang: str = "fr") -> Path:
    folder = tmp_path / "udpos" / lang
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{lang}_x-ud-test.conllu"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("3\tdort\tdormir\tVERB\t_\t_\t0\troot\t_", "9 tab-separated columns"),
        ("x\tdort\tdormir\tVERB\t_\t_\t0\troot\t_\t_", "ID 'x'"),
        ("5\tdort\tdormir\tVERB\t_\t_\t0\troot\t_\t_", "token id 5 where 3"),
        ("3\tdort\tdormir\tVERBE\t_\t_\t0\troot\t_\t_", "UPOS 'VERBE'"),
        ("3\tdort\tdormir\tVERB\t_\t_\tzz\troot\t_\t_", "HEAD column 'zz'"),
        ("3-4\tdort\t_\t_\t_\t_\t_\t_\t_\t_", "multi-word token 3-4"),
    ],
)
def test_malformed_conllu_names_file_and_line(tmp_path, bad_line, message):
    path = _write(tmp_path, GOOD + bad_line + "\n\n" + GOOD + "\n")
    with pytest.raises(DataError) as err:
        load_docs("udpos", "fr", data_dir=tmp_path)
    assert f"{path}:4" in str(err.value) and message in str(err.value)


def test_empty_and_hidden_sentences_are_counted_and_reported(tmp_path, caplog):
    hidden = "1\t_\t_\tNOUN\t_\t_\t0\troot\t_\t_\n2\t_\t_\tPUNCT\t_\t_\t1\tpunct\t_\t_\n"
    only_comments = "# sent_id = empty\n# text = \n"
    _write(tmp_path, GOOD + "\n" + only_comments + "\n" + hidden + "\n" + GOOD + "\n")
    with caplog.at_level(logging.WARNING, logger="xtreme_tasks.data.udpos"):
        docs = load_docs("udpos", "fr", data_dir=tmp_path)
    assert len(docs) == 2
    assert "2 sentence(s) skipped" not in caplog.text  # two different reasons, counted separately
    assert "1 sentence(s) skipped: no words" in caplog.text
    assert "1 sentence(s) skipped: word forms hidden" in caplog.text
    _, report = udpos.read_conllu_files(sorted((tmp_path / "udpos" / "fr").glob("*.conllu")), "fr", "test")
    assert [s.where.rsplit(":", 1)[1] for s in report.skipped] == ["5", "8"]


def test_tsv_errors(tmp_path):
    folder = tmp_path / "udpos"
    folder.mkdir()
    path = folder / "test-de.tsv"
    path.write_text("Der\tDET\nHund\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:2: one column .* strips test labels"):
        load_docs("udpos", "de", data_dir=tmp_path)
    path.write_text("Der\tDET\nHund\tNOUN\textra\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:2: expected 2 tab-separated columns"):
        load_docs("udpos", "de", data_dir=tmp_path)
    path.write_text("Der\tDET\n\nHund\tNN\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:3: tag 'NN'"):
        load_docs("udpos", "de", data_dir=tmp_path)


def test_missing_language_names_both_layouts(tmp_path):
    (tmp_path / "udpos").mkdir()
    with pytest.raises(DataError, match=r"test-ja\.tsv.*ja/\*-ud-test\.conllu.*ja_\*-ud-test\.conllu.*ud-treebanks-v2\.5"):
        load_docs("udpos", "ja", data_dir=tmp_path)


# ------------------------------------------------------------------ hub copy (no network: the loader is faked)
def test_hub_maps_class_ids_to_names(monkeypatch):
    import datasets

    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "pos_tags": datasets.Sequence(datasets.ClassLabel(names=list(UPOS_TAGS))),
    })
    # the hub splits "du" into "de" + "le"; that is its data, we only map ids to names
    rows = datasets.Dataset.from_dict(
        {"tokens": [["Le", "chat", "de", "le", "voisin"]], "pos_tags": [[5, 7, 1, 5, 7]]}, features=features
    )
    calls = []

    def fake_load(name, config, split, revision):
        calls.append((name, config, split, revision))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.delenv("XTREME_DATA_DIR", raising=False)
    monkeypatch.setenv("XTREME_UDPOS_FROM_HUB", "1")  # refused otherwise: not XTREME's data
    docs = load_docs("udpos", "fr")
    assert calls == [("google/xtreme", "udpos.French", "test", "main")]
    assert docs == [{"id": "udpos-fr-test-0", "words": ["Le", "chat", "de", "le", "voisin"],
                     "tags": ["DET", "NOUN", "ADP", "DET", "NOUN"]}]


def test_a_byte_order_mark_is_tolerated(tmp_path):
    path = _write(tmp_path, GOOD + "\n")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_docs("udpos", "fr", data_dir=tmp_path)[0]["words"] == ["Le", "chat"]
