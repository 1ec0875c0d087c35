"""Mewsli-X: inputs built as utils_mewslix.py builds them, both file layouts, one-line errors,
the official map@20 on XTREME's mock submission, and the ranking task's scores.

The real files (get-mewsli-x.sh) cannot be downloaded here: ``helpers/mewslix_files.py``
writes small files in exactly their schema.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness_ext.metrics.retrieval import mean_reciprocal_rank_at_k
from harness_ext.reports.official import ReportError, _score_mewslix
from helpers import mewslix_files as files
from xtreme_tasks.data import DataError, mewslix

MOCK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xtreme_mock"
OFFICIAL_AVG_MAP20 = 14.39025156130419  # evaluate_test.py, mewslix avg_map@20


def test_mention_input_as_the_official_baseline():
    text = "First one. Talks in {Geneva} ended; Smith\nleft  early {today}. Last."
    start, second = text.index("Smith"), text.index("Talks")
    spans = [(0, 10), (second, text.index(" Last")), (text.index("Last"), len(text))]
    context = {"text": text, "sentence_spans": [{"start": a, "end": b} for a, b in spans]}
    mention = {"mention_span": {"start": start, "end": start + 5, "text": "Smith"}}
    # one sentence of context; {..} on either side escaped to (..); the mention marked; lines joined
    # with spaces; double spaces collapsed once (the markup's and the text's own "left  early")
    assert mewslix.mention_text(context, mention, "x") == "Smith: Talks in (Geneva) ended; { Smith } left early (today)."


def test_entity_input_joins_sentences():
    entity = {"description": "Berlin is big.\nIt is old.  Extra", "sentence_spans": [{"start": 0, "end": 14}, {"start": 15, "end": 26}]}
    assert mewslix.entity_text(entity, "x") == "Berlin is big. It is old."


@pytest.mark.parametrize("layout", ["raw", "sharded"])
def test_both_layouts_read_the_same_documents(tmp_path, layout):
    root = files.write_raw(tmp_path) if layout == "raw" else files.write_sharded(tmp_path)
    mentions = mewslix.all_mentions(root, "test")
    entities = mewslix.candidate_docs(root / "mewslix" / "candidate_set_entities.jsonl")
    assert [d["lang"] for d in mentions] == files.LANGUAGES
    assert [d["entity_id"] for d in entities] == [e[0] for e in files.ENTITIES]
    assert mentions[0]["text"] == "Paris: Officials of (the ministry) met in { Paris } on Monday."
    assert mentions[0]["gold"] == "Q90"
    assert entities[1]["text"] == "Berlin is the capital of Germany. It lies on the Spree."
    leaf = mewslix.local(root, "mewslix", "de", "test")  # one language's mentions, then the whole pool
    assert [d["example_id"] for d in leaf[:1]] == ["de-1-0"] and leaf[1:] == entities


def test_blanked_test_labels_mean_no_gold(tmp_path):
    docs = mewslix.all_mentions(files.write_sharded(tmp_path, blank_labels=True), "test")
    assert len(docs) == 11 and all(d["gold"] is None for d in docs)


def test_errors_name_file_line_and_field(tmp_path):
    files.write_raw(tmp_path)
    path = tmp_path / "mewslix" / "candidate_set_entities.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    del record["sentence_spans"]
    path.write_text("\n".join([lines[0], json.dumps(record)] + lines[2:]) + "\n")
    with pytest.raises(DataError) as err:
        mewslix.local(tmp_path, "mewslix", "en", "test")
    message = str(err.value)
    assert f"{path}:2" in message and "sentence_spans" in message and "\n" not in message


def test_mention_across_sentences_is_refused(tmp_path):
    files.write_raw(tmp_path)
    path = tmp_path / "mewslix" / "wikinews_mentions-test.jsonl"
    record = json.loads(path.read_text().splitlines()[0])
    text = record["context"]["text"]
    record["mentions"][0]["mention_span"] = {"start": 0, "end": 20, "text": text[:20]}  # crosses "News arrived."
    path.write_text(json.dumps(record) + "\n" + "\n".join(path.read_text().splitlines()[1:]) + "\n")
    with pytest.raises(DataError, match="crosses sentence boundaries"):
        mewslix.local(tmp_path, "mewslix", "en", "test")


def test_missing_language_is_refused(tmp_path):
    files.write_raw(tmp_path)
    path = tmp_path / "mewslix" / "wikinews_mentions-test.jsonl"
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")  # drop ar
    with pytest.raises(DataError, match="have none for ar"):
        mewslix.local(tmp_path, "mewslix", "en", "test")


# --------------------------------------------------------------------------- the official metric
def test_reciprocal_rank_hand_checked():
    gold = {"a": ["Q1"], "b": ["Q2"], "c": ["Q3"], "d": ["Q4 "]}
    preds = {"a": ["Q1", "Q9"], "b": ["Q9", "Q8", "Q2"], "d": ["Q4"], "x": ["Q1"]}
    # a: 1, b: 1/3, c: no prediction -> 0, d: gold stripped -> 1; x ignored
    assert mean_reciprocal_rank_at_k(gold, preds, 20) == pytest.approx(100 * (1 + 1 / 3 + 0 + 1) / 4)
    assert mean_reciprocal_rank_at_k({"a": ["Q1"]}, {"a": ["Q0"] * 20 + ["Q1"]}, 20) == 0.0  # rank 21 is cut


def test_official_mock_average():
    if not (MOCK / "labels" / "mewslix").is_dir():
        pytest.skip("xtreme_mock not present")
    values = [
        _score_mewslix(None, lang, MOCK / "predictions" / "mewslix" / f"test-{lang}.json",
                       MOCK / "labels" / "mewslix" / f"test-{lang}.json")[0]["map@20"]
        for lang in mewslix.LANGUAGES
    ]
    assert sum(values) / len(values) == pytest.approx(OFFICIAL_AVG_MAP20, abs=1e-9)
    # the task as `xtreme-eval score` scores a folder: every language's file, the plain mean, the score
    from harness_ext.reports.official import score_task
    from xtreme_tasks.table import TABLE

    task = score_task(TABLE["mewslix"], MOCK / "predictions" / "mewslix", MOCK / "labels" / "mewslix")
    assert task.averages["map@20"] == pytest.approx(OFFICIAL_AVG_MAP20, abs=1e-9)
    assert task.score == pytest.approx(OFFICIAL_AVG_MAP20, abs=1e-9) and len(task.per_language) == 11


def test_xtreme_eval_score_on_the_official_mock(capsys):
    """`xtreme-eval score --benchmark xtreme-r --tasks mewslix --json` on XTREME's mock submission."""
    if not (MOCK / "labels" / "mewslix").is_dir():
        pytest.skip("xtreme_mock not present")
    from harness_ext.reports.official import score_command

    assert score_command(MOCK / "predictions", MOCK / "labels", ["mewslix"], as_json=True, benchmark="xtreme-r") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"]["mewslix"]["score"] == pytest.approx(OFFICIAL_AVG_MAP20, abs=1e-9)


def test_scorer_refuses_blank_labels_and_bad_shapes(tmp_path):
    preds, labels = tmp_path / "p.json", tmp_path / "l.json"
    preds.write_text('{"a": ["Q1"]}')
    labels.write_text('{"a": [""]}')
    with pytest.raises(ReportError, match="withheld gold"):
        _score_mewslix(None, "en", preds, labels)
    preds.write_text('{"a": "Q1"}')
    labels.write_text('{"a": ["Q1"]}')
    with pytest.raises(ReportError, match="example id"):
        _score_mewslix(None, "en", preds, labels)


# --------------------------------------------------------------------------- lm_eval end to end
def run_lm_eval(tasks: str, data: Path, out: Path, cache: Path, minilm: Path, preds: Path) -> dict:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "XTREME_DATA_DIR": str(data), "XTREME_PREDICTIONS_DIR": str(preds), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--tasks", tasks, "--model", "xtreme", "--device", "cpu",
         "--model_args", f"pretrained={minilm},layer=-1,pooling=mean,batch_size=64,cache_dir={cache}",
         "--output_path", str(out), "--log_samples"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (result_file,) = out.rglob("results_*.json")
    return {"results": json.loads(result_file.read_text()), "stderr": proc.stderr, "out": out}


@pytest.mark.slow
def test_lm_eval_mewslix_end_to_end(tmp_path, minilm_path):
    """The group on get-mewsli-x.sh-layout files: 11 leaves, the pool embedded once (by one leaf),
    predictions in the official layout that `xtreme-eval score`'s scorer reads, samples without vectors;
    then one leaf alone on XTREME's layout with blanked test labels: it embeds the pool itself, writes
    its predictions and reports NaN with the reason."""
    from harness_ext.reports.official import _score_mewslix

    data, preds = files.write_raw(tmp_path / "raw"), tmp_path / "preds"
    run = run_lm_eval("xtreme-r_mewslix", data, tmp_path / "out", tmp_path / "cache", minilm_path, preds)
    results, configs = run["results"]["results"], run["results"]["configs"]
    for lang in mewslix.LANGUAGES:
        leaf = f"xtreme-mewslix-{lang}"
        assert results[leaf]["map@20,none"] == pytest.approx(100.0), leaf  # each mention names its city
        written = json.loads((preds / "mewslix" / f"test-{lang}.json").read_text())
        (example,) = written
        assert written[example][0] == files.MENTIONS[lang][1] and len(written[example]) == len(files.ENTITIES)
        labels = tmp_path / f"labels-{lang}.json"
        labels.write_text(json.dumps({example: [files.MENTIONS[lang][1]]}))
        assert _score_mewslix(None, lang, preds / "mewslix" / f"test-{lang}.json", labels)[0]["map@20"] == 100.0
    assert results["xtreme-r_mewslix"]["map@20,none"] == pytest.approx(100.0)
    owners = [name for name, config in configs.items() if config["metadata"].get("embeds_pool")]
    assert len(owners) == 1
    samples = "".join(p.read_text() for p in run["out"].rglob("samples_*.jsonl"))
    assert "retrieved ['Q" in samples and "vector sha1:" in samples
    import subprocess
    import sys

    report = subprocess.run([sys.executable, "-m", "harness_ext.cli", "report", str(run["out"])], capture_output=True,
                            text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert report.returncode == 0, report.stderr[-3000:]
    assert "XTREME-R leaderboard" in report.stdout and "Mewsli-X: per-language results" in report.stdout
    assert "| mAP@20 | 100.00 |" in report.stdout

    sharded = files.write_sharded(tmp_path / "sharded", blank_labels=True)
    alone = run_lm_eval("xtreme-mewslix-de", sharded, tmp_path / "out2", tmp_path / "cache", minilm_path,
                        tmp_path / "preds2")
    assert math.isnan(float(alone["results"]["results"]["xtreme-mewslix-de"]["map@20,none"]))
    assert "withholds the test labels" in alone["stderr"]
    assert json.loads((tmp_path / "preds2" / "mewslix" / "test-de.json").read_text())["de-1-0"][0] == "Q64"
