"""TatoebaTask and BuccTask: requests, per-document items, whole-corpus aggregation,
official numbers on xtreme_mock, BUCC threshold transfer and the submission file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness_ext.tasks import retrieval
from harness_ext.tasks.retrieval import BuccTask, TatoebaTask
from xtreme_tasks.table import TASKS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MOCK = SHARED / "xtreme_mock"
#: the official evaluate.py on xtreme_mock (shared/data/README.md)
OFFICIAL_MOCK = {"tatoeba": 53.611111111111114, "bucc2018": 55.0}


def make(cls, name: str, lang: str, data_dir: Path, **metadata):
    return cls(config={"task": f"xtreme-{name}-{lang}", "metadata": {"data_dir": str(data_dir), **metadata}})


def aggregate(task, results: list[list[np.ndarray]]) -> dict[str, float]:
    docs = list(task.test_docs())
    items = [task.process_results(doc, res) for doc, res in zip(docs, results)]
    return {name: agg([item[name] for item in items]) for name, agg in task.aggregation().items()}


def onehot(i: int, dim: int) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


# =========================================================================== Tatoeba
@pytest.fixture(scope="module")
def tatoeba_de() -> TatoebaTask:
    return make(TatoebaTask, "tatoeba", "de", SHARED)


def test_tatoeba_requests(tatoeba_de):
    doc = tatoeba_de.test_docs()[3]
    requests = tatoeba_de.construct_requests(doc, "", metadata=("xtreme-tatoeba-de", 3, 1))
    assert [r.request_type for r in requests] == ["embed", "embed"]
    assert [r.args for r in requests] == [(doc["src"],), (doc["tgt"],)]
    assert set(tatoeba_de.aggregation()) == {"acc", "acc_reverse"} == set(TASKS["tatoeba"].metrics)


def test_tatoeba_directions_are_scored_separately(tatoeba_de):
    n = len(tatoeba_de.test_docs())
    xx = np.eye(n, dtype=np.float32)
    en = np.eye(n, dtype=np.float32)
    en[0] = 0.6 * xx[0] + 0.8 * xx[1]  # en0 finds xx1 (en->xx error); xx0 still finds en0, xx1 en1
    xx[2] = 0.6 * en[2] + 0.8 * en[3]  # xx2 finds en3 (xx->en error); en2 still finds xx2, en3 xx3
    result = aggregate(tatoeba_de, [[xx[i], en[i]] for i in range(n)])
    assert result["acc"] == pytest.approx(100 * (n - 1) / n)
    assert result["acc_reverse"] == pytest.approx(100 * (n - 1) / n)
    # which errors: en->xx misses query 0, xx->en misses query 2
    en_to_xx, xx_to_en = retrieval.tatoeba_predictions(xx, en, backend="cpu")
    assert en_to_xx[0] == 1 and xx_to_en[2] == 3
    # item order does not matter (lm-eval may gather ranks in any order)
    docs = list(tatoeba_de.test_docs())
    items = [tatoeba_de.process_results(d, [xx[d["index"]], en[d["index"]]]) for d in docs][::-1]
    assert retrieval.tatoeba_acc([i["acc"] for i in items]) == result["acc"]


def test_tatoeba_official_number_on_xtreme_mock(tmp_path):
    """Vectors planted so that query i retrieves the mock prediction's verdict: the group
    mean of our per-language ``acc`` equals the official evaluate.py score."""
    per_language = []
    for lang in TASKS["tatoeba"].languages:
        gold = (MOCK / "labels" / "tatoeba" / f"test-{lang}.tsv").read_text().split()
        pred = (MOCK / "predictions" / "tatoeba" / f"test-{lang}.tsv").read_text().split()
        n = len(gold)
        folder = tmp_path / lang / "tatoeba"
        folder.mkdir(parents=True)
        from xtreme_tasks.table import TATOEBA_CODES

        code = TATOEBA_CODES[lang]
        (folder / f"tatoeba.{code}-eng.{code}").write_text("".join(f"{lang} {i}\n" for i in range(n)))
        (folder / f"tatoeba.{code}-eng.eng").write_text("".join(f"en {i}\n" for i in range(n)))
        task = make(TatoebaTask, "tatoeba", lang, tmp_path / lang)
        results = []
        for i in range(n):
            target = i if pred[i] == gold[i] else (i + 1) % n
            results.append([onehot(i, n), onehot(target, n)])
        per_language.append(aggregate(task, results)["acc"])
    assert sum(per_language) / len(per_language) == pytest.approx(OFFICIAL_MOCK["tatoeba"], abs=1e-9)


# =========================================================================== BUCC
def write_split(base: Path, lang: str, stem: str, xx: list[str], en: list[str], gold: list[tuple[str, str]] | None):
    base.mkdir(parents=True, exist_ok=True)
    (base / f"{lang}-en.{stem}.{lang}").write_text("".join(f"{i}\t{lang} sentence {i}\n" for i in xx))
    (base / f"{lang}-en.{stem}.en").write_text("".join(f"{i}\ten sentence {i}\n" for i in en))
    if gold is not None:
        (base / f"{lang}-en.{stem}.gold").write_text("".join(f"{a}\t{b}\n" for a, b in gold))


class PlantedVectors:
    """text -> vector: planted pairs share a direction, distractors get their own."""

    def __init__(self, pairs: list[tuple[str, str]], dim: int = 512, noise: float = 0.0, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.dim, self.noise = dim, noise
        self.next = 0
        self.vectors: dict[str, np.ndarray] = {}
        for a, b in pairs:
            v = self._fresh()
            self.vectors[a] = v
            direction = self.rng.standard_normal(dim).astype(np.float32)
            self.vectors[b] = v + noise * direction / np.linalg.norm(direction)  # cos 1/sqrt(1+noise^2)

    def _fresh(self) -> np.ndarray:
        v = onehot(self.next, self.dim)
        self.next += 1
        return v

    def __call__(self, text: str) -> np.ndarray:
        if text not in self.vectors:
            self.vectors[text] = self._fresh()
        return self.vectors[text]


def bucc_results(task: BuccTask, embed) -> list[list[np.ndarray]]:
    return [[embed(doc["text"])] for doc in task.test_docs()]


def test_bucc_official_number_on_xtreme_mock(tmp_path):
    """Test sentences planted so that mining returns exactly the mock predictions; the dev
    threshold lets them through; P/R/F1 against the mock gold equal the official score."""
    f1s = []
    for lang in TASKS["bucc2018"].languages:
        gold = [tuple(l.split("\t")) for l in (MOCK / "labels" / "bucc2018" / f"test-{lang}.tsv").read_text().splitlines()]
        pred = [tuple(l.split("\t")) for l in (MOCK / "predictions" / "bucc2018" / f"test-{lang}.tsv").read_text().splitlines()]
        base = tmp_path / lang / "bucc2018"
        test_xx = sorted({a for a, _ in gold + pred})
        test_en = sorted({b for _, b in gold + pred})
        write_split(base, lang, "test", test_xx, test_en, gold)
        dev_pairs = [(f"{lang}-d{i}", f"en-d{i}") for i in range(6)]
        dev_xx = [a for a, _ in dev_pairs] + [f"{lang}-dnoise{i}" for i in range(4)]
        dev_en = [b for _, b in dev_pairs] + [f"en-dnoise{i}" for i in range(4)]
        write_split(base, lang, "sample", dev_xx, dev_en, dev_pairs)
        text = lambda side, i: f"{side} sentence {i}"  # noqa: E731
        planted = [(text(lang, a), text("en", b)) for a, b in pred] + [(text(lang, a), text("en", b)) for a, b in dev_pairs]
        task = make(BuccTask, "bucc2018", lang, tmp_path / lang)
        embed = PlantedVectors(planted)
        # one wrong dev candidate with a lower margin, so the threshold is a true midpoint
        embed.vectors[text(lang, f"{lang}-dnoise0")] = (embed(text("en", "en-dnoise0")) + embed(text(lang, f"{lang}-dnoise0x"))) / np.sqrt(2)
        scores = aggregate(task, bucc_results(task, embed))
        assert set(scores) == {"f1", "precision", "recall"}
        f1s.append(scores["f1"])
    assert sum(f1s) / len(f1s) == pytest.approx(OFFICIAL_MOCK["bucc2018"], abs=1e-9)


@pytest.fixture()
def planted_bucc(tmp_path):
    """A BUCC folder in XTREME's renamed layout with noisy planted pairs among distractors."""
    rng = np.random.default_rng(0)
    base = tmp_path / "bucc2018"
    layout = {}
    for split, stem, n_pairs, n_noise in (("dev", "dev", 40, 120), ("test", "test", 60, 200)):
        xx = [f"de-{split}{i:05d}" for i in range(n_pairs + n_noise)]
        en = [f"en-{split}{i:05d}" for i in range(n_pairs + n_noise + 30)]
        gold = list(zip(rng.permutation(xx)[:n_pairs].tolist(), rng.permutation(en)[:n_pairs].tolist()))
        write_split(base, "de", stem, xx, en, gold if split == "dev" else None)  # download_data.sh drops test gold
        layout[split] = gold
    texts = [(f"de sentence {a}", f"en sentence {b}") for gold in layout.values() for a, b in gold]
    embed = PlantedVectors(texts, dim=1024, noise=0.5, seed=1)
    # make distractors non-orthogonal: a shared component every sentence has
    shared = rng.standard_normal(1024).astype(np.float32)
    shared *= 0.3 / np.linalg.norm(shared)

    def vector(text: str) -> np.ndarray:
        return embed(text) + shared

    return tmp_path, layout, vector


def test_bucc_requests_cover_dev_and_test_both_sides(planted_bucc):
    root, layout, _ = planted_bucc
    task = make(BuccTask, "bucc2018", "de", root)
    docs = task.test_docs()
    assert {(d["split"], d["side"]) for d in docs} == {("dev", "xx"), ("dev", "en"), ("test", "xx"), ("test", "en")}
    assert len(docs) == (160 + 190) + (260 + 290)
    (request,) = task.construct_requests(docs[0], "", metadata=("xtreme-bucc2018-de", 0, 1))
    assert request.request_type == "embed" and request.args == (docs[0]["text"],)


def test_bucc_mines_once_for_three_metrics_and_writes_the_submission(planted_bucc, tmp_path, monkeypatch):
    root, layout, vector = planted_bucc
    predictions = tmp_path / "predictions"
    monkeypatch.setenv(retrieval.PREDICTIONS_DIR_ENV, str(predictions))
    calls = []
    original = retrieval.bucc_candidates
    monkeypatch.setattr(retrieval, "bucc_candidates", lambda *a, **k: calls.append(1) or original(*a, **k))
    task = make(BuccTask, "bucc2018", "de", root)
    scores = aggregate(task, bucc_results(task, vector))
    assert len(calls) == 2  # dev + test, once for f1, precision and recall together
    # the renamed layout has no test gold: scores are NaN, the submission file is written
    assert all(math.isnan(v) for v in scores.values())
    written = [tuple(l.split("\t")) for l in (predictions / "test-de.tsv").read_text().splitlines()]
    assert set(written) == set(layout["test"])


def test_bucc_scores_test_with_the_dev_threshold_when_test_gold_exists(planted_bucc):
    root, layout, vector = planted_bucc
    base = root / "bucc2018"
    (base / "de-en.test.gold").write_text("".join(f"{a}\t{b}\n" for a, b in layout["test"]))
    task = make(BuccTask, "bucc2018", "de", root)
    scores = aggregate(task, bucc_results(task, vector))
    assert scores == {"f1": 100.0, "precision": 100.0, "recall": 100.0}
    # scoring the dev split instead tunes and scores on dev
    dev_task = make(BuccTask, "bucc2018", "de", root, split="dev")
    assert {d["split"] for d in dev_task.test_docs()} == {"dev"}
    assert aggregate(dev_task, bucc_results(dev_task, vector))["f1"] == 100.0


def test_bucc_with_a_cut_corpus_says_why(planted_bucc):
    root, _, vector = planted_bucc
    task = make(BuccTask, "bucc2018", "de", root)
    docs = [d for d in task.test_docs() if not (d["split"] == "test" and d["side"] == "en")]
    items = [task.process_results(d, [vector(d["text"])])["f1"] for d in docs]
    with pytest.raises(ValueError, match="no en sentences"):
        retrieval.bucc_f1(items)
