"""Efficacy: paired bootstrap intervals (coverage, real vs zero gain, corpus-level F1),
baseline pairing by family/size/seed, seed spread, published baselines, the scaling plot."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from harness_ext.metrics.tagging import span_prf
from harness_ext.reports.bootstrap import (
    BootstrapUnavailable,
    Comparison,
    LanguageStats,
    bootstrap_task_gains,
    language_stats,
    percentile_interval,
    ratio,
)
from helpers.synthetic_results import write_complete_system, write_run
from xtreme_tasks.table import TASKS

XNLI = TASKS["xnli"]


# ----------------------------------------------------------------------------- synthetic runs


def xnli_rows(lang: str, correct: Sequence[bool]) -> list[dict]:
    labels = XNLI.labels
    rows = []
    for i, ok in enumerate(correct):
        gold = labels[i % 3]
        pred = gold if ok else labels[(i + 1) % 3]
        rows.append({"doc_id": i, "doc": {"id": f"xnli-{lang}-{i}", "label": gold}, "acc": [pred, gold],
                     "filtered_resps": [pred]})
    return rows


def write_xnli_system(root: Path, system: str, accuracy: float, n: int = 60, seed: int = 0) -> dict[str, float]:
    """Every XNLI language, each with exactly round(accuracy * n) correct examples at random positions."""
    rng = random.Random(f"{system}-{seed}")
    rows, metrics = {}, {}
    for lang in XNLI.languages:
        correct = [i < round(accuracy * n) for i in range(n)]
        rng.shuffle(correct)
        rows[lang] = xnli_rows(lang, correct)
        metrics[lang] = {"acc": 100.0 * sum(correct) / n}
    write_run(root / system / "xnli", system, "xnli", rows, metrics)
    return {lang: m["acc"] for lang, m in metrics.items()}


def stats(correct: np.ndarray) -> LanguageStats:
    return LanguageStats(tuple(f"d{i}" for i in range(len(correct))), correct.astype(float), np.ones(len(correct)), 100.0)


def one_language_gain(system: np.ndarray, baseline: np.ndarray, n_resamples: int = 1000, seed: int = 0):
    comparison = Comparison({"xnli": {"en": stats(system)}}, [{"xnli": {"en": stats(baseline)}}])
    return bootstrap_task_gains("xnli", [comparison], n_resamples, seed)[0]


# ----------------------------------------------------------------------------- the bootstrap


def test_real_gain_interval_contains_the_gain_and_excludes_zero():
    rng = np.random.default_rng(1)
    n = 1000
    baseline = np.zeros(n, dtype=bool)
    baseline[rng.permutation(n)[:600]] = True  # exactly 60 %
    system = baseline.copy()
    flip = rng.permutation(np.flatnonzero(~baseline))[:200]
    system[flip] = True  # exactly 80 %: true gain 20 points on this test set
    draws = one_language_gain(system, baseline)
    interval = percentile_interval(draws)
    assert interval.low < 20.0 < interval.high
    assert interval.excludes_zero and interval.low > 15.0


def test_zero_gain_interval_contains_zero():
    rng = np.random.default_rng(2)
    n = 1000
    baseline = np.zeros(n, dtype=bool)
    baseline[rng.permutation(n)[:700]] = True
    system = np.zeros(n, dtype=bool)
    system[rng.permutation(n)[:700]] = True  # 70 % as well, on other examples
    interval = percentile_interval(one_language_gain(system, baseline))
    assert interval.low < 0.0 < interval.high and not interval.excludes_zero


@pytest.mark.parametrize("true_gain", [5.0, 0.0])
def test_coverage_and_false_positive_rate_over_repeated_test_sets(true_gain):
    """Draw 200 test sets from a known population; the 95% interval should cover the
    population gain about 95% of the time, and exclude zero only when there is a gain."""
    rng = np.random.default_rng(3)
    n, repeats = 400, 200
    p_base = 0.70
    covered = excluded_zero = 0
    for r in range(repeats):
        base = rng.random(n) < p_base
        # paired: the system keeps most of the baseline's answers and fixes or breaks a few
        u = rng.random(n)
        fix = (~base) & (u < (true_gain / 100 + 0.05) / (1 - p_base))
        broke = base & (u < 0.05 / p_base)
        system = (base | fix) & ~broke
        interval = percentile_interval(one_language_gain(system, base, n_resamples=300, seed=r))
        covered += interval.low <= true_gain <= interval.high
        excluded_zero += interval.excludes_zero
    assert 0.88 <= covered / repeats <= 0.99
    if true_gain == 0.0:
        assert excluded_zero / repeats <= 0.12
    else:
        assert excluded_zero / repeats >= 0.6  # power of a paired test on 400 examples at +5 points


def test_same_resampled_examples_for_both_systems():
    """Paired: identical runs give a zero-width interval (an unpaired bootstrap would not)."""
    rng = np.random.default_rng(4)
    correct = rng.random(300) < 0.6
    draws = one_language_gain(correct, correct.copy())
    assert np.all(draws == 0.0)


def test_span_f1_resampling_recomputes_the_corpus_metric():
    rng = random.Random(5)
    tags = TASKS["panx"].labels
    golds = [[rng.choice(tags) for _ in range(rng.randint(1, 8))] for _ in range(80)]
    preds = [[t if rng.random() < 0.7 else rng.choice(tags) for t in g] for g in golds]
    rows = [{"doc_id": i, "doc": {"id": f"s{i}"}, "f1": [g, p]} for i, (g, p) in enumerate(zip(golds, preds))]
    s = language_stats(TASKS["panx"], rows, "panx-test")
    assert s.value() == pytest.approx(span_prf(golds, preds)["f1"])
    idx = np.random.default_rng(0).integers(0, len(rows), size=len(rows))
    resampled = ratio(s.num[idx].sum(), s.den[idx].sum(), s.scale)
    assert resampled == pytest.approx(span_prf([golds[i] for i in idx], [preds[i] for i in idx])["f1"])
    # UPOS tags without B-/I- (seqeval 0.0.12 semantics, incl. a sentence-final X)
    upos_g = [["NOUN", "VERB", "X"], ["X"], ["ADJ", "ADJ", "NOUN"]]
    upos_p = [["NOUN", "NOUN", "X"], ["X"], ["ADJ", "NOUN", "NOUN"]]
    u = language_stats(TASKS["udpos"], [{"doc_id": i, "f1": [g, p]} for i, (g, p) in enumerate(zip(upos_g, upos_p))], "u")
    assert u.value() == pytest.approx(span_prf(upos_g, upos_p)["f1"])


def test_qa_statistic_is_the_mean_of_em_and_f1():
    rows = [{"doc_id": i, "doc": {"id": f"q{i}"}, "em": [f"q{i}", "x", em], "f1": f1}
            for i, (em, f1) in enumerate([(100.0, 100.0), (0.0, 50.0), (0.0, 0.0), (100.0, 100.0)])]
    s = language_stats(TASKS["xquad"], rows, "q")
    assert s.value() == pytest.approx((50.0 + 62.5) / 2)


def test_retrieval_and_mismatched_examples_have_no_interval():
    with pytest.raises(BootstrapUnavailable, match="whole corpus"):
        language_stats(TASKS["tatoeba"], [{"doc_id": 0, "acc": "<tatoeba pair 0, 8-d>"}], "t")
    a = stats(np.array([1, 0, 1], dtype=bool))
    b = LanguageStats(("d0", "d1", "other"), np.ones(3), np.ones(3), 100.0)
    with pytest.raises(BootstrapUnavailable, match="different examples"):
        bootstrap_task_gains("xnli", [Comparison({"xnli": {"en": a}}, [{"xnli": {"en": b}}])], 10)


# ----------------------------------------------------------------------------- efficacy end to end

CHECKPOINTS = """version: 1
systems:
  base-s1: {family: tiny, size: 1000000, seed: 1, checkpoints: {xnli: org/base-s1}}
  base-s2: {family: tiny, size: 1000000, seed: 2, checkpoints: {xnli: org/base-s2}}
  mnli-s1: {family: tiny, size: 1000000, seed: 1, intermediate_task: mnli, checkpoints: {xnli: org/mnli-s1}}
  mnli-s2: {family: tiny, size: 1000000, seed: 2, intermediate_task: mnli, checkpoints: {xnli: org/mnli-s2}}
  base-big: {family: tiny, size: 100000000, seed: 1, checkpoints: {xnli: org/base-big}}
  mnli-big: {family: tiny, size: 100000000, seed: 1, intermediate_task: mnli, checkpoints: {xnli: org/mnli-big}}
  published: {family: other, size: 5000, checkpoints: {xnli: org/p},
              baseline: {source: "Paper 2020, Table 2", scores: {xnli: 40.0}}}
  orphan: {family: lonely, size: 7, intermediate_task: mnli, checkpoints: {xnli: org/o}}
"""


@pytest.fixture(scope="module")
def efficacy_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("efficacy")
    (root / "checkpoints.yaml").write_text(CHECKPOINTS)
    accuracy = {"base-s1": 0.5, "base-s2": 0.5, "mnli-s1": 0.8, "mnli-s2": 0.75,
                "base-big": 0.7, "mnli-big": 0.7, "published": 0.45, "orphan": 0.6}
    per_language = {name: write_xnli_system(root / "runs", name, acc) for name, acc in accuracy.items()}
    from harness_ext.reports.efficacy import compute_efficacy, metadata_from_systems
    from harness_ext.reports.results import all_scores, collect
    from harness_ext.systems import load_systems

    systems = collect([root / "runs"])
    meta = metadata_from_systems(load_systems(root / "checkpoints.yaml"))
    eff = compute_efficacy(systems, all_scores(systems), meta, n_resamples=400)
    return root, eff, per_language


def _gain(eff, system, task="xnli"):
    (gain,) = [g for g in eff.gains if g.system == system and g.task == task]
    return gain


def test_pairs_by_family_size_and_seed(efficacy_setup):
    _, eff, _ = efficacy_setup
    assert _gain(eff, "mnli-s1").baseline == "base-s1"
    assert _gain(eff, "mnli-s2").baseline == "base-s2"
    assert _gain(eff, "mnli-big").baseline == "base-big"
    assert not [g for g in eff.gains if g.system.startswith("base")]
    assert any("orphan" in n and "no baseline" in n for n in eff.notes)


def test_gains_seed_spread_and_intervals(efficacy_setup):
    _, eff, _ = efficacy_setup
    s1, s2 = _gain(eff, "mnli-s1"), _gain(eff, "mnli-s2")
    assert s1.gain == pytest.approx(30.0) and s2.gain == pytest.approx(25.0)
    assert s1.interval.excludes_zero and s1.interval.low < 30.0 < s1.interval.high
    big = _gain(eff, "mnli-big")
    assert big.gain == pytest.approx(0.0) and not big.interval.excludes_zero
    (group,) = [g for g in eff.groups if g.size == 1_000_000 and g.task == "xnli"]
    assert group.gains == (30.0, 25.0) and group.mean == pytest.approx(27.5)
    assert group.std == pytest.approx(np.std([30.0, 25.0], ddof=1))
    assert group.interval.excludes_zero and group.interval.low < 27.5 < group.interval.high
    overall = _gain(eff, "mnli-s1", "xtreme")
    assert overall.gain is None and "incomplete" in overall.note


def test_published_baseline_has_a_gain_without_interval(efficacy_setup):
    _, eff, _ = efficacy_setup
    pub = _gain(eff, "published")
    assert pub.gain == pytest.approx(45.0 - 40.0) and pub.interval is None
    assert "published" in pub.baseline and "Paper 2020" in pub.baseline and "published numbers" in pub.note
    assert not [g for g in eff.groups if g.family == "other"]  # not an intermediate-task row


def test_scaling_tables_and_plot(efficacy_setup, tmp_path):
    from harness_ext.reports.efficacy import efficacy_tables
    from harness_ext.reports.plots import plot_scaling
    from harness_ext.reports.tables import read_csv, to_csv

    _, eff, _ = efficacy_setup
    scaling, gains, long = efficacy_tables(eff)
    rows = read_csv(to_csv(scaling))
    assert [(r["Size"], r["Seeds"]) for r in rows] == [("1000000", "2"), ("100000000", "1")]
    assert float(rows[0]["XNLI"]) == pytest.approx(27.5)
    assert "± 3.54 [" in scaling.rows[0][5].text and scaling.rows[0][5].text.endswith("*")
    long_rows = read_csv(to_csv(long))
    s1 = next(r for r in long_rows if r["system"] == "mnli-s1" and r["task"] == "xnli")
    assert float(s1["gain"]) == pytest.approx(30.0) and s1["excludes_zero"] == "True"
    assert float(s1["ci_low"]) < 30.0 < float(s1["ci_high"])
    png, svg = plot_scaling(eff, tmp_path / "plots" / "scaling")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "<svg" in svg.read_text()[:2000] and svg.stat().st_size > 5000


def test_samples_that_do_not_match_the_results_give_no_interval(efficacy_setup, tmp_path):
    import shutil

    from harness_ext.reports.efficacy import compute_efficacy, metadata_from_systems
    from harness_ext.reports.results import all_scores, collect
    from harness_ext.systems import load_systems

    root, _, _ = efficacy_setup
    for name in ("base-s1", "mnli-s1"):
        shutil.copytree(root / "runs" / name, tmp_path / name)
    samples = tmp_path / "mnli-s1" / "xnli" / "samples_xtreme-xnli-de.jsonl"
    lines = samples.read_text().splitlines()
    row = json.loads(lines[0])
    row["acc"][0] = "wrong" if row["acc"][0] == row["acc"][1] else row["acc"][1]
    samples.write_text("\n".join([json.dumps(row)] + lines[1:]) + "\n")
    systems = collect([tmp_path])
    meta = metadata_from_systems(load_systems(root / "checkpoints.yaml"))
    eff = compute_efficacy(systems, all_scores(systems), meta, n_resamples=50)
    gain = _gain(eff, "mnli-s1")
    assert gain.gain == pytest.approx(30.0) and gain.interval is None
    assert "different runs" in gain.note


def test_efficacy_command(efficacy_setup, tmp_path, capsys):
    from harness_ext.cli import main

    root, _, _ = efficacy_setup
    out = tmp_path / "eff"
    code = main(["efficacy", str(root / "runs"), "--checkpoints", str(root / "checkpoints.yaml"), "--out", str(out),
                 "--resamples", "200", "--baseline", "orphan=base-s1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| orphan | base-s1 |" in printed
    for name in ("efficacy_scaling.png", "efficacy_scaling.svg", "efficacy_scaling.csv", "efficacy_gains.tex",
                 "efficacy_long.csv", "report.md"):
        assert (out / name).stat().st_size > 0, name
    assert 'src="data:image/svg+xml;base64,' in (out / "report.html").read_text()  # the plot is in the HTML report
    assert main(["efficacy", str(root / "runs"), "-c", str(root / "checkpoints.yaml"), "--baseline", "nope=base-s1"]) == 2


# ----------------------------------------------------------------------------- the XTREME-score interval


def test_xtreme_score_gain_and_interval_with_retrieval_held_fixed(tmp_path):
    from harness_ext.reports.efficacy import Meta, compute_efficacy
    from harness_ext.reports.results import all_scores, collect

    base = write_complete_system(tmp_path, "base", skill=0.4)
    better = write_complete_system(tmp_path, "better", skill=0.8)
    systems = collect([tmp_path])
    rows = all_scores(systems)
    assert rows["base"].complete and rows["better"].complete
    meta = {"base": Meta("base", "f", 10), "better": Meta("better", "f", 10, intermediate_task="mnli")}
    eff = compute_efficacy(systems, rows, meta, n_resamples=300)
    overall = _gain(eff, "better", "xtreme")
    hand = sum(better[t] - base[t] for t in base) / 9
    assert overall.gain == pytest.approx(hand)
    assert overall.interval.low < hand < overall.interval.high and overall.interval.excludes_zero
    assert "bucc2018, tatoeba held at their observed gain" in overall.note
    assert _gain(eff, "better", "tatoeba").interval is None and "whole corpus" in _gain(eff, "better", "tatoeba").note
    assert _gain(eff, "better", "panx").interval is not None
    (group,) = [g for g in eff.groups if g.task == "xtreme"]
    assert group.mean == pytest.approx(hand) and group.interval is not None


def test_limit_runs_are_said_in_tables_and_plot_and_dollar_names_plot(tmp_path):
    """Runs made with --limit are named in the efficacy notes and the plot's title; a family name
    with ``$...$`` (mathtext, a crash when malformed) is drawn as plain text."""
    from harness_ext.reports.efficacy import Meta, compute_efficacy, efficacy_tables
    from harness_ext.reports.plots import plot_scaling, scaling_svg
    from harness_ext.reports.results import all_scores, collect

    write_complete_system(tmp_path, "base", skill=0.4, tasks=("xnli", "pawsx"), limit=8)
    write_complete_system(tmp_path, "better", skill=0.7, tasks=("xnli", "pawsx"), limit=8)
    systems = collect([tmp_path])
    family = "$\\frac{broken$ fam"  # unescaped, matplotlib raises ValueError on this label
    meta = {"base": Meta("base", family, 10), "better": Meta("better", family, 10, intermediate_task="mnli")}
    eff = compute_efficacy(systems, all_scores(systems), meta, n_resamples=50)
    assert sorted(eff.limited) == ["base", "better"]
    for table in efficacy_tables(eff)[:2]:
        (note,) = [n for n in table.notes if n.startswith("runs made with --limit")]
        assert "base, better" in note
    png, svg = plot_scaling(eff, tmp_path / "plot")
    text = svg.read_text()
    assert png.stat().st_size > 5000 and "runs made with" in text and "frac{broken" in text  # drawn literally, not as math
    assert scaling_svg(eff)[:200].lstrip().startswith(b"<?xml")
