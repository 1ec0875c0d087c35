"""DCP backend: a folder written by torch.distributed.checkpoint.save loads with the original logits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp
import transformers

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint
from tests.helpers.tiny_models import encode, outputs, tiny_xlmr


def _write(tmp_path: Path, head: str = "question-answering") -> tuple[Path, torch.nn.Module, Path]:
    folder = tiny_xlmr(tmp_path, head=head, name="hf")
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    run = tmp_path / "run"
    ckpt = run / "step-100"
    optim = torch.optim.AdamW(model.parameters())
    dcp.save({"model": model.state_dict(), "optim": optim.state_dict(), "step": 100}, checkpoint_id=str(ckpt), no_dist=True)
    shutil.copy(folder / "config.json", run / "config.json")  # config one level up, as training scripts keep it
    return ckpt, model, folder


def test_dcp_folder_matches_original(tmp_path: Path) -> None:
    ckpt, model, folder = _write(tmp_path)
    assert (ckpt / ".metadata").exists() and list(ckpt.glob("*.distcp"))
    assert detect_backend(str(ckpt)) == "dcp"
    loaded = load_checkpoint(str(ckpt), "question-answering", tokenizer=str(folder))
    assert loaded.backend == "dcp"
    batch = encode(loaded.tokenizer)
    torch.testing.assert_close(outputs(loaded.model, batch), outputs(model, batch), atol=1e-5, rtol=0)
    enc = load_checkpoint(str(ckpt), "encoder", tokenizer=str(folder))
    torch.testing.assert_close(outputs(enc.model, batch), outputs(model.roberta, batch), atol=1e-5, rtol=0)


def test_dcp_bad_input(tmp_path: Path) -> None:
    ckpt, _, folder = _write(tmp_path)
    with pytest.raises(CheckpointError, match="no tokenizer found"):
        load_checkpoint(str(ckpt), "question-answering")
    with pytest.raises(CheckpointError, match="expected a sequence-classification head"):
        load_checkpoint(str(ckpt), "sequence-classification", tokenizer=str(folder))
    (ckpt.parent / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no model config found"):
        load_checkpoint(str(ckpt), "question-answering", tokenizer=str(folder))
    shard = next(ckpt.glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as err:
        load_checkpoint(str(ckpt), "question-answering", tokenizer=str(folder), config=str(folder))
    assert shard.name in str(err.value)
