"""DeepSpeed backend: real ZeRO-2 and ZeRO-3 checkpoints (written by deepspeed itself, in a
subprocess) load with the original logits, rebuilt by our own weights-only reader, with or
without deepspeed installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import transformers

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint
from tests.helpers.tiny_models import encode, outputs, tiny_xlmr

pytest.importorskip("deepspeed", reason="optional extra 'deepspeed' not installed (writes the test checkpoints)")

WRITER = textwrap.dedent("""
    import os, sys, torch, transformers, deepspeed
    base, out = sys.argv[1], sys.argv[2]
    deepspeed.init_distributed(dist_backend="gloo")
    for stage in (2, 3):
        model = transformers.AutoModelForSequenceClassification.from_pretrained(base)
        config = {"train_batch_size": 1, "zero_optimization": {"stage": stage},
                  "optimizer": {"type": "AdamW", "params": {"lr": 1e-3, "torch_adam": True}},
                  "zero_allow_untested_optimizer": True}
        engine, *_ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
        engine.save_checkpoint(f"{out}/zero{stage}", tag="global_step7")
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ds_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    base = tiny_xlmr(root, head="sequence-classification", name="hf")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0",
           "LOCAL_RANK": "0", "WORLD_SIZE": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", WRITER, str(base), str(root)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for stage in (2, 3):  # HF Trainer keeps config + tokenizer in the checkpoint folder
        for f in base.iterdir():
            if f.name != "model.safetensors":
                shutil.copy(f, root / f"zero{stage}")
    return root


@pytest.mark.parametrize("stage", [2, 3])
def test_zero_checkpoint_matches_original(ds_run: Path, stage: int) -> None:
    folder = ds_run / f"zero{stage}"
    assert (folder / "latest").read_text().strip() == "global_step7"
    assert detect_backend(str(folder)) == "deepspeed"
    loaded = load_checkpoint(str(folder), "sequence-classification")
    assert loaded.backend == "deepspeed" and loaded.id2label()[0] == "entailment"
    original = transformers.AutoModelForSequenceClassification.from_pretrained(ds_run / "hf").eval()
    batch = encode(loaded.tokenizer, pairs=True)
    torch.testing.assert_close(outputs(loaded.model, batch), outputs(original, batch), atol=1e-5, rtol=0)
    tagged = load_checkpoint(str(folder / "global_step7"), "encoder")  # a tag folder works too
    torch.testing.assert_close(outputs(tagged.model, batch), outputs(original.roberta, batch), atol=1e-5, rtol=0)


def test_without_deepspeed(ds_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "deepspeed" or m.startswith("deepspeed.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # import deepspeed -> ImportError
    original = transformers.AutoModelForSequenceClassification.from_pretrained(ds_run / "hf").eval()
    for stage in (2, 3):
        loaded = load_checkpoint(str(ds_run / f"zero{stage}"), "sequence-classification")
        batch = encode(loaded.tokenizer)
        torch.testing.assert_close(outputs(loaded.model, batch), outputs(original, batch), atol=1e-5, rtol=0)
    assert not any(m == "deepspeed" or m.startswith("deepspeed.") for m in sys.modules if sys.modules[m] is not None)


def test_bad_deepspeed_folders(ds_run: Path, tmp_path: Path) -> None:
    broken = tmp_path / "zero2"
    shutil.copytree(ds_run / "zero2", broken)
    (broken / "latest").write_text("global_step99")
    with pytest.raises(CheckpointError, match="global_step99"):
        load_checkpoint(str(broken), "sequence-classification")
    (broken / "latest").write_text("global_step7")
    optim = next((broken / "global_step7").glob("*optim_states.pt"))
    optim.write_bytes(optim.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as err:
        load_checkpoint(str(broken), "sequence-classification")
    assert optim.name in str(err.value)
