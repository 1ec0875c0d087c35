"""LAReQA (XQuAD-R): the official mAP@20 definition, the pool built from the real files, the ranking.

``official_map_at_k`` below transcribes the definition of ``utils_lareqa.mean_avg_prec_at_k``
/ ``average_precision_at_k`` (google-research/xtreme third_party/): every question scores
every candidate by the dot product of the encodings, the candidates are ranked by
``argsort()[::-1]``, AP@k sums precision at each first hit among the top k and divides by
``min(#relevant, k)``. It is checked on a hand-computed case, then used as the reference
for our ranked search (faiss / torch, blocked pool) on the same encodings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness_ext.metrics.retrieval import average_precision_at_k, mean_average_precision_at_k
from harness_ext.retrieval.ranking import merge_top_k, normalize_rows, top_k
from xtreme_tasks.data import DataError, lareqa

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def official_ap(targets: np.ndarray, ranked: np.ndarray, k: int | None) -> float:
    ranked = ranked[:k] if k else ranked
    score = hits = 0.0
    for i, pred in enumerate(ranked):
        if pred in targets and pred not in ranked[:i]:
            hits += 1.0
            score += hits / (i + 1.0)
    return score / (min(len(targets), k) if k else len(targets))


def official_map_at_k(questions: np.ndarray, candidates: np.ndarray, relevant: list[set[int]], k: int = 20) -> float:
    """The official loop: dot products, argsort()[::-1], AP@k per question, mean (0-1)."""
    aps = []
    for q, rel in zip(questions, relevant):
        scores = q[None, :].dot(candidates.T)
        y_true = np.zeros(scores.shape[1])
        y_true[list(rel)] = 1
        aps.append(official_ap(np.where(y_true == 1)[0], np.squeeze(scores, 0).argsort()[::-1], k))
    return float(np.mean(aps))


# --------------------------------------------------------------------------- the definition, by hand
HAND = [  # (relevant, ranking, k, AP by hand)
    ({0, 2}, [2, 1, 0, 3], 20, (1 / 1 + 2 / 3) / 2),
    ({5}, [1, 2, 3, 5, 0], 20, 1 / 4),
    ({0, 1, 2}, [3, 0, 1], 2, (1 / 2) / 2),  # only the top 2 count; divisor min(3, 2)
    ({0, 1}, [0, 0, 1], 20, (1 / 1 + 2 / 3) / 2),  # a repeated prediction counts once
    ({7}, [1, 2, 3], 20, 0.0),
]


@pytest.mark.parametrize("relevant,ranked,k,expected", HAND)
def test_average_precision_hand_checked(relevant, ranked, k, expected):
    assert official_ap(np.array(sorted(relevant)), np.array(ranked), k) == pytest.approx(expected)
    assert average_precision_at_k(relevant, ranked, k) == pytest.approx(expected)


def test_official_map_on_hand_encodings():
    # 2 questions, 4 candidates (unit vectors); q0 ranks c2 > c1 > c0 > c3, relevant {0, 2}
    questions = np.array([[1.0, 0.0], [0.0, 1.0]])
    candidates = normalize_rows(np.array([[0.2, -1.0], [0.6, 0.8], [1.0, 0.1], [-1.0, 0.0]], dtype=np.float32))
    relevant = [{0, 2}, {3}]
    # q0: c2 (0.995), c1 (0.6), c0 (0.196), c3 -> AP (1 + 2/3) / 2; q1: c1, c2, c3 (0.0), c0 -> AP 1/3
    expected = ((1 + 2 / 3) / 2 + 1 / 3) / 2
    assert official_map_at_k(questions, candidates, relevant) == pytest.approx(expected)
    _, ranked = top_k(questions, candidates, 20, backend="torch")
    assert mean_average_precision_at_k(relevant, ranked.tolist(), 20) == pytest.approx(100 * expected)


@pytest.mark.parametrize("backend", ["torch", "cpu"])
def test_ranked_search_equals_official_map(backend):
    """Random encodings (no ties): our blocked top-20 search + AP equals the official argsort loop."""
    if backend == "cpu":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    candidates = normalize_rows(rng.standard_normal((997, 32)).astype(np.float32))
    questions = normalize_rows(rng.standard_normal((120, 32)).astype(np.float32))
    relevant = [set(rng.choice(997, size=rng.integers(1, 12), replace=False).tolist()) for _ in questions]
    # make some relevant candidates near their question so AP is not ~0
    for q, rel in zip(questions, relevant):
        candidates[next(iter(rel))] = q + 0.01 * rng.standard_normal(32).astype(np.float32)
    normalize_rows(candidates)
    official = 100 * official_map_at_k(questions, candidates, relevant)
    for block_bytes in (None, 100 * 32 * 4):  # one block, and ten blocks merged
        _, ranked = top_k(questions, candidates, 20, backend=backend, block_bytes=block_bytes)
        assert mean_average_precision_at_k(relevant, ranked.tolist(), 20) == pytest.approx(official, abs=1e-9)
    assert official > 5


def test_merge_top_k_keeps_the_best_and_breaks_ties_by_index():
    s, i = merge_top_k(np.array([[0.9, 0.5]]), np.array([[3, 1]]), np.array([[0.5, 0.7]]), np.array([[0, 8]]), 3)
    assert i.tolist() == [[3, 8, 0]] and s[0].tolist() == pytest.approx([0.9, 0.7, 0.5])


# --------------------------------------------------------------------------- the pool from the real files
@pytest.fixture(scope="module")
def pool():
    if not (SHARED / "xquad_r").is_dir():
        pytest.skip(f"real XQuAD-R not at {SHARED / 'xquad_r'}")
    questions, candidates = lareqa.read_pool(SHARED)
    return questions + candidates


def test_real_pool_matches_the_official_loader(pool):
    questions = [d for d in pool if d["role"] == "question"]
    candidates = [d for d in pool if d["role"] == "candidate"]
    assert len(questions) == 11 * 1190  # no answer of XQuAD-R starts outside a sentence
    files = {lang: json.loads((SHARED / "xquad_r" / f"{lang}.json").read_text()) for lang in lareqa.LANGUAGES}
    sentences = sum(len(p["sentence_breaks"]) for d in files.values() for a in d["data"] for p in a["paragraphs"])
    assert len(candidates) == sentences == 13014  # every sentence of every paragraph, once
    relevant: dict[str, list[dict]] = {}
    for c in candidates:
        for qid in c["xling_ids"]:
            relevant.setdefault(qid, []).append(c)
    assert len(relevant) == 1190 and {len(v) for v in relevant.values()} == {11}
    assert all(sorted(c["lang"] for c in v) == sorted(lareqa.LANGUAGES) for v in relevant.values())
    first = next(q for q in questions if q["uid"] == "56beb4343aeaaa14008c925b_en")
    assert first["text"] == "How many points did the Panthers defense surrender?"
    answer = next(c for c in relevant["56beb4343aeaaa14008c925b"] if c["lang"] == "en")
    assert answer["uid"] == "en_1_0"
    assert answer["text"].startswith("The Panthers defense gave up just 308 points") and "\n" not in answer["text"]
    # sentence + paragraph, no separator (evaluate_retrieval.py's candidate text)
    paragraph = files["en"]["data"][0]["paragraphs"][0]
    start, end = paragraph["sentence_breaks"][0]
    assert answer["text"] == (paragraph["context"][start:end] + paragraph["context"]).replace("\n", "")
    leaf = lareqa.local(SHARED, "lareqa", "de", "test")  # one language's questions, then the whole pool
    assert len(leaf) == 1190 + 13014 and {d["lang"] for d in leaf[:1190]} == {"de"} and leaf[1190:] == candidates


def test_missing_language_file_is_one_line(tmp_path):
    (tmp_path / "xquad_r").mkdir()
    (tmp_path / "xquad_r" / "en.json").write_text('{"data": []}')
    with pytest.raises(DataError) as err:
        lareqa.local(tmp_path, "lareqa", "en", "test")
    assert "ar.json" in str(err.value) and "\n" not in str(err.value)


def test_missing_sentence_breaks_names_the_field(tmp_path):
    folder = tmp_path / "lareqa" / "xquad-r"
    folder.mkdir(parents=True)
    doc = {"data": [{"paragraphs": [{"context": "A b.", "qas": []}]}]}
    for lang in lareqa.LANGUAGES:
        (folder / f"{lang}.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="sentence_breaks") as err:
        lareqa.local(tmp_path, "lareqa", "en", "test")
    assert str(folder / "ar.json") in str(err.value)


# --------------------------------------------------------------------------- lm_eval end to end on real XQuAD-R
@pytest.mark.slow
def test_lm_eval_lareqa_equals_the_official_computation(tmp_path, minilm_path):
    """``lm_eval --tasks xtreme-r_lareqa`` with the packaged MiniLM (layer=-1, pooling=mean) on the real
    XQuAD-R files, trimmed to their first two paragraphs (all 11 languages: 330 questions, a pool of
    114 sentences) so that it runs on CI's CPUs; the full run is the same command on the untrimmed folder.

    Each leaf's map@20 must equal the official definition (``official_map_at_k``: dot products,
    argsort, AP@20) on the same encodings, read back through our embedder from the run's cache, and the
    group's mean the official pooled number. The encodings themselves are checked against plain
    transformers mean pooling (with the official 96/256-token truncation) on a sample.
    """
    import os
    import subprocess
    import sys

    import torch
    from transformers import AutoModel, AutoTokenizer

    from harness_ext.adapters.encoder.embed import Embedder
    from harness_ext.adapters.runtime.settings import AdapterSettings
    from harness_ext.backends import load_checkpoint

    data = tmp_path / "data" / "lareqa" / "xquad-r"
    data.mkdir(parents=True)
    for lang in lareqa.LANGUAGES:
        full = json.loads((SHARED / "xquad_r" / f"{lang}.json").read_text(encoding="utf-8"))
        full["data"] = [dict(full["data"][0], paragraphs=full["data"][0]["paragraphs"][:2])]
        (data / f"{lang}.json").write_text(json.dumps(full, ensure_ascii=False), encoding="utf-8")
    cache, out = tmp_path / "cache", tmp_path / "out"
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "XTREME_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--tasks", "xtreme-r_lareqa", "--model", "xtreme", "--device", "cpu",
         "--model_args", f"pretrained={minilm_path},layer=-1,pooling=mean,batch_size=64,cache_dir={cache}",
         "--output_path", str(out), "--log_samples"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=3000,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (result_file,) = out.rglob("results_*.json")
    results = json.loads(result_file.read_text())["results"]
    leaf = {lang: results[f"xtreme-lareqa-{lang}"]["map@20,none"] for lang in lareqa.LANGUAGES}

    questions, pool = lareqa.read_pool(tmp_path / "data")
    assert len(questions) == 11 * 30 and len(pool) == 114  # the sentences of 2 paragraphs in 11 languages
    loaded = load_checkpoint(str(minilm_path), "encoder", device="cpu", dtype="float32")
    settings = AdapterSettings(batch_size=64, layer=-1, pooling="mean", cache_dir=str(cache))
    q_vec = Embedder(loaded, settings, lareqa.MAX_QUESTION_TOKENS).embed([q["text"] for q in questions])
    c_embedder = Embedder(loaded, settings, lareqa.MAX_CANDIDATE_TOKENS)
    c_vec = c_embedder.embed([c["text"] for c in pool])
    assert c_embedder.forward_calls == 0  # the run's own encodings, from its cache
    q_vec, c_vec = normalize_rows(q_vec.copy()), normalize_rows(c_vec.copy())
    position = {c["uid"]: i for i, c in enumerate(pool)}
    relevant = [{position[c["uid"]] for c in pool if q["xling_id"] in c["xling_ids"]} for q in questions]
    for lang in lareqa.LANGUAGES:
        rows = [i for i, q in enumerate(questions) if q["lang"] == lang]
        official = 100 * official_map_at_k(q_vec[rows], c_vec, [relevant[i] for i in rows])
        assert leaf[lang] == pytest.approx(official, abs=1e-9), lang
    pooled = 100 * official_map_at_k(q_vec, c_vec, relevant)
    assert results["xtreme-r_lareqa"]["map@20,none"] == pytest.approx(pooled, abs=1e-9)
    assert pooled > 5  # MiniLM is English-only, but the same-language answers rank high

    tok, model = AutoTokenizer.from_pretrained(minilm_path), AutoModel.from_pretrained(minilm_path).eval()
    sample = pool[:3]
    batch = tok([c["text"] for c in sample], padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    plain = normalize_rows(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    assert np.abs(plain - c_vec[:3]).max() < 1e-5

    samples = (next(out.rglob("samples_xtreme-lareqa-en_*.jsonl"))).read_text()
    assert "retrieved [" in samples and '"resps": [["<384-d float32 vector sha1:' in samples  # ids, never vectors


def test_fingerprint_covers_the_questions_and_the_pool(pool, tmp_path):
    from xtreme_tasks.data import load_checked

    _, check = load_checked("lareqa", "de", "test", data_dir=SHARED)
    assert check.standard is True and check.found == 1190  # counts the leaf's questions, hashes them with the pool
    folder = tmp_path / "xquad_r"
    folder.mkdir()
    for lang in lareqa.LANGUAGES:
        data = json.loads((SHARED / "xquad_r" / f"{lang}.json").read_text(encoding="utf-8"))
        if lang == "zh":  # another language's pool changes: the German leaf is no longer XTREME-R's
            paragraph = data["data"][0]["paragraphs"][0]
            paragraph["context"] = "X" + paragraph["context"][1:]
        (folder / f"{lang}.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    _, check = load_checked("lareqa", "de", "test", data_dir=tmp_path)
    assert check.standard is False and "hash" in check.message
