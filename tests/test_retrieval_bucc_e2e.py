"""BUCC 2018 end to end through lm-eval's own entry point with the packaged MiniLM.

The real BUCC files are not shipped with the test data, so a corpus in the original
BUCC 2018 layout (``de-en.{sample,training}.{de,en,gold}``) is written from real
Tatoeba English sentences: a planted "de" sentence is its English partner rewritten
(lower-cased, punctuation dropped, words shuffled a little), and both sides carry as many
distractors (other Tatoeba sentences without a partner, near-duplicates included) as
pairs. English MiniLM can then find the pairs, so the scores test the plumbing:
dev+test embedded in one run, threshold from the dev gold, test scored, submission written.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness_ext.metrics.retrieval import bucc_prf

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def rewrite(sentence: str, rng: random.Random) -> str:
    words = re.sub(r"[^\w\s']", "", sentence.lower()).split()
    if len(words) > 3:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def write_corpus(root: Path) -> dict[str, set[tuple[str, str]]]:
    rng = random.Random(0)
    english = list(dict.fromkeys((SHARED / "tatoeba" / "tatoeba.fra-eng.eng").read_text(encoding="utf-8").splitlines()))
    rng.shuffle(english)
    base = root / "bucc2018" / "de-en"  # the original archive's folder
    base.mkdir(parents=True)
    gold_by_split = {}
    pool = iter(english)
    for stem, n_pairs in (("sample", 60), ("training", 80)):
        pairs = [next(pool) for _ in range(n_pairs)]
        xx = [rewrite(s, rng) for s in pairs] + [rewrite(next(pool), rng) for _ in range(n_pairs)]
        en = pairs + [next(pool) for _ in range(n_pairs)]
        xx_ids = [f"de-{stem[0]}{i:08d}" for i in range(len(xx))]
        en_ids = [f"en-{stem[0]}{i:08d}" for i in range(len(en))]
        order_xx, order_en = rng.sample(range(len(xx)), len(xx)), rng.sample(range(len(en)), len(en))
        (base / f"de-en.{stem}.de").write_text("".join(f"{xx_ids[i]}\t{xx[i]}\n" for i in order_xx), encoding="utf-8")
        (base / f"de-en.{stem}.en").write_text("".join(f"{en_ids[i]}\t{en[i]}\n" for i in order_en), encoding="utf-8")
        gold = {(xx_ids[i], en_ids[i]) for i in range(n_pairs)}
        (base / f"de-en.{stem}.gold").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(gold)), encoding="utf-8")
        gold_by_split[stem] = gold
    return gold_by_split


@pytest.mark.slow
def test_bucc_through_lm_eval_cli(minilm_path, tmp_path, capsys):
    gold = write_corpus(tmp_path / "data")
    predictions = tmp_path / "predictions"
    env = {**os.environ, "XTREME_DATA_DIR": str(tmp_path / "data"), "XTREME_BUCC_PREDICTIONS_DIR": str(predictions),
           "XTREME_SEARCH_BACKEND": "cpu", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = [sys.executable, "-m", "lm_eval", "--tasks", "xtreme-bucc2018-de", "--model", "xtreme", "--device", "cpu",
            "--model_args", f"pretrained={minilm_path},layer=-1,pooling=mean,batch_size=256,use_cache=false",
            "--output_path", str(tmp_path / "out")]
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (result_file,) = (tmp_path / "out").rglob("results_*.json")
    scores = json.loads(result_file.read_text())["results"]["xtreme-bucc2018-de"]
    submitted = {tuple(line.split("\t")) for line in (predictions / "test-de.tsv").read_text().splitlines()}
    official = bucc_prf(submitted, gold["training"])  # what the benchmark would score from the file
    for metric in ("f1", "precision", "recall"):
        assert scores[f"{metric},none"] == pytest.approx(official[metric])
    with capsys.disabled():
        print(f"\nBUCC de (synthetic, MiniLM): F1 {scores['f1,none']:.2f} P {scores['precision,none']:.2f} "
              f"R {scores['recall,none']:.2f}; {len(submitted)} pairs submitted")
    assert scores["f1,none"] > 80, scores
    assert all(a.startswith("de-t") for a, _ in submitted)  # test pairs only, never dev
