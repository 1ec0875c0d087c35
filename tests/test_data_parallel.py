"""Data-parallel evaluation: two ranks (torchrun, CPU/gloo) give the single-process numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_plugin_core import tiny_classifier, write_classification_data
from xtreme_tasks.table import TASKS


def _run(command: list[str], cwd: Path, env: dict) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = (cwd / command[command.index("--output_path") + 1]).rglob("results_*.json")
    return {"results": json.loads(results_file.read_text())["results"], "log": done.stderr}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_two_ranks_match_one(tmp_path, minilm_path):
    data = write_classification_data(tmp_path / "data")
    ckpt = tiny_classifier(tmp_path / "ckpt", TASKS["pawsx"].labels, minilm_path, seed=5)
    env = {**os.environ, "XTREME_DATA_DIR": str(data), "OMP_NUM_THREADS": "1"}
    lm_eval_args = ["run", "--model", "xtreme", "--model_args", f"pretrained={ckpt},device=cpu",
                    "--tasks", "xtreme_pawsx"]
    single = _run(["python", "-m", "lm_eval", *lm_eval_args, "--output_path", "one"], tmp_path, env)
    double = _run(["torchrun", "--nproc_per_node", "2", "-m", "lm_eval", *lm_eval_args, "--output_path", "two"],
                  tmp_path, env)
    assert "rank 0 of 2" in double["log"] and "rank 1 of 2" in double["log"]
    for lang in TASKS["pawsx"].languages:
        name = f"xtreme-pawsx-{lang}"
        assert double["results"][name]["acc,none"] == pytest.approx(single["results"][name]["acc,none"])
    assert double["results"]["xtreme_pawsx"]["acc,none"] == pytest.approx(single["results"]["xtreme_pawsx"]["acc,none"])
