"""XCOPA (XTREME-R) on the real data in ../shared/data/xcopa, answered three ways:

* a tiny multiple-choice checkpoint (``XLMRobertaForMultipleChoice``) through the ``lm_eval``
  command line, checked against the official ``run_xcopa.py`` input ("{premise} What was the
  {question}?" paired with each choice) run directly with transformers;
* a tiny mT5 (text-to-text, rank classification of ``choice1``/``choice2``), checked against
  the same scores computed directly;
* a tiny GPT-2-style decoder under ``--model hf`` (log-likelihood of each choice's text),
  checked against transformers' log-probabilities of the logged prompts;

plus the loader (both local layouts, withheld gold, bad rows), the fingerprints and the
official prediction layout.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.tiny_decoders import tiny_decoder  # noqa: E402
from helpers.tiny_models import tiny_xlmr  # noqa: E402

from harness_ext.tasks.classify import _accuracy_of_items  # noqa: E402
from xtreme_tasks.data import DataError, load_checked  # noqa: E402
from xtreme_tasks.data import xcopa  # noqa: E402
from xtreme_tasks.table import BENCHMARKS, TABLE  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LANGS = ("et", "qu")
LIMIT = 40


def rows(lang: str) -> list[dict]:
    path = SHARED / "xcopa" / lang / f"test.{lang}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:LIMIT]


def run_cli(tmp: Path, model: str, model_args: str) -> tuple[dict, dict]:
    from test_llm_prompted import run_cli as lm_eval_cli

    tasks = ",".join(f"xtreme-xcopa-{lang}" for lang in LANGS)
    results, samples = lm_eval_cli(tmp, model_args, tasks, model=model, data=SHARED, limit=LIMIT, batch_size=8)
    return results["results"], samples


def accuracy_of(predicted: list[int], lang: str) -> float:
    gold = [row["label"] for row in rows(lang)]
    return 100.0 * sum(p == g for p, g in zip(predicted, gold)) / len(gold)


# ----------------------------------------------------------------------------- data
def test_the_table_and_the_real_files_agree():
    spec = TABLE["xcopa"]
    assert spec.languages == tuple("et ht id it qu sw ta th tr vi zh".split()) and spec.request_kind == "choose"
    assert "xcopa" in BENCHMARKS["xtreme-r"].tasks and "xcopa" not in BENCHMARKS["xtreme"].tasks
    for lang in spec.languages:
        docs, check = load_checked("xcopa", lang, data_dir=SHARED)
        assert len(docs) == 500 and check.standard is True, check.message
        assert len(load_checked("xcopa", lang, "validation", data_dir=SHARED)[0]) == 100
    docs = load_checked("xcopa", "et", data_dir=SHARED)[0]
    first = rows("et")[0]
    assert docs[0]["context"] == f"{first['premise']} What was the {first['question']}?"
    assert docs[0]["choices"] == [first["choice1"], first["choice2"]]
    assert docs[0]["label"] == ("choice1", "choice2")[first["label"]]


def test_official_download_layout_has_its_gold_withheld(tmp_path, caplog):
    """XTREME-R's download_data.sh writes xcopa/test-<lang>.jsonl with every label set to 0."""
    folder = tmp_path / "xcopa"
    folder.mkdir()
    lines = [json.dumps({**row, "label": 0}) for row in rows("et")]
    (folder / "test-et.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs = xcopa.local(tmp_path, "xcopa", "et", "test")
    assert len(docs) == LIMIT and {d["label"] for d in docs} == {None}
    assert "gold withheld" in caplog.text
    assert math.isnan(_accuracy_of_items([("choice1", d["label"]) for d in docs]))
    # the same layout with real labels (e.g. the validation file) keeps them
    (folder / "val-et.jsonl").write_text("\n".join(json.dumps(r) for r in rows("et")) + "\n", encoding="utf-8")
    assert [d["label"] for d in xcopa.local(tmp_path, "xcopa", "et", "validation")][:3] == \
        [("choice1", "choice2")[r["label"]] for r in rows("et")[:3]]


def test_bad_rows_are_one_line_naming_the_file(tmp_path):
    folder = tmp_path / "xcopa" / "et"
    folder.mkdir(parents=True)
    path = folder / "test.et.jsonl"
    path.write_text('{"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0}\n')
    with pytest.raises(DataError, match=r"test.et.jsonl: row 1: question is 'why', expected cause or effect"):
        xcopa.local(tmp_path, "xcopa", "et", "test")
    path.write_text("{not json\n")
    with pytest.raises(DataError, match=r"test.et.jsonl:1: not valid JSON"):
        xcopa.local(tmp_path, "xcopa", "et", "test")
    with pytest.raises(DataError, match="missing XCOPA ht test data"):
        xcopa.local(tmp_path, "xcopa", "ht", "test")


# ----------------------------------------------------------------------------- fine-tuned multiple-choice head
def direct_multiple_choice(folder: Path, lang: str) -> list[int]:
    """run_xcopa.py's preprocessing and argmax, written out with transformers."""
    from transformers import AutoModelForMultipleChoice, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForMultipleChoice.from_pretrained(folder).eval()
    predicted = []
    for row in rows(lang):
        first = f"{row['premise']} What was the {row['question']}?"
        enc = tok([first, first], [row["choice1"], row["choice2"]], truncation=True,
                  max_length=tok.model_max_length, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = model(**{k: v.unsqueeze(0) for k, v in enc.items()}).logits[0]
        predicted.append(int(logits.argmax()))
    return predicted


@pytest.mark.slow
def test_multiple_choice_checkpoint_through_the_lm_eval_cli(tmp_path):
    folder = tiny_xlmr(tmp_path, head="multiple-choice", seed=1, name="mc")
    results, samples = run_cli(tmp_path, "xtreme", f"pretrained={folder}")
    expected = {lang: accuracy_of(direct_multiple_choice(folder, lang), lang) for lang in LANGS}
    assert len(set(expected.values())) > 1 or 0 < expected["et"] < 100, expected
    for lang in LANGS:
        assert results[f"xtreme-xcopa-{lang}"]["acc,none"] == pytest.approx(expected[lang]), lang
        assert "unparsable,none" not in results[f"xtreme-xcopa-{lang}"]  # an encoder head parses nothing
    assert {s["filtered_resps"][0] for s in samples["xtreme-xcopa-et"]} <= {"choice1", "choice2"}
    # the official submission layout, scored by the official rules, gives back the same accuracy
    from harness_ext.reports.export import export_predictions
    from harness_ext.reports.official import scorer_for
    from harness_ext.reports.results import collect

    systems = collect([tmp_path / "out"])
    refused = export_predictions(systems, tmp_path / "sub")
    assert not refused.written and "a --limit run" in refused.not_exported[0][1]
    done = export_predictions(systems, tmp_path / "sub", allow_partial=True)
    assert sorted(p.relative_to(tmp_path / "sub").as_posix() for p in done.written) == \
        [f"xcopa/test-{lang}.jsonl" for lang in LANGS]
    for lang in LANGS:
        labels = tmp_path / "labels" / "xcopa" / f"test-{lang}.jsonl"
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("".join(json.dumps({"label": row["label"]}) + "\n" for row in rows(lang)))
    spec = TABLE["xcopa"]
    for lang in LANGS:  # the official per-language scorer (score_folder needs all 11 languages)
        scored, _ = scorer_for(spec)(spec, lang, tmp_path / "sub" / "xcopa" / f"test-{lang}.jsonl",
                                     tmp_path / "labels" / "xcopa" / f"test-{lang}.jsonl")
        assert scored["acc"] == pytest.approx(expected[lang]), lang


def test_a_sequence_classification_checkpoint_is_refused_before_any_forward_pass(tmp_path):
    import lm_eval

    from harness_ext import api

    folder = tiny_xlmr(tmp_path, head="sequence-classification", seed=1, name="seqcls")
    os.environ["XTREME_DATA_DIR"] = str(SHARED)
    try:
        with pytest.raises(Exception, match="multiple-choice head"):
            lm_eval.simple_evaluate(model="xtreme", model_args=f"pretrained={folder}", tasks=["xtreme-xcopa-et"],
                                    limit=2, task_manager=api.xtreme_task_manager())
    finally:
        os.environ.pop("XTREME_DATA_DIR", None)


# ----------------------------------------------------------------------------- mT5 text-to-text
def direct_mt5(folder: Path, lang: str) -> list[int]:
    """Rank classification: sum log-probability of 'choice1' / 'choice2' (with </s>) given the input."""
    from transformers import AutoTokenizer, MT5ForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(folder)
    model = MT5ForConditionalGeneration.from_pretrained(folder).eval()
    predicted = []
    for row in rows(lang):
        text = (f"xcopa: {row['premise']} What was the {row['question']}? choice1: {row['choice1']} "
                f"choice2: {row['choice2']}")
        ids = tok(text, return_tensors="pt")["input_ids"]
        scores = []
        for target in ("choice1", "choice2"):
            labels = tok(target, return_tensors="pt")["input_ids"]
            with torch.no_grad():
                logits = model(input_ids=ids, labels=labels).logits[0].log_softmax(-1)
            scores.append(float(logits.gather(-1, labels[0].unsqueeze(-1)).sum()))
        predicted.append(0 if scores[0] >= scores[1] else 1)
    return predicted


@pytest.mark.slow
def test_tiny_mt5_answers_xcopa_by_text(tmp_path):
    from test_t2t_adapter import tiny_t2t_mt5

    folder = tiny_t2t_mt5(tmp_path / "mt5", seed=3)
    results, samples = run_cli(tmp_path, "xtreme", f"pretrained={folder}")
    for lang in LANGS:
        expected = accuracy_of(direct_mt5(folder, lang), lang)
        assert results[f"xtreme-xcopa-{lang}"]["acc,none"] == pytest.approx(expected), lang
        assert results[f"xtreme-xcopa-{lang}"]["unparsable,none"] == 0


# ----------------------------------------------------------------------------- any lm-eval model
@pytest.mark.slow
def test_tiny_decoder_under_model_hf_scores_each_choice(tmp_path):
    from test_llm_prompted import context_of, direct_loglikelihood, load

    folder = tiny_decoder(tmp_path / "gpt2", "gpt2", seed=1)
    results, samples = run_cli(tmp_path, "hf", f"pretrained={folder}")
    model, tok = load(folder)
    for lang in LANGS:
        source = rows(lang)
        predicted = []
        for sample, row in zip(samples[f"xtreme-xcopa-{lang}"], source):
            context = context_of(sample)
            assert context["continuations"] == [" " + row["choice1"], " " + row["choice2"]]
            assert f"{row['premise']} What was the {row['question']}?\nAnswer:" in context["prompt"]
            direct = [direct_loglikelihood(model, tok, context["prompt"], c) for c in context["continuations"]]
            assert context["loglikelihoods"] == pytest.approx(direct, abs=1e-4)
            predicted.append(0 if direct[0] >= direct[1] else 1)
        assert results[f"xtreme-xcopa-{lang}"]["acc,none"] == pytest.approx(accuracy_of(predicted, lang))


def test_few_shot_is_refused_in_one_line():
    from harness_ext.tasks.prompting import FewshotError, check_fewshot

    with pytest.raises(FewshotError, match="XCOPA has no English part"):
        check_fewshot("xcopa", 2, "xtreme-xcopa-et")


def test_a_system_names_its_xcopa_checkpoint(tmp_path):
    """checkpoints.yaml: one checkpoint per task, XCOPA's with the multiple-choice head."""
    from harness_ext.systems import load_systems

    (tmp_path / "mc").mkdir()
    path = tmp_path / "checkpoints.yaml"
    path.write_text("version: 1\nsystems:\n  mine:\n    family: xlmr\n    size: 1000\n    checkpoints:\n      xcopa: {source: mc}\n"
                    "      lareqa: {source: mc, head: encoder}\n")
    system = load_systems(path)["mine"]
    ref = system.checkpoint_for("xcopa")
    assert (ref.head, ref.source) == ("multiple-choice", str(tmp_path / "mc"))
    assert system.checkpoint_for("lareqa").settings  # a retrieval task: layer and pooling apply
