"""End to end through lm-eval's own entry point: ``python -m lm_eval --tasks xtreme_xquad``.

A tiny random QA checkpoint answers the first 5 questions of each XQuAD language
from the real files; the logged samples are then re-scored here with an
independent transcription of SQuAD v1.1's evaluate-v1.1.py, and the predictions are
re-derived by calling the span adapter directly.
"""

from __future__ import annotations

import collections
import json
import math
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

from harness_ext.adapters.encoder import span
from harness_ext.adapters.runtime.settings import AdapterSettings
from harness_ext.backends import load_checkpoint
from xtreme_tasks.table import get_task

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LIMIT = 5
sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------- independent SQuAD v1.1 scoring
def _normalise(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction: str, gold: str) -> float:
    p, g = _normalise(prediction).split(), _normalise(gold).split()
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def _rescore(samples: list[dict]) -> tuple[float, float]:
    em = f1 = 0.0
    for sample in samples:
        prediction, golds = sample["filtered_resps"][0], sample["doc"]["answers"]["text"]
        em += max(float(_normalise(prediction) == _normalise(g)) for g in golds)
        f1 += max(_f1(prediction, g) for g in golds)
    return 100 * em / len(samples), 100 * f1 / len(samples)


# ---------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def lm_eval_run(tmp_path_factory):
    from test_span_adapter import tiny_minilm_qa

    root = tmp_path_factory.mktemp("e2e")
    model = tiny_minilm_qa(root / "tiny-qa", seed=3)
    out, predictions = root / "out", root / "predictions"
    env = {
        **os.environ,
        "XTREME_DATA_DIR": str(SHARED_DATA),
        "XTREME_PREDICTIONS_DIR": str(predictions),
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",  # a tiny model on a shared 2-core machine
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable, "-m", "lm_eval", "--tasks", "xtreme_xquad", "--model", "xtreme",
        "--model_args", f"pretrained={model},device=cpu", "--batch_size", "8",
        "--limit", str(LIMIT), "--log_samples", "--output_path", str(out),
    ]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"lm_eval failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    (results_file,) = out.rglob("results_*.json")
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        leaf = path.name[len("samples_") :].rsplit("_", 1)[0]
        samples[leaf] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {
        "model": model, "results": json.loads(results_file.read_text(encoding="utf-8")),
        "samples": samples, "predictions": predictions,
    }


@pytest.mark.slow
def test_group_runs_the_eleven_xtreme_languages(lm_eval_run):
    spec = get_task("xquad")
    assert sorted(lm_eval_run["samples"]) == sorted(spec.leaf(lang) for lang in spec.languages)
    assert all(len(rows) == LIMIT for rows in lm_eval_run["samples"].values())
    assert "xtreme-xquad-ro" not in lm_eval_run["results"]["results"], "ro is outside the XTREME group"


@pytest.mark.slow
def test_scores_equal_an_independent_recomputation_from_the_samples(lm_eval_run):
    results = lm_eval_run["results"]["results"]
    ems, f1s = [], []
    for leaf, samples in sorted(lm_eval_run["samples"].items()):
        em, f1 = _rescore(samples)
        assert math.isclose(results[leaf]["em,none"], em, abs_tol=1e-9), leaf
        assert math.isclose(results[leaf]["f1,none"], f1, abs_tol=1e-9), leaf
        ems.append(em)
        f1s.append(f1)
    group = results["xtreme_xquad"]
    assert math.isclose(group["em,none"], sum(ems) / len(ems), abs_tol=1e-9)
    assert math.isclose(group["f1,none"], sum(f1s) / len(f1s), abs_tol=1e-9)
    assert sum(f1s) > 0, "a random head should overlap some gold answer somewhere (else the check is vacuous)"


@pytest.mark.slow
def test_answers_are_the_official_text_and_reproducible(lm_eval_run):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread, as in the subprocess
    try:
        _check_reproducible(lm_eval_run)
    finally:
        torch.set_num_threads(threads)


def _check_reproducible(lm_eval_run) -> None:
    loaded = load_checkpoint(str(lm_eval_run["model"]), "question-answering")
    for leaf, samples in sorted(lm_eval_run["samples"].items()):
        logged = [s["filtered_resps"][0] for s in samples]
        # run_squad's text: the context's whole words from the span's first to its last (joined by one
        # space), or a piece of them; every word of the answer is in the context
        assert all(word in s["doc"]["context"] for a, s in zip(logged, samples) for word in a.split())

        class Request:
            def __init__(self, sample):
                self.args = (sample["doc"]["question"], sample["doc"]["context"])

        direct = span.answer(loaded, [Request(s) for s in samples], AdapterSettings(batch_size=2))
        assert direct == logged, leaf


@pytest.mark.slow
def test_submission_files_hold_the_logged_predictions(lm_eval_run):
    for leaf, samples in lm_eval_run["samples"].items():
        lang = leaf.rsplit("-", 1)[1]
        written = json.loads((lm_eval_run["predictions"] / "xquad" / f"test-{lang}.json").read_text(encoding="utf-8"))
        assert written == {s["doc"]["id"]: s["filtered_resps"][0] for s in samples}
