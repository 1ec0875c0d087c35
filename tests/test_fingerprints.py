"""Test-set fingerprints: the table covers every (task, language) of the XTREME score, its hashes
match the real files in ../shared/data, and a wrong count is flagged (warning, results JSON,
report) and refused in strict mode with both numbers."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from xtreme_tasks import fingerprints
from xtreme_tasks.data import DataError, load_checked, load_docs
from xtreme_tasks.table import BENCHMARKS, TASK_ORDER, TASKS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures" / "results"


def write_xnli(root: Path, n: int, lang: str = "de") -> Path:
    path = root / "xnli" / f"test-{lang}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"premise {i}\thypothesis {i}\tneutral\n" for i in range(n)), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_strict_env(monkeypatch):
    monkeypatch.delenv(fingerprints.STRICT_ENV, raising=False)


# ------------------------------------------------------------------ the table
def test_every_task_and_language_of_the_xtreme_score_has_an_entry():
    score = {(t, lang) for t in TASK_ORDER for lang in TASKS[t].languages}
    extras = {(t, lang) for t in TASK_ORDER for lang in TASKS[t].extra_languages}
    assert len(score) == 15 + 7 + 33 + 40 + 11 + 7 + 9 + 4 + 36
    xtreme_r = BENCHMARKS["xtreme-r"]
    r_score = {(t, lang) for t in xtreme_r.tasks for lang in xtreme_r.languages[t]}
    assert len(r_score) == 15 + 11 + 38 + 48 + 12 + 7 + 9 + 41 + 11 + 11
    assert score | extras | r_score == set(fingerprints.FINGERPRINTS)
    for key, fp in fingerprints.FINGERPRINTS.items():
        assert fp.source and fp.unit, key
        if fp.count is None:
            assert fp.source.startswith("unknown: "), key  # never a guessed number
        else:
            assert fp.count > 0, key


def test_known_counts_and_their_sources():
    fp = fingerprints.FINGERPRINTS
    assert {fp[("xnli", l)].count for l in TASKS["xnli"].languages} == {5010}
    assert fp[("mlqa", "en")].count == 11590 and "MLQA.en.en" in fp[("mlqa", "en")].source
    assert fp[("panx", "yo")].count == 100 and fp[("bucc2018", "ru")].unit == "gold pairs"
    assert fp[("pawsx", "ko")].count is None and "1,999" in fp[("pawsx", "ko")].source
    assert "Ancient Greek" in fp[("udpos", "el")].hub_caveat and "2,809" in fp[("udpos", "el")].hub_caveat


@pytest.mark.parametrize("task", ["tatoeba", "xquad"])
def test_counts_and_hashes_match_the_real_files(task):
    for lang in TASKS[task].all_languages:
        docs, result = load_checked(task, lang, data_dir=SHARED)
        assert result.standard is True, result.message
        assert fingerprints.digest(task, docs) == fingerprints.FINGERPRINTS[(task, lang)].digest


def test_generated_document_is_up_to_date():
    from xtreme_tasks import generate

    assert generate.test_sets_drift() == [], "run `python -m xtreme_tasks.generate`"


# ------------------------------------------------------------------ a wrong count
def test_a_wrong_count_warns_with_task_language_both_counts_and_cause(tmp_path, caplog):
    write_xnli(tmp_path, 3)
    with caplog.at_level(logging.WARNING, logger="xtreme_tasks.fingerprints"):
        docs, result = load_checked("xnli", "de", data_dir=tmp_path)
    assert len(docs) == 3 and result.standard is False
    (record,) = [r for r in caplog.records if r.name == "xtreme_tasks.fingerprints"]
    message = record.getMessage()
    for part in ("XNLI de", "3 sentence pairs", "5,010", "likely cause", "not comparable"):
        assert part in message, part
    assert result.as_metadata() | {"note": ""} == {
        "standard": False, "examples": 3, "expected": 5010, "unit": "sentence pairs", "origin": "local", "note": "",
    }


def test_same_count_other_texts_is_flagged(tmp_path):
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    for suffix in ("amh", "eng"):
        lines = (SHARED / "tatoeba" / f"tatoeba.amh-eng.{suffix}").read_text(encoding="utf-8").splitlines()
        if suffix == "eng":
            lines[5] = "an edited sentence"
        (folder / f"tatoeba.amh-eng.{suffix}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, result = load_checked("tatoeba", "amh", data_dir=tmp_path)
    assert result.standard is False and "texts differ" in result.message and "168" in result.message


@pytest.mark.parametrize("how", ["env", "argument"])
def test_strict_mode_refuses_with_both_numbers(tmp_path, monkeypatch, how):
    write_xnli(tmp_path, 3)
    kwargs = {}
    if how == "env":
        monkeypatch.setenv(fingerprints.STRICT_ENV, "1")
    else:
        kwargs["strict"] = True
    with pytest.raises(DataError, match=r"XNLI de: the test set has 3 sentence pairs, XTREME's has 5,010 .*Refused"):
        load_docs("xnli", "de", data_dir=tmp_path, **kwargs)


def test_unknown_sizes_and_other_splits_are_unchecked_not_flagged(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        result = fingerprints.enforce(fingerprints.check("udpos", "de", "test", [{}] * 3, "local"))
    assert result.standard is None and "unknown" in result.message and "German-HDT" in result.message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("xtreme_tasks")]
    result = fingerprints.check("xnli", "de", "validation", [{}] * 3, "local")
    assert result.standard is None


def test_one_later_treebank_is_not_xtremes_pooled_ud_test_set(caplog):
    # ../shared/data/udpos holds EWT alone, and a later release than v2.5: flagged, not refused
    with caplog.at_level(logging.WARNING, logger="xtreme_tasks.fingerprints"):
        docs, result = load_checked("udpos", "en", data_dir=SHARED)
    assert len(docs) == 2077 and result.standard is False
    assert "2,077 sentences, XTREME's has 5,440" in caplog.text and "English-EWT" in caplog.text
    assert "not every UD v2.5 treebank of the language" in caplog.text


def test_the_udpos_hash_ignores_pooling_order():
    docs = [{"words": ["a"], "tags": ["X"]}, {"words": ["b", "c"], "tags": ["X", "NOUN"]}]
    assert fingerprints.digest("udpos", docs) == fingerprints.digest("udpos", docs[::-1])
    assert fingerprints.digest("udpos", docs) != fingerprints.digest("udpos", docs[:1])


def test_a_full_test_set_is_standard(tmp_path):
    write_xnli(tmp_path, 5010)
    assert load_checked("xnli", "de", data_dir=tmp_path)[1].standard is True


def test_hub_udpos_is_refused_unless_asked_for_and_then_marked(monkeypatch):
    import datasets

    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "pos_tags": datasets.Sequence(datasets.ClassLabel(names=["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ",
                                                                  "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
                                                                  "SCONJ", "SYM", "VERB", "X"])),
    })
    rows = datasets.Dataset.from_dict({"tokens": [["Ο", "σκύλος"]], "pos_tags": [[5, 7]]}, features=features)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: rows)
    monkeypatch.delenv("XTREME_DATA_DIR", raising=False)
    monkeypatch.delenv("XTREME_UDPOS_FROM_HUB", raising=False)
    with pytest.raises(DataError, match=r"refusing the hub copy.*udpos\.Greek.*XTREME_DATA_DIR.*XTREME_UDPOS_FROM_HUB=1"):
        load_docs("udpos", "el")
    monkeypatch.setenv("XTREME_UDPOS_FROM_HUB", "1")
    docs, result = load_checked("udpos", "el")
    assert len(docs) == 1 and result.standard is False and result.origin == "hub"
    # where the hub holds XTREME's sentences (Hungarian: one treebank, no multi-word tokens) it is read,
    # and the count and text hash decide: this fake one-sentence copy is flagged
    monkeypatch.delenv("XTREME_UDPOS_FROM_HUB")
    docs, result = load_checked("udpos", "hu")
    assert len(docs) == 1 and result.standard is False and "1 sentences, XTREME's has 449" in result.message


# ------------------------------------------------------------------ results JSON, report, model argument
def test_the_task_records_the_check_in_its_config(tmp_path):
    from harness_ext.tasks.classify import ClassifyTask

    write_xnli(tmp_path, 3)
    task = ClassifyTask({"task": "xtreme-xnli-de", "metadata": {"data_dir": str(tmp_path)}})
    recorded = task.dump_config()["metadata"]["test_set"]
    assert recorded["standard"] is False and (recorded["examples"], recorded["expected"]) == (3, 5010)


def test_the_report_marks_a_nonstandard_test_set_as_not_comparable(tmp_path, capsys):
    from harness_ext.cli import main

    shutil.copytree(FIXTURES, tmp_path / "results")
    path = sorted((tmp_path / "results" / "sys-a").rglob("results*.json"))[0]
    data = json.loads(path.read_text())
    leaf = next(name for name in data["results"] if name.startswith("xtreme-xnli-"))
    note = f"XNLI {leaf[-2:]}: the test set has 3 sentence pairs, XTREME's has 5,010"
    data.setdefault("configs", {})[leaf] = {"metadata": {"test_set": {"standard": False, "note": note}}}
    path.write_text(json.dumps(data))
    assert main(["report", str(tmp_path / "results"), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert f"sys-a: {leaf} was scored on a test set that is not XTREME's (not comparable" in printed
    assert "3 sentence pairs, XTREME's has 5,010" in printed


def test_strict_test_sets_model_argument_refuses_before_loading_a_model(tmp_path):
    from lm_eval.api.instance import Instance

    from harness_ext.adapters.xtreme_lm import XtremeLM

    write_xnli(tmp_path, 3)
    load_checked("xnli", "de", data_dir=tmp_path)  # records the check, as the task's download() does
    lm = XtremeLM(pretrained=str(tmp_path / "no-such-model"), device="cpu", strict_test_sets="true")
    request = Instance("classify", {"id": "x"}, ("a", "b", ("neutral",)), 0, ("xtreme-xnli-de", 0, 1))
    with pytest.raises(DataError, match=r"3 sentence pairs, XTREME's has 5,010.*strict_test_sets=true"):
        lm.classify([request])
    write_xnli(tmp_path, 5010)
    load_checked("xnli", "de", data_dir=tmp_path)
    with pytest.raises(Exception) as err:  # now it gets as far as loading the (missing) checkpoint
        lm.classify([request])
    assert not isinstance(err.value, DataError) or "strict" not in str(err.value)


def test_export_refuses_a_language_scored_on_a_nonstandard_test_set(tmp_path):
    from harness_ext.reports.export import export_predictions
    from harness_ext.reports.results import collect
    from helpers.synthetic_results import write_run

    rows = {lang: [{"doc_id": 0, "doc": {"id": "a"}, "acc": ["1", "1"]}] for lang in TASKS["pawsx"].languages}
    write_run(tmp_path / "runs" / "s" / "pawsx", "s", "pawsx", rows, {l: {"acc": 100.0} for l in TASKS["pawsx"].languages})
    (path,) = (tmp_path / "runs").rglob("results*.json")
    data = json.loads(path.read_text())
    data.setdefault("configs", {})["xtreme-pawsx-de"] = {
        "metadata": {"test_set": {"standard": False, "note": "PAWS-X de: the test set has 1 sentence pairs, XTREME's has 2,000"}}}
    path.write_text(json.dumps(data))
    done = export_predictions(collect([tmp_path / "runs"]), tmp_path / "sub")
    reasons = dict(done.not_exported)
    assert "not XTREME's" in reasons["xtreme-pawsx-de"] and "2,000" in reasons["xtreme-pawsx-de"]
    assert len(done.written) == len(TASKS["pawsx"].languages) - 1
