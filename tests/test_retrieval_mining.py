"""Margin mining, threshold and Tatoeba top-1 on synthetic vectors with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness_ext.metrics.retrieval import bucc_prf
from harness_ext.retrieval.mining import (
    Neighbours,
    best_f1_threshold,
    bucc_candidates,
    extract,
    margin_scores,
    mine,
    tatoeba_predictions,
    unique_ids,
    unique_texts,
    write_submission,
)
from harness_ext.retrieval.search import FlatIndex, l2_normalize


# --------------------------------------------------------------------------- margin by hand
def test_ratio_margin_matches_a_hand_computation():
    # 2-d unit vectors at known angles: cosines are easy to write down
    def unit(deg):
        r = np.deg2rad(deg)
        return [np.cos(r), np.sin(r)]

    x = np.array([unit(0), unit(90)], dtype=np.float32)
    y = np.array([unit(10), unit(60), unit(100)], dtype=np.float32)
    cos = lambda a, b: np.cos(np.deg2rad(abs(a - b)))  # noqa: E731
    fwd = Neighbours.search(x, FlatIndex(y, backend="cpu"), 2)
    bwd = Neighbours.search(y, FlatIndex(x, backend="cpu"), 2)
    # x0 (0 deg): nearest y are 10 and 60 deg; x1 (90 deg): 100 and 60 deg
    assert fwd.indices.tolist() == [[0, 1], [2, 1]]
    np.testing.assert_allclose(fwd.mean, [(cos(0, 10) + cos(0, 60)) / 2, (cos(90, 100) + cos(90, 60)) / 2], atol=1e-6)
    # every y sees both x (k=2 of 2)
    np.testing.assert_allclose(bwd.mean, [(cos(10, 0) + cos(10, 90)) / 2, (cos(60, 0) + cos(60, 90)) / 2,
                                          (cos(100, 0) + cos(100, 90)) / 2], atol=1e-6)
    scores = margin_scores(fwd, fwd.mean, bwd.mean, "ratio")
    expected_x0_y0 = cos(0, 10) / ((fwd.mean[0] + bwd.mean[0]) / 2)
    expected_x1_y1 = cos(90, 60) / ((fwd.mean[1] + bwd.mean[1]) / 2)
    assert scores[0, 0] == pytest.approx(expected_x0_y0, rel=1e-6)
    assert scores[1, 1] == pytest.approx(expected_x1_y1, rel=1e-6)
    distance = margin_scores(fwd, fwd.mean, bwd.mean, "distance")
    assert distance[0, 0] == pytest.approx(cos(0, 10) - (fwd.mean[0] + bwd.mean[0]) / 2, rel=1e-6)


def test_margin_demotes_a_hub_sentence():
    """A target close to every source wins on raw cosine but loses on ratio margin."""
    eye = np.eye(16, dtype=np.float32)
    x = eye[:6]  # six source sentences, mutually orthogonal
    hub = eye[:6].sum(axis=0) / np.sqrt(6)  # cos 0.41 with every source
    true0 = 0.38 * eye[0] + np.sqrt(1 - 0.38**2) * eye[10]  # x0's translation: cos 0.38, unrelated to the rest
    others = 0.9 * eye[1:6] + np.sqrt(1 - 0.81) * eye[11:16]  # translations of x1..x5
    y = np.vstack([hub, true0, others]).astype(np.float32)
    assert int(np.argmax(y @ x[0])) == 0, "set-up: the hub is x0's raw-cosine nearest neighbour"
    mined = mine(x, y, k=4, backend="cpu")
    pairs = dict(zip(mined.src.tolist(), mined.trg.tolist()))
    assert pairs[0] == 1
    assert pairs == {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 6}


# --------------------------------------------------------------------------- an independent loop-based reference
def reference_mine(x: np.ndarray, y: np.ndarray, k: int = 4) -> dict[tuple[int, int], float]:
    """LASER mining written out with loops and full similarity matrices (small inputs only)."""
    x, y = l2_normalize(x), l2_normalize(y)
    sim = x.astype(np.float64) @ y.astype(np.float64).T
    kx, ky = min(k, len(y)), min(k, len(x))
    fwd_nn = [list(np.argsort(-sim[i], kind="stable")[:kx]) for i in range(len(x))]
    bwd_nn = [list(np.argsort(-sim[:, j], kind="stable")[:ky]) for j in range(len(y))]
    fwd_mean = [np.mean([sim[i, j] for j in fwd_nn[i]]) for i in range(len(x))]
    bwd_mean = [np.mean([sim[i, j] for i in bwd_nn[j]]) for j in range(len(y))]

    def margin(i, j):
        return sim[i, j] / ((fwd_mean[i] + bwd_mean[j]) / 2)

    pool = []
    for i in range(len(x)):
        j = max(fwd_nn[i], key=lambda j: margin(i, j))
        pool.append((margin(i, j), i, j))
    for j in range(len(y)):
        i = max(bwd_nn[j], key=lambda i: margin(i, j))
        pool.append((margin(i, j), i, j))
    used_x, used_y, out = set(), set(), {}
    for score, i, j in sorted(pool, key=lambda t: -t[0]):
        if i in used_x or j in used_y:
            continue
        used_x.add(i)
        used_y.add(j)
        if score > 0:
            out[(i, j)] = score
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_mining_equals_the_loop_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((40, 16)).astype(np.float32)
    y = np.concatenate([x[:25] + 0.3 * rng.standard_normal((25, 16)), rng.standard_normal((30, 16))]).astype(np.float32)
    mined = mine(x, y, k=4, backend="cpu")
    ours = {(int(s), int(t)): float(v) for s, t, v in zip(mined.src, mined.trg, mined.score)}
    ref = reference_mine(x, y, k=4)
    assert ours.keys() == ref.keys()
    for pair, score in ref.items():
        assert ours[pair] == pytest.approx(score, rel=1e-5)
    assert list(mined.score) == sorted(mined.score, reverse=True)


def test_torch_backend_mines_the_same_pairs():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 24)).astype(np.float32)
    y = np.concatenate([x[:40] + 0.2 * rng.standard_normal((40, 24)), rng.standard_normal((50, 24))]).astype(np.float32)
    a, b = mine(x, y, backend="cpu"), mine(x, y, backend="torch")
    assert a.src.tolist() == b.src.tolist() and a.trg.tolist() == b.trg.tolist()
    np.testing.assert_allclose(a.score, b.score, rtol=1e-5)


# --------------------------------------------------------------------------- BUCC on a planted corpus
def planted_corpus(seed: int, n_pairs: int, n_xx_noise: int, n_en_noise: int, dim: int = 64, noise: float = 0.35):
    """Sentence ids, texts and vectors with ``n_pairs`` planted translations among distractors."""
    rng = np.random.default_rng(seed)
    en_vectors = rng.standard_normal((n_pairs + n_en_noise, dim)).astype(np.float32)
    xx_pairs = en_vectors[:n_pairs] + noise * rng.standard_normal((n_pairs, dim)).astype(np.float32)
    xx_vectors = np.concatenate([xx_pairs, rng.standard_normal((n_xx_noise, dim)).astype(np.float32)])
    xx_order, en_order = rng.permutation(len(xx_vectors)), rng.permutation(len(en_vectors))
    xx_ids = [f"de-{seed:02d}{i:07d}" for i in range(len(xx_vectors))]
    en_ids = [f"en-{seed:02d}{i:07d}" for i in range(len(en_vectors))]
    xx_pos = {orig: pos for pos, orig in enumerate(xx_order)}
    en_pos = {orig: pos for pos, orig in enumerate(en_order)}
    gold = {(xx_ids[xx_pos[i]], en_ids[en_pos[i]]) for i in range(n_pairs)}
    xx_texts = [f"xx sentence {seed}-{orig}" for orig in xx_order]
    en_texts = [f"en sentence {seed}-{orig}" for orig in en_order]
    return (xx_ids, xx_texts, xx_vectors[xx_order]), (en_ids, en_texts, en_vectors[en_order]), gold


def test_bucc_mining_recovers_planted_pairs_among_distractors():
    dev_xx, dev_en, dev_gold = planted_corpus(seed=1, n_pairs=50, n_xx_noise=250, n_en_noise=300)
    test_xx, test_en, test_gold = planted_corpus(seed=2, n_pairs=80, n_xx_noise=400, n_en_noise=500)
    dev_candidates = bucc_candidates(*dev_xx, *dev_en, backend="cpu")
    threshold = best_f1_threshold(dev_candidates, dev_gold)
    assert bucc_prf(extract(dev_candidates, threshold), dev_gold)["f1"] == 100.0
    # the dev-tuned threshold transfers to an unseen test corpus
    predicted = extract(bucc_candidates(*test_xx, *test_en, backend="cpu"), threshold)
    assert set(predicted) == test_gold
    # without a threshold every sentence is paired with something: distractor pairs dominate
    everything = extract(bucc_candidates(*test_xx, *test_en, backend="cpu"), float("-inf"))
    assert bucc_prf(everything, test_gold)["precision"] < 25


def test_duplicate_sentences_are_embedded_once_and_have_no_id():
    (xx_ids, xx_texts, xx_vectors), (en_ids, en_texts, en_vectors), gold = planted_corpus(3, 20, 30, 30)
    # make xx sentence 0 appear twice (same text, two ids): LASER drops it from candidates
    xx_ids = xx_ids + ["de-dup"]
    xx_texts = xx_texts + [xx_texts[0]]
    xx_vectors = np.concatenate([xx_vectors, xx_vectors[:1]])
    candidates = bucc_candidates(xx_ids, xx_texts, xx_vectors, en_ids, en_texts, en_vectors, backend="cpu")
    assert all(src not in (xx_ids[0], "de-dup") for src, _ in candidates)
    assert unique_texts(["a", "b", "a"])[0] == ["a", "b"]
    assert unique_ids(["1", "2", "3"], ["a", "b ", "b"]) == {"a": "1"}


# --------------------------------------------------------------------------- threshold
def brute_force_best_f1(candidates: dict, gold: set) -> float:
    """Best F1 over every possible cut (all distinct candidate scores as thresholds)."""
    best = 0.0
    for t in sorted(set(candidates.values())):
        best = max(best, bucc_prf(extract(candidates, t), gold)["f1"])
    return best


@pytest.mark.parametrize("seed", range(8))
def test_threshold_selection_matches_brute_force_best_f1(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    pairs = [(f"x{i}", f"y{i}") for i in range(n)]
    scores = rng.normal(1.0, 0.1, n)
    candidates = dict(zip(pairs, scores.tolist()))
    # gold: mostly high-scoring candidates, some low ones, some pairs never mined
    gold = {p for p, s in candidates.items() if rng.random() < (0.8 if s > 1.0 else 0.25)}
    gold |= {(f"x-missing{i}", "y") for i in range(int(rng.integers(0, 5)))}
    if not gold & candidates.keys():
        gold.add(pairs[0])
    threshold = best_f1_threshold(candidates, gold)
    assert bucc_prf(extract(candidates, threshold), gold)["f1"] == pytest.approx(brute_force_best_f1(candidates, gold))


def test_threshold_is_the_midpoint_between_consecutive_scores():
    candidates = {("a", "1"): 1.30, ("b", "2"): 1.20, ("c", "3"): 1.10, ("d", "4"): 1.00}
    gold = {("a", "1"), ("b", "2")}
    assert best_f1_threshold(candidates, gold) == pytest.approx((1.20 + 1.10) / 2)
    assert extract(candidates, best_f1_threshold(candidates, gold)) == [("a", "1"), ("b", "2")]


def test_threshold_when_every_candidate_is_correct_keeps_them_all():
    candidates = {("a", "1"): 1.3, ("b", "2"): 1.2}
    threshold = best_f1_threshold(candidates, set(candidates))
    assert threshold == pytest.approx(1.2)  # the official code would index past the end here
    assert len(extract(candidates, threshold)) == 2


def test_threshold_without_any_correct_candidate_is_zero():
    assert best_f1_threshold({("a", "1"): 1.3}, {("b", "2")}) == 0.0


def test_submission_file_is_the_official_two_column_format(tmp_path):
    path = tmp_path / "preds" / "test-de.tsv"
    write_submission([("de-000000001", "en-000000009"), ("de-000000002", "en-000000003")], path)
    assert path.read_text() == "de-000000001\ten-000000009\nde-000000002\ten-000000003\n"
    assert not list(path.parent.glob(".*tmp"))


# --------------------------------------------------------------------------- Tatoeba
def test_tatoeba_directions_on_a_known_case():
    # en0 is closest to xx1 (a wrong answer), xx0 closest to en0; all else correct
    en = np.eye(4, dtype=np.float32)
    xx = np.eye(4, dtype=np.float32)
    xx[1] = [0.9, 0.5, 0.0, 0.0]  # xx1 leans towards en0 more than xx0 does
    xx[0] = [0.8, 0.0, 0.0, 0.6]
    en_to_xx, xx_to_en = tatoeba_predictions(xx, en, backend="cpu")
    # en0 -> argmax cos(en0, xx_i): xx1 (0.87) beats xx0 (0.8); en3 -> xx3 (1.0) beats xx0 (0.6)
    assert en_to_xx.tolist() == [1, 1, 2, 3]
    # xx0 -> en0 (0.8 > 0.6), xx1 -> en0 (0.87)
    assert xx_to_en.tolist() == [0, 0, 2, 3]
    # both backends agree
    for a, b in zip(tatoeba_predictions(xx, en, "cpu"), tatoeba_predictions(xx, en, "torch")):
        assert a.tolist() == b.tolist()


def test_all_combinations_of_margin_names():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 8)), rng.standard_normal((12, 8))
    for margin in ("ratio", "distance", "absolute"):
        mined = mine(x, y, margin=margin, backend="cpu")
        assert len(set(mined.src.tolist())) == len(mined.src)
        assert len(set(mined.trg.tolist())) == len(mined.trg)
    with pytest.raises(ValueError, match="unknown margin"):
        mine(x, y, margin="cosine")
    assert list(itertools.islice(iter(()), 1)) == []
