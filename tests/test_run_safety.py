"""Faults around a run's outputs: sweep folder names never collide, and every file a run
writes gets the mode a plain ``open(path, "w")`` gives (umask respected, like results.json)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness_ext.reports.submission import atomic_write_text


def test_sweep_folder_collision_is_an_error_at_start(tmp_path: Path) -> None:
    from harness_ext.sweep import SweepError, plan

    path = tmp_path / "checkpoints.yaml"
    path.write_text("version: 1\nsystems:\n"
                    "  team/xlmr: {family: x, size: 1, checkpoints: {xnli: ./a}}\n"
                    "  team_xlmr: {family: x, size: 1, checkpoints: {xnli: ./b}}\n")
    with pytest.raises(SweepError) as err:
        plan(path, ["xnli"])
    message = str(err.value)
    assert "'team/xlmr' and 'team_xlmr'" in message and "team_xlmr" in message and "\n" not in message
    path.write_text(path.read_text().replace("team_xlmr:", "Team/XLMR:"))  # case-insensitive disks
    with pytest.raises(SweepError, match="share the output folder"):
        plan(path, ["xnli"], systems=["team/xlmr"])
    path.write_text(path.read_text().replace("Team/XLMR:", "team-xlmr:"))
    jobs, _ = plan(path, ["xnli"])
    assert len({j.folder(tmp_path) for j in jobs}) == 2


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_respect_umask(tmp_path: Path, umask: int) -> None:
    import harness_ext.reports.submission as submission

    old = os.umask(umask)
    submission._UMASK.clear()
    try:
        atomic_write_text(tmp_path / "job.json", "{}\n")
        with open(tmp_path / "plain.json", "w") as fh:  # how lm-eval writes results.json
            fh.write("{}\n")
    finally:
        os.umask(old)
        submission._UMASK.clear()
    mode = (tmp_path / "job.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o666 & ~umask


def _data_with(tmp_path: Path, shared_data: Path, *tasks: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for task in tasks:
        (data / task).symlink_to(shared_data / task)
    return data


def test_wrong_head_stops_the_run_before_any_forward_pass(tmp_path, shared_data, minilm_path, monkeypatch):
    """Tatoeba + XQuAD with an encoder that has no QA head: the run stops before Tatoeba
    embeds anything, and the error names the task, the head it needs and what to pass."""
    import harness_ext.adapters.encoder.embed as embed
    from harness_ext import api
    from harness_ext.adapters.xtreme_lm import PreflightError

    monkeypatch.setenv("XTREME_DATA_DIR", str(_data_with(tmp_path, shared_data, "tatoeba", "xquad")))
    calls = []
    monkeypatch.setattr(embed, "answer", lambda *a, **k: calls.append(1) or [])
    with pytest.raises(PreflightError) as err:
        api.evaluate(["xtreme-tatoeba-de", "xtreme-xquad-de", "xtreme-xquad-en"], pretrained=str(minilm_path),
                     model_args={"use_cache": False, "device": "cpu"}, limit=2)
    message = str(err.value)
    assert not calls, "Tatoeba was embedded before the QA checkpoint was checked"
    assert "\n" not in message and "xtreme_xquad (2 languages)" in message
    assert "question-answering head" in message and "BertModel" in message and "pretrained=" in message


def test_tasks_without_data_are_left_out_only_on_purpose(tmp_path, shared_data, minilm_path, monkeypatch, caplog):
    """Data for Tatoeba only: without the switch the run stops (one line, nothing computed);
    with ``allow_missing=true`` BUCC is left out (empty results, marked in its config and in
    ``xtreme_partial``), the Tatoeba result is there, and the log says what was left out."""
    from harness_ext import api
    from harness_ext.run_guard import PARTIAL_KEY, MissingDataError

    monkeypatch.setenv("XTREME_DATA_DIR", str(_data_with(tmp_path, shared_data, "tatoeba")))
    tasks = ["xtreme-tatoeba-de", "xtreme-bucc2018-de", "xtreme-bucc2018-fr"]
    with pytest.raises(MissingDataError, match=r"no data for xtreme_bucc2018 \(2 languages\)"):
        api.evaluate(tasks, pretrained=str(minilm_path), model_args={"use_cache": False, "device": "cpu"}, limit=3)
    with caplog.at_level("WARNING"):
        out = api.evaluate(tasks, pretrained=str(minilm_path),
                           model_args={"use_cache": False, "device": "cpu", "allow_missing": True}, limit=3)
    assert "acc,none" in out["results"]["xtreme-tatoeba-de"]
    assert not any("," in key for key in out["results"]["xtreme-bucc2018-de"])  # no metrics
    assert "bucc2018" in out["configs"]["xtreme-bucc2018-de"]["metadata"]["left_out"]
    assert sorted(out[PARTIAL_KEY]["missing_tasks"]) == ["xtreme-bucc2018-de", "xtreme-bucc2018-fr"]
    assert any("left out for missing data" in r.message and "xtreme_bucc2018 (2 languages)" in r.message
               for r in caplog.records)


def test_checkpoints_validate_catches_what_used_to_pass(tmp_path: Path, capsys) -> None:
    """Duplicate keys, an empty file, a folder, non-UTF-8 bytes and ``layer: 99`` on a
    2-layer encoder are errors of one line each (the layer is checked from config.json)."""
    from harness_ext.systems import validate_command
    from tests.helpers.tiny_models import tiny_xlmr

    cases = {
        "dup.yaml": ("systems:\n  a: {family: x, size: 1, encoder: ./enc}\n  a: {family: x, size: 2, encoder: ./enc}\n",
                     "duplicate key 'a'"),
        "empty.yaml": ("", "is empty"),
        "none.yaml": ("systems: {}\n", "defines no systems"),
        "latin1.yaml": ("systems:\n  caf\xe9: {family: x, size: 1, encoder: ./enc}\n".encode("latin-1"), "not UTF-8"),
        "layer.yaml": ("systems:\n  a: {family: x, size: 1, encoder: ./enc, retrieval: {layer: 99}}\n",
                       "layer=99 is out of range for a model with 2 transformer blocks"),
    }
    tiny_xlmr(tmp_path, head="encoder", name="enc")
    (tmp_path / "dir.yaml").mkdir()
    cases["dir.yaml"] = (None, "is a folder")
    for name, (body, expected) in cases.items():
        path = tmp_path / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        elif body is not None:
            path.write_text(body, encoding="utf-8")
        assert validate_command(path, check_heads=False) == 1, name
        out = capsys.readouterr().out.strip()
        assert expected in out and str(path) in out, (name, out)
        assert "OK" not in out
    ok = tmp_path / "ok.yaml"
    ok.write_text("systems:\n  a: {family: x, size: 1, encoder: ./enc, retrieval: {layer: -3}}\n")
    assert validate_command(ok, check_heads=False) == 0


@pytest.mark.parametrize("args, expected", [
    ("system=nobody,checkpoints={yaml}", "system 'nobody' is not in"),
    ("pretrained=x,system=y", "exactly one of pretrained="),
    ("system=a,checkpoints={dir}", "is a folder"),
    ("pretrained=x,batch_size=many", "batch_size='many': expected an integer"),
])
def test_bad_model_args_are_one_line_user_errors(tmp_path: Path, args: str, expected: str) -> None:
    """``--model xtreme --model_args ...`` mistakes are our user-error types (``xtreme-eval``
    and ``lm_eval`` print them as one ``error:`` line, exit 2)."""
    from harness_ext.adapters.xtreme_lm import XtremeLM
    from harness_ext.errors import is_user_error

    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("systems:\n  a: {family: x, size: 1, encoder: ./enc}\n")
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError) as err:
        XtremeLM.create_from_arg_string(args.format(yaml=yaml_file, dir=tmp_path / "d"), {"device": "cpu"})
    assert is_user_error(err.value) and expected in str(err.value) and "\n" not in str(err.value)


def test_unwritable_outputs_are_found_before_any_work(tmp_path: Path, capsys, monkeypatch) -> None:
    """``--out`` of sweep/report/export and lm-eval's ``--output_path`` are checked first:
    one line, exit 2, nothing run (lm-eval itself would only warn after the run)."""
    from harness_ext.adapters.xtreme_lm import XtremeLM
    from harness_ext.cli import main
    from harness_ext.outputs import OutputError

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = blocker / "out"
    fixtures = Path(__file__).parent / "fixtures" / "results"
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("systems:\n  a: {family: x, size: 1, encoder: ./enc}\n")
    for argv in (["sweep", str(yaml_file), "--out", str(bad)], ["report", str(fixtures), "--out", str(bad)],
                 ["export", str(fixtures), "--out", str(bad)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--out" in err[0] and str(bad) in err[0] and "a file, not a folder" in err[0], err
    assert not (tmp_path / "a-file").is_dir()
    monkeypatch.setattr("sys.argv", ["lm_eval", "run", "--model", "xtreme", "--output_path", str(bad)])
    with pytest.raises(OutputError, match="--output_path"):
        XtremeLM(pretrained="x", device="cpu")
    monkeypatch.setattr("sys.argv", ["lm_eval", "run", "--output_path", str(tmp_path / "fine" / "r.json")])
    XtremeLM(pretrained="x", device="cpu", use_cache=False)


def test_verbose_shows_the_traceback_of_a_user_error(tmp_path: Path, capsys) -> None:
    from harness_ext.cli import main

    path = tmp_path / "dup.yaml"
    path.write_text("systems:\n  a: {family: x, size: 1, encoder: e}\n  a: {family: x, size: 1, encoder: e}\n")
    args = ["score", "--predictions", str(tmp_path / "nope"), "--labels", str(tmp_path / "nope")]
    assert main(args) == 2
    quiet = capsys.readouterr().err.strip().splitlines()
    assert len(quiet) == 1 and quiet[0].startswith("error: ")
    assert main(["--verbose", "checkpoints", "validate", str(path)]) == 1  # validate reports, exit 1
    capsys.readouterr()
    from harness_ext.systems import load_systems  # noqa: F401 - a raising command, verbose
    assert main(["--verbose", "sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    loud = capsys.readouterr().err
    assert "Traceback" in loud and loud.strip().splitlines()[-1].startswith("error: ") and "duplicate key" in loud


def test_lm_eval_command_line_stops_before_compute_and_ends_with_our_line(tmp_path, shared_data, minilm_path):
    """The issue's reproduction through the real ``lm_eval`` command: Tatoeba + XQuAD with an
    encoder lacking the QA head, plus BUCC without data (left out on purpose: allow_missing=true).
    The last line is our message, one line, and the warning says BUCC was left out."""
    import os
    import subprocess

    data = _data_with(tmp_path, shared_data, "tatoeba", "xquad")
    env = {**os.environ, "XTREME_DATA_DIR": str(data)}
    done = subprocess.run(
        ["lm_eval", "run", "--model", "xtreme", "--model_args", f"pretrained={minilm_path},use_cache=false,allow_missing=true",
         "--tasks", "xtreme-tatoeba-de,xtreme-xquad-en,xtreme-bucc2018-de", "--limit", "2", "--device", "cpu",
         "--output_path", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 checkpoint problem(s)"), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "xtreme_xquad (1 language)" in last and "question-answering head" in last
    assert "left out for missing data" in done.stderr and "xtreme_bucc2018 (1 language)" in done.stderr
    assert not (tmp_path / "out").exists()


def test_checkpoints_validate_unreadable_files(tmp_path: Path, capsys) -> None:
    """A folder where the weights file belongs and a config.json of garbage bytes: one line each."""
    import textwrap

    from harness_ext.systems import validate_command
    from tests.helpers.tiny_models import tiny_xlmr

    for name in ("a", "b"):
        tiny_xlmr(tmp_path, head="sequence-classification", name=name)
    (tmp_path / "a" / "model.safetensors").unlink()
    (tmp_path / "a" / "model.safetensors").mkdir()
    (tmp_path / "b" / "config.json").write_bytes(b"\xff\xfe garbage {")
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent("""
        systems:
          s: {family: x, size: 1, checkpoints: {xnli: ./a, pawsx: ./b}}
        """))
    assert validate_command(path) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if ": error: " in line]
    assert len(lines) == 2
    assert "model.safetensors: is a folder" in lines[0] and "b/config.json: not valid JSON" in lines[1]
