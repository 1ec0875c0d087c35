"""``xtreme-eval sweep`` on one machine, with real lm-eval runs of tiny XNLI classifiers:
a sweep killed midway resumes without redoing finished work and ends with the same
tables as an uninterrupted one; a broken checkpoint fails only its own job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xtreme_tasks.table import TASKS

XNLI = TASKS["xnli"]
PAIRS = [
    ("The cat sat on the mat.", "A cat is sitting."),
    ("He bought three apples.", "He bought fruit."),
    ("Nobody came to the party.", "The party was crowded."),
]


def write_xnli(root: Path) -> Path:
    """Three labelled pairs per XNLI language, official 3-column layout."""
    folder = root / "xnli"
    folder.mkdir(parents=True)
    for n, lang in enumerate(XNLI.languages):
        rows = [f"{lang} {a}\t{b}\t{XNLI.labels[(i + n) % 3]}" for i, (a, b) in enumerate(PAIRS)]
        (folder / f"test-{lang}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def write_sweep_inputs(root: Path) -> Path:
    """Two tiny XNLI classifiers (different seeds) and a system whose checkpoint does not exist."""
    from tests.helpers.tiny_models import tiny_bert

    for name, seed in (("base", 1), ("mnli", 2)):
        tiny_bert(root, "sequence-classification", seed=seed, name=name)
    path = root / "checkpoints.yaml"
    path.write_text(
        "version: 1\nsystems:\n"
        "  base-s1: {family: tiny, size: 100000, seed: 1, checkpoints: {xnli: ./base}}\n"
        "  mnli-s1: {family: tiny, size: 100000, seed: 1, intermediate_task: mnli, checkpoints: {xnli: ./mnli}}\n"
        "  broken: {family: tiny, size: 100000, seed: 2, intermediate_task: mnli, checkpoints: {xnli: ./missing-ckpt}}\n"
    )
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    write_xnli(root / "data")
    return root, write_sweep_inputs(root)


@pytest.fixture
def env(inputs, monkeypatch):
    root, _ = inputs
    monkeypatch.setenv("XTREME_DATA_DIR", str(root / "data"))
    monkeypatch.delenv("XTREME_SWEEP_HANG_ON", raising=False)
    return root


def _wait_for(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"sweep exited ({process.returncode}) before hanging:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.2)


def _snapshot(path: Path) -> tuple[int, int, bytes]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, path.read_bytes()


def _tables(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_killed_sweep_resumes_without_redoing_work_and_isolates_failures(inputs, env, tmp_path, capsys):
    from harness_ext.cli import main
    from harness_ext.sweep import HANG_ENV, run_sweep

    root, checkpoints = inputs
    out = tmp_path / "out"
    # 1. a sweep in its own process, made to hang when the second job starts, then killed
    process = subprocess.Popen(
        [sys.executable, "-m", "harness_ext.cli", "sweep", str(checkpoints), "--tasks", "xnli", "--out", str(out)],
        env={**os.environ, HANG_ENV: "mnli-s1/xnli"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _wait_for(out / ".hanging", process, timeout=300)
    process.kill()
    process.communicate()
    first = out / "base-s1" / "xnli" / "results.json"
    assert first.is_file(), "the first job finished before the kill"
    assert not (out / "mnli-s1" / "xnli" / "results.json").exists()
    before = _snapshot(first)

    # 2. the rerun skips the finished job, runs the rest; the broken system fails alone (exit 1)
    assert main(["sweep", str(checkpoints), "--tasks", "xnli", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "| base-s1 | xnli | skipped |" in printed and "| mnli-s1 | xnli | done |" in printed
    assert "| broken | xnli | failed |" in printed and "missing-ckpt" in printed
    assert _snapshot(first) == before, "a finished result was rewritten"
    error_log = (out / "broken" / "xnli" / "error.log").read_text()
    assert "Traceback" in error_log and "missing-ckpt" in error_log
    assert not list(out.rglob(".staging-*")), "staging folders are cleaned up"
    samples = sorted(p.name for p in (out / "mnli-s1" / "xnli").glob("samples_*.jsonl"))
    assert samples == sorted(f"samples_{XNLI.leaf(l)}.jsonl" for l in XNLI.languages)

    # 3. a third run redoes nothing that finished (only the failed job is retried)
    summary = run_sweep(checkpoints, out, tasks=["xnli"])
    assert {o.id: o.status for o in summary.outcomes} == {
        "base-s1/xnli": "skipped", "mnli-s1/xnli": "skipped", "broken/xnli": "failed"}
    assert _snapshot(first) == before

    # 4. the same tables as an uninterrupted sweep
    reference = run_sweep(checkpoints, tmp_path / "reference", tasks=["xnli"])
    assert {o.id: o.status for o in reference.outcomes}["mnli-s1/xnli"] == "done"
    assert _tables(out / "tables") == _tables(tmp_path / "reference" / "tables")
    board = (out / "tables" / "leaderboard.csv").read_text()
    assert "base-s1" in board and "mnli-s1" in board and "broken" not in board
    page = (out / "index.html").read_text()
    assert '"name": "base-s1"' in page and '"name": "mnli-s1"' in page and "Content-Security-Policy" in page


def test_sweep_output_feeds_report_export_and_official_scorer(inputs, env, tmp_path):
    """The sweep's samples export to the official layout and score as the results JSON says."""
    from harness_ext.reports.export import export_predictions
    from harness_ext.reports.official import score_folder
    from harness_ext.reports.results import collect
    from harness_ext.sweep import run_sweep

    root, checkpoints = inputs
    summary = run_sweep(checkpoints, tmp_path / "out", tasks=["xtreme_xnli"], systems=["mnli-s1"])
    assert [o.status for o in summary.outcomes] == ["done"]
    systems = collect([tmp_path / "out"])
    labels = tmp_path / "labels" / "xnli"
    labels.mkdir(parents=True)
    for lang in XNLI.languages:
        gold = [line.split("\t")[2] for line in (root / "data" / "xnli" / f"test-{lang}.tsv").read_text().splitlines()]
        (labels / f"test-{lang}.tsv").write_text("\n".join(gold) + "\n")
    # the synthetic 3-pair test sets are not XTREME's (the results JSON says so): export them anyway
    export_predictions(systems, tmp_path / "submission", allow_partial=True)
    assert export_predictions(systems, tmp_path / "refused").written == []
    official = score_folder(tmp_path / "submission", tmp_path / "labels")
    assert official.tasks["xnli"].score == pytest.approx(systems["mnli-s1"].scores().task_scores["xnli"])

    # pointing the system at another checkpoint reruns its job instead of keeping stale numbers
    changed = root / "checkpoints-changed.yaml"
    changed.write_text(checkpoints.read_text().replace("{xnli: ./mnli}", "{xnli: ./base}"))
    rerun = run_sweep(changed, tmp_path / "out", tasks=["xnli"], systems=["mnli-s1"])
    assert [(o.status, o.detail) for o in rerun.outcomes] == [("done", "rerun: the checkpoint or settings changed since the last result")]
    job = json.loads((tmp_path / "out" / "mnli-s1" / "xnli" / "job.json").read_text())
    assert job["checkpoint"]["source"] == str(root / "base")
    assert [o.status for o in run_sweep(changed, tmp_path / "out", tasks=["xnli"], systems=["mnli-s1"]).outcomes] == ["skipped"]


def test_planning_errors_and_not_applicable_pairs(inputs, tmp_path):
    from harness_ext.sweep import SweepError, parse_tasks, plan

    _, checkpoints = inputs
    assert parse_tasks(["xtreme_pawsx,xnli"]) == ["xnli", "pawsx"]
    assert parse_tasks(None) == list(TASKS)
    with pytest.raises(SweepError, match="unknown task"):
        parse_tasks(["xnl"])
    jobs, not_applicable = plan(checkpoints, ["xnli", "pawsx"])
    assert [j.id for j in jobs] == ["base-s1/xnli", "mnli-s1/xnli", "broken/xnli"]
    assert {o.id for o in not_applicable} == {"base-s1/pawsx", "mnli-s1/pawsx", "broken/pawsx"}
    with pytest.raises(SweepError, match="not in"):
        plan(checkpoints, ["xnli"], systems=["nobody"])
    # XTREME-R: 'all' is its ten tasks, jobs run its groups into folders of their own
    from xtreme_tasks.table import BENCHMARKS

    assert parse_tasks(None, "xtreme-r") == list(BENCHMARKS["xtreme-r"].tasks)
    assert parse_tasks(["xtreme-r_xcopa,xnli"], "xtreme-r") == ["xnli", "xcopa"]
    with pytest.raises(SweepError, match="unknown task 'pawsx' of XTREME-R"):
        parse_tasks(["pawsx"], "xtreme-r")
    jobs, _ = plan(checkpoints, ["xnli"], benchmark="xtreme-r")
    assert [(j.id, j.group) for j in jobs][0] == ("base-s1/xtreme-r_xnli", "xtreme-r_xnli")
    assert jobs[0].folder(tmp_path).name == "xtreme-r_xnli"


def test_sweep_title_names_the_benchmark_versions_the_jobs_ran():
    from types import SimpleNamespace

    from harness_ext.sweep import sweep_title

    xtreme, xtreme_r = SimpleNamespace(benchmark="xtreme"), SimpleNamespace(benchmark="xtreme-r")
    assert sweep_title({"a": xtreme}) == "XTREME sweep"
    assert sweep_title({"a": xtreme_r}) == "XTREME-R sweep"
    assert sweep_title({"b": xtreme_r, "a": xtreme}) == "XTREME / XTREME-R sweep"
    assert sweep_title({}) == "XTREME sweep"
