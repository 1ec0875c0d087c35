"""Issue 22: a run gives the numbers asked for or fails loudly, and says so in seconds.

Subprocess tests run the real ``lm_eval`` / ``xtreme-eval`` commands and check exit codes and
last lines; they are grouped so that few of them pay lm-eval's 15-20 s task indexing."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness_ext import run_guard
from harness_ext.errors import ModelArgsError, is_user_error

INDEXING = "xtreme-harness: lm-eval is indexing"


def _run(argv: list[str], tmp_path: Path, env: dict[str, str] | None = None, timeout: int = 300):
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), full.get("PYTHONPATH", "")])
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=timeout, cwd=tmp_path)


def _data_with(tmp_path: Path, shared_data: Path, *tasks: str) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for task in tasks:
        (data / task).symlink_to(shared_data / task)
    return data


# ----------------------------------------------------------------------------- before indexing


def test_bad_input_fails_in_one_line_before_lm_eval_indexes_its_tasks(tmp_path, minilm_path):
    """Items 2 and 3 and a missing XTREME_DATA_DIR, through the real commands: exit 2, one
    ``error:`` line with the closest valid names, before the 15-20 s task indexing."""
    model = ["--model", "xtreme", "--model_args", f"pretrained={minilm_path}"]
    cases = [
        (["lm_eval", "run", "--tasks", "xtreme_tatoeba_de", *model], {}, ["--tasks xtreme_tatoeba_de", "xtreme-tatoeba-de"]),
        (["xtreme-eval", "run", "--tasks", "xtreme_tatoeba_de", *model], {}, ["did you mean", "xtreme-tatoeba-de"]),
        (["lm_eval", "run", "--tasks", "xtreme-tatoeba-de", "--model", "xtreme", "--model_args",
          f"pretrained={minilm_path},layr=-1"], {}, ["unknown key layr", "did you mean layer"]),
        (["lm_eval", "run", "--tasks", "xtreme-tatoeba-de", "--model", "xtreme", "--model_args",
          f"pretrainde={minilm_path}"], {}, ["unknown key pretrainde", "did you mean pretrained"]),
        (["lm_eval", "run", "--tasks", "xtreme-tatoeba-de", "--model", "hf", "--model_args",
          f"pretrained={minilm_path},xtreme_lyer=3"], {}, ["unknown key xtreme_lyer", "did you mean xtreme_layer"]),
        (["lm_eval", "run", "--tasks", "xtreme-tatoeba-de", *model], {"XTREME_DATA_DIR": str(tmp_path / "nowhere")},
         ["XTREME_DATA_DIR", "no such folder"]),
    ]
    for argv, env, expected in cases:
        done = _run(argv, tmp_path, env, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (argv, done.stderr[-2000:])
        assert lines[-1].startswith("error: ") and all(e in lines[-1] for e in expected), (argv, lines[-1])
        assert "Traceback" not in done.stderr and INDEXING not in done.stderr, (argv, done.stderr[-2000:])


def test_unknown_model_args_name_the_closest_key_in_python_too():
    from harness_ext.adapters.prompted.adapter import split_options
    from harness_ext.adapters.xtreme_lm import XtremeLM

    with pytest.raises(ModelArgsError, match=r"unknown key layr; did you mean layer") as err:
        XtremeLM(pretrained="x", device="cpu", layr=-1)
    assert is_user_error(err.value) and "\n" not in str(err.value)
    XtremeLM(pretrained="x", device="cpu", use_cache=False, n_best=5, pipeline=False)  # adapter keys are known
    with pytest.raises(ModelArgsError, match=r"xtreme_promts; did you mean xtreme_prompts"):
        split_options({"pretrained": "gpt2", "xtreme_promts": "x"})
    assert split_options({"pretrained": "gpt2", "xtreme_prompt_xnli": "f.yaml", "xtreme_allow_missing": True})[1] == {
        "prompt_xnli": "f.yaml", "allow_missing": True}
    with pytest.raises(run_guard.TaskNameError, match="did you mean"):
        run_guard.check_task_names(["xtreme_xnil"])
    run_guard.check_task_names(["xtreme_*", "xtreme-xnli-de", "hellaswag", "xtreme-tatoeba-all"])  # no error


# ----------------------------------------------------------------------------- tasks without data


def test_tasks_without_data_fail_the_run_unless_a_partial_run_is_asked_for(tmp_path, shared_data, minilm_path):
    """Item 1 through the real ``lm_eval``, run outside a git checkout: BUCC has no data.
    Without the switch: exit 2, one line, nothing written. With ``allow_missing=true``: exit 0,
    the results JSON marks the run partial, and the retrieval samples hold no vectors (item 5)."""
    from harness_ext.reports.results import find_result_files, read_run, read_samples

    data = _data_with(tmp_path, shared_data, "tatoeba")
    base = ["lm_eval", "run", "--tasks", "xtreme-tatoeba-de,xtreme-bucc2018-de", "--model", "xtreme",
            "--limit", "5", "--device", "cpu", "--log_samples"]
    env = {"XTREME_DATA_DIR": str(data)}
    refused = _run([*base, "--model_args", f"pretrained={minilm_path},use_cache=false",
                    "--output_path", str(tmp_path / "refused")], tmp_path, env)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert last.startswith("error: no data for xtreme_bucc2018 (1 language)") and "allow_missing=true" in last, last
    assert "Traceback" not in refused.stderr and not (tmp_path / "refused").exists()
    assert INDEXING in refused.stderr  # the silent 15-20 s are announced

    partial = _run([*base, "--model_args", f"pretrained={minilm_path},use_cache=false,allow_missing=true",
                    "--output_path", str(tmp_path / "partial")], tmp_path, env)
    assert partial.returncode == 0, partial.stderr[-3000:]
    for out in (refused, partial):
        assert "not a git repository" not in out.stderr  # item 8: lm-eval's git call, outside a checkout
    (results,) = find_result_files(tmp_path / "partial")
    data_json = json.loads(results.read_text())
    assert list(data_json[run_guard.PARTIAL_KEY]["missing_tasks"]) == ["xtreme-bucc2018-de"]
    run = read_run(results)
    assert run.partial and "xtreme-bucc2018-de" in run.missing_tasks and "tatoeba" in run.metrics
    rows = read_samples(run.samples_file("xtreme-tatoeba-de"))
    assert len(rows) == 5
    for row in rows:
        text = json.dumps(row)
        assert len(text) < 2000, text[:300]  # ids, digests and the retrieved index; was ~25 kB of vector text
        assert "-d float32 vector sha1:" in text and run_guard_retrieved(row["acc"]) is not None


def run_guard_retrieved(logged: str) -> int | None:
    from harness_ext.tasks.retrieval import TATOEBA_LOGGED

    match = TATOEBA_LOGGED.match(logged)
    return int(match["retrieved"]) if match and match["retrieved"] != "None" else None


def test_python_api_fails_on_missing_data_and_marks_partial_runs(tmp_path, shared_data, minilm_path, monkeypatch):
    from harness_ext import api

    monkeypatch.setenv("XTREME_DATA_DIR", str(_data_with(tmp_path, shared_data, "tatoeba")))
    tasks = ["xtreme-tatoeba-de", "xtreme-bucc2018-de"]
    args = {"use_cache": False, "device": "cpu"}
    with pytest.raises(run_guard.MissingDataError, match="no data for xtreme_bucc2018") as err:
        api.evaluate(tasks, pretrained=str(minilm_path), model_args=args, limit=3)
    assert is_user_error(err.value) and "\n" not in str(err.value)
    with pytest.raises(run_guard.MissingDataError, match="no data for any selected task"):
        api.evaluate(["xtreme-bucc2018-de"], pretrained=str(minilm_path), model_args=args, limit=3, allow_missing=True)
    monkeypatch.setenv(run_guard.ALLOW_MISSING_ENV, "1")
    out = api.evaluate(tasks, pretrained=str(minilm_path), model_args=args, limit=3)
    assert out[run_guard.PARTIAL_KEY]["switch"] == "XTREME_ALLOW_MISSING=1"
    assert "acc,none" in out["results"]["xtreme-tatoeba-de"]


# ----------------------------------------------------------------------------- results on a full disk


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_results_not_saved_on_a_full_disk_is_an_error(tmp_path, monkeypatch):
    """Issue 21 (7): lm-eval catches the write error, logs a warning and exits 0."""
    from lm_eval.loggers import EvaluationTracker

    import harness_ext.reports.submission as submission
    from harness_ext.api import ensure_registered

    ensure_registered()
    results = {"results": {"xtreme-xnli-en": {"acc,none": 50.0}}, "config": {"model": "xtreme"}}
    tracker = EvaluationTracker(output_path=str(tmp_path / "out"))
    monkeypatch.setattr(Path, "write_text", _no_space)
    monkeypatch.setattr(submission, "atomic_write_text", _no_space)
    with pytest.raises(run_guard.ResultsNotSavedError, match="results were not saved: .*No space left on device") as err:
        tracker.save_results_aggregated(results=dict(results))
    assert run_guard.is_disk_full(err.value) and is_user_error(err.value)
    monkeypatch.undo()

    def half(self, text, *args, **kwargs):  # a truncated file, as a disk filling up mid-write leaves
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half)
    tracker = EvaluationTracker(output_path=str(tmp_path / "again"))
    tracker.save_results_aggregated(results=dict(results))  # our own second write succeeds: a whole file
    (written,) = (tmp_path / "again").rglob("results_*.json")
    assert json.loads(written.read_text())["results"] == results["results"]
    monkeypatch.undo()
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"doc_id": 0}\n{"doc_id": 1, "resps": [')
    with pytest.raises(run_guard.ResultsNotSavedError, match="samples were not saved"):
        run_guard.check_samples_file(samples)


def test_a_sweep_on_a_full_disk_stops_cleanly_and_still_shows_its_summary(tmp_path, monkeypatch, capsys):
    from harness_ext import sweep
    from harness_ext.cli import main

    (tmp_path / "c.yaml").write_text("systems:\n  a: {family: x, size: 1, encoder: ./enc}\n"
                                     "  b: {family: x, size: 2, encoder: ./enc}\n")
    calls = []

    def evaluate(job, options, staging):
        calls.append(job.id)
        raise run_guard.ResultsNotSavedError(errno.ENOSPC, "the results were not saved: x: No space left on device")

    monkeypatch.setattr(sweep, "_evaluate", evaluate)
    monkeypatch.setattr(sweep, "atomic_write_text", _no_space)  # error.log and the summary files cannot be written
    assert main(["sweep", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"), "--tasks", "tatoeba,bucc2018"]) == 1
    out, err = capsys.readouterr()
    assert len(calls) == 1  # the next jobs would compute for hours and fail the same way
    assert "failed" in out and out.count("not run") == 3 and "the disk is full" in out
    assert "error: the summary files could not be written" in err and "No space left on device" in err


class _FakeRay:
    """The parts of Ray's API ``run_on_ray`` uses, as Ray behaves: tasks start in submission order and
    finish when waited for; ``cancel`` stops a task that has not finished, and ``get`` on it raises
    ``ray.exceptions.TaskCancelledError``; ``wait`` returns (ready, not ready)."""

    class exceptions:
        class TaskCancelledError(Exception):
            pass

    def __init__(self):
        self.tasks: dict[int, tuple] = {}
        self.cancelled: set[int] = set()
        self.results: dict[int, object] = {}

    def cluster_resources(self):
        return {"CPU": 2.0}

    def remote(self, fn):
        fake = self

        class Remote:
            def options(self, **_):
                return self

            def remote(self, *args):
                ref = len(fake.tasks)
                fake.tasks[ref] = (fn, args)
                return ref

        return Remote()

    def wait(self, refs, num_returns=1):
        first = min(refs)
        if first not in self.cancelled:
            fn, args = self.tasks[first]
            self.results[first] = fn(*args)
        return [first], [r for r in refs if r != first]

    def get(self, ref):
        if ref in self.cancelled:
            raise self.exceptions.TaskCancelledError(f"task {ref} was cancelled")
        return self.results[ref]

    def cancel(self, ref, force=False):
        if ref not in self.results:
            self.cancelled.add(ref)


def test_a_ray_sweep_on_a_full_disk_cancels_the_jobs_not_yet_run(tmp_path, monkeypatch, capsys):
    from harness_ext import sweep, sweep_ray
    from harness_ext.cli import main

    (tmp_path / "c.yaml").write_text("systems:\n  a: {family: x, size: 1, encoder: ./enc}\n"
                                     "  b: {family: x, size: 2, encoder: ./enc}\n")
    fake, calls = _FakeRay(), []

    def evaluate(job, options, staging):
        calls.append(job.id)
        raise run_guard.ResultsNotSavedError(errno.ENOSPC, "the results were not saved: x: No space left on device")

    monkeypatch.setattr(sweep, "_evaluate", evaluate)
    monkeypatch.setattr(sweep_ray, "_import_ray", lambda: fake)
    monkeypatch.setattr(sweep_ray, "connect", lambda address, num_cpus=None: False)
    code = main(["sweep", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"), "--tasks", "tatoeba,bucc2018",
                 "--ray", "local"])
    out = capsys.readouterr().out
    assert code == 1 and len(calls) == 1, calls  # the other three were cancelled before they ran
    assert len(fake.cancelled) == 3 and "failed" in out and out.count("not run") == 3 and "the disk is full" in out
    summary = json.loads((tmp_path / "out" / "sweep_summary.json").read_text())
    assert sorted(o["status"] for o in summary) == ["failed", "not run", "not run", "not run"]
    assert all("stopped after" in o["detail"] for o in summary if o["status"] == "not run")


# ----------------------------------------------------------------------------- checkpoints validate offline


def test_checkpoints_validate_offline_answers_in_seconds_and_says_each_thing_once(tmp_path, monkeypatch, capsys):
    """Item 4: one quick probe instead of minutes of hub retries; a hub id shared by several
    systems and tasks is one warning; HF_HUB_OFFLINE is left as it was."""
    import datasets
    import huggingface_hub.constants

    from harness_ext.systems import validate_command
    from xtreme_tasks.data import hub

    probes = []
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_OFFLINE_FOUND", None)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: probes.append(timeout) or False)
    path = tmp_path / "c.yaml"
    path.write_text("systems:\n  a: {family: x, size: 1, encoder: someorg/no-such-model}\n"
                    "  b: {family: x, size: 2, encoder: someorg/no-such-model}\n")
    assert validate_command(path) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(probes) == 1
    assert sum("someorg/no-such-model: not checked" in line for line in lines) == 1, lines
    assert lines[-1].endswith("OK (2 systems, 1 warnings)") and "HF_HUB_OFFLINE" not in os.environ
    assert huggingface_hub.constants.HF_HUB_OFFLINE  # the hub libraries read their cache only from then on


def test_hub_probe_is_one_short_try(monkeypatch):
    from xtreme_tasks.data.hub import hub_reachable

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing answers
    assert hub_reachable(timeout=1.0) is False


def test_shipped_checkpoints_validate_offline_prints_each_line_once(tmp_path):
    done = _run(["xtreme-eval", "checkpoints", "validate", str(Path(__file__).resolve().parents[1] / "checkpoints.yaml")],
                tmp_path, {"HF_HUB_OFFLINE": "1"}, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(lines) == len(set(lines)) and lines[-1].endswith("warnings)") and "Retrying" not in done.stderr


# ----------------------------------------------------------------------------- demo


def test_demo_refuses_a_missing_data_dir_and_unrunnable_only(tmp_path, capsys):
    """Item 6: never another data folder than the one named; ``--only`` a task without data fails."""
    from harness_ext.cli import main

    assert main(["demo", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o1")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--data-dir" in err[0] and "no such folder" in err[0]
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--only", "xquad", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    out, err = capsys.readouterr()
    assert err.strip().splitlines()[-1].startswith("error: --only xquad: no data for xquad")
    assert "xtreme-xnli-en" not in out and not (tmp_path / "o2" / "results").exists()
    assert main(["demo", "--only", "xqad", "--out", str(tmp_path / "o3")]) == 2
    assert "did you mean xquad" in capsys.readouterr().err


# ----------------------------------------------------------------------------- export -> score


def _tiny_data(shared_data: Path, root: Path, pairs: int = 6, questions: int = 3) -> Path:
    """The first few Tatoeba pairs and XQuAD questions of every official language, in the official layout."""
    from xtreme_tasks.data.tatoeba import laser_code
    from xtreme_tasks.table import TASKS

    (root / "tatoeba").mkdir(parents=True)
    for lang in TASKS["tatoeba"].languages:
        code = laser_code(lang)
        for side in (code, "eng"):
            name = f"tatoeba.{code}-eng.{side}"
            lines = (shared_data / "tatoeba" / name).read_text(encoding="utf-8").splitlines()[:pairs]
            (root / "tatoeba" / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    (root / "xquad").mkdir()
    for lang in TASKS["xquad"].languages:
        squad = json.loads((shared_data / "xquad" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        paragraph = squad["data"][0]["paragraphs"][0]
        paragraph["qas"] = paragraph["qas"][:questions]
        squad["data"] = [{"title": squad["data"][0].get("title", ""), "paragraphs": [paragraph]}]
        (root / "xquad" / f"xquad.{lang}.json").write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    return root


def test_export_then_score_against_the_local_test_data_in_one_command(tmp_path, shared_data, minilm_path, monkeypatch,
                                                                     capsys):
    """Item 7: ``xtreme-eval score --data-dir`` scores an export against the data the run read,
    and gives the run's own numbers."""
    from lm_eval.loggers import EvaluationTracker

    from harness_ext import api
    from harness_ext.cli import main
    from harness_ext.demo import build_tiny_checkpoint
    from harness_ext.reports.export import export_predictions
    from harness_ext.reports.results import collect

    data = _tiny_data(shared_data, tmp_path / "data")
    monkeypatch.setenv("XTREME_DATA_DIR", str(data))
    qa = build_tiny_checkpoint(tmp_path / "qa", "question-answering", (), minilm_path, seed=3)
    runs = {"tatoeba": str(minilm_path), "xquad": str(qa)}
    for task, checkpoint in runs.items():
        tracker = EvaluationTracker(output_path=str(tmp_path / "runs" / task))
        out = api.evaluate([f"xtreme_{task}"], pretrained=checkpoint, log_samples=True, evaluation_tracker=tracker,
                           model_args={"use_cache": False, "device": "cpu", "batch_size": 16})
        samples = out.pop("samples")
        tracker.save_results_aggregated(results=out, samples=samples)
        for leaf in out["configs"]:
            tracker.save_results_samples(task_name=leaf, samples=samples[leaf])
    systems = collect([tmp_path / "runs"], label="s")
    done = export_predictions(systems, tmp_path / "submission", allow_partial=True)  # tiny test sets: not XTREME's
    assert {p.parent.name for p in done.written} == {"tatoeba", "xquad"}
    capsys.readouterr()
    assert main(["score", "--predictions", str(tmp_path / "submission"), "--data-dir", str(data), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["tasks"]
    metrics = systems["s"].metrics()
    for task, pairs in (("tatoeba", [("acc", "acc")]), ("xquad", [("em", "em"), ("f1", "f1")])):
        for lang, values in metrics[task].items():
            if lang == "ro":
                continue
            for ours, official in pairs:
                assert scored[task]["per_language"][lang][official] == pytest.approx(values[ours]), (task, lang, ours)
