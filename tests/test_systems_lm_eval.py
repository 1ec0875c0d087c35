"""A system from checkpoints.yaml through the lm_eval command line: each task is answered
by its own checkpoint (kept apart from test_systems.py: it runs lm_eval, ~1-2 minutes)."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from harness_ext.systems import validate_file
from tests.helpers.tiny_models import tiny_xlmr


@pytest.mark.slow
def test_system_uses_each_tasks_checkpoint_through_lm_eval(tmp_path: Path, shared_data: Path) -> None:
    """``lm_eval --tasks xtreme_xnli,xtreme_tatoeba --model_args system=...``: XNLI is answered by
    the system's XNLI classifier (a Hugging Face folder) and Tatoeba by its own encoder (a
    DCP checkpoint): each task's numbers equal a ``pretrained=`` run of that checkpoint alone."""
    import torch.distributed.checkpoint as dcp
    import transformers

    from harness_ext import api
    from test_plugin_core import write_classification_data

    data = write_classification_data(tmp_path / "data")
    (data / "tatoeba").symlink_to(shared_data / "tatoeba")
    root = tmp_path / "systems"
    xnli = tiny_xlmr(root, head="sequence-classification", name="xnli", seed=1)
    encoder = tiny_xlmr(root, head="encoder", name="enc", seed=2)
    dcp.save({"model": transformers.AutoModel.from_pretrained(encoder).state_dict()},
             checkpoint_id=str(root / "enc-dcp"), no_dist=True)
    yaml_file = root / "checkpoints.yaml"
    yaml_file.write_text(textwrap.dedent("""
        systems:
          mixed:
            family: xlm-r
            size: 100000
            seed: 1
            encoder: {source: ./enc-dcp, tokenizer: ./enc, options: {config: ./enc}}
            checkpoints:
              xnli: ./xnli
        """))
    assert validate_file(yaml_file) == []
    limit = 8
    env = {**os.environ, "XTREME_DATA_DIR": str(data)}
    out = tmp_path / "out"
    done = subprocess.run(
        ["lm_eval", "run", "--model", "xtreme", "--model_args",
         f"system=mixed,checkpoints={yaml_file},batch_size=8,use_cache=false",
         "--tasks", "xtreme_xnli,xtreme_tatoeba", "--limit", str(limit), "--output_path", str(out), "--device", "cpu"],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    system_results = json.loads(results_file.read_text())["results"]

    os.environ["XTREME_DATA_DIR"] = str(data)
    try:
        def alone(tasks: str | list[str], source: str) -> dict:
            args = {"batch_size": 8, "use_cache": False, "device": "cpu"}
            names = [tasks] if isinstance(tasks, str) else tasks
            return api.evaluate(names, pretrained=source, model_args=args, limit=limit)["results"]

        xnli_alone = alone("xtreme_xnli", str(xnli))
        some = ["xtreme-tatoeba-de", "xtreme-tatoeba-fr", "xtreme-tatoeba-ru", "xtreme-tatoeba-zh"]
        tatoeba_alone = {k: v for k, v in alone(some, str(encoder)).items() if k in some}
        tatoeba_from_xnli = alone(some, str(xnli))  # what a mix-up would have scored
    finally:
        del os.environ["XTREME_DATA_DIR"]
    assert system_results["xtreme_xnli"]["acc,none"] == pytest.approx(xnli_alone["xtreme_xnli"]["acc,none"])
    for leaf, row in tatoeba_alone.items():
        assert system_results[leaf]["acc,none"] == pytest.approx(row["acc,none"]), leaf
    assert len(tatoeba_alone) == 4 and len([k for k in system_results if k.startswith("xtreme-tatoeba-")]) == 36
    assert any(tatoeba_from_xnli[k]["acc,none"] != tatoeba_alone[k]["acc,none"] for k in tatoeba_alone), \
        "the two checkpoints should not score Tatoeba alike"
