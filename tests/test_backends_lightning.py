"""Lightning backend: a real ``Trainer.save_checkpoint`` file loads with the original logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint
from tests.helpers.tiny_models import PANX_LABELS, encode, outputs, tiny_xlmr

L = pytest.importorskip("lightning", reason="optional extra 'lightning' not installed (writes the test checkpoint)")


class TaggerModule(L.LightningModule):
    """A typical user module: the transformers model under ``self.model``."""

    def __init__(self, model_name_or_path: str, id2label: dict[int, str]) -> None:
        super().__init__()
        self.save_hyperparameters()
        torch.manual_seed(1)
        self.model = transformers.AutoModelForTokenClassification.from_pretrained(
            model_name_or_path, num_labels=len(id2label))
        self.loss_scale = torch.nn.Parameter(torch.ones(1))  # a non-model parameter, as modules often have

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def _save(tmp_path: Path, base: Path) -> tuple[Path, TaggerModule]:
    module = TaggerModule(str(base), PANX_LABELS).eval()
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.strategy.connect(module)
    path = tmp_path / "run" / "epoch=0-step=10.ckpt"
    path.parent.mkdir()
    trainer.save_checkpoint(path)
    return path, module


def test_lightning_ckpt_matches_module(tmp_path: Path) -> None:
    base = tiny_xlmr(tmp_path, head="encoder", name="base")
    path, module = _save(tmp_path, base)
    assert detect_backend(str(path)) == "lightning"
    assert detect_backend(str(path.parent)) == "lightning"  # a folder with one .ckpt
    loaded = load_checkpoint(str(path), "token-classification")  # config + tokenizer from hyper_parameters
    assert loaded.backend == "lightning" and loaded.id2label() == PANX_LABELS
    batch = encode(loaded.tokenizer)
    torch.testing.assert_close(outputs(loaded.model, batch), outputs(module.model, batch), atol=1e-5, rtol=0)
    enc = load_checkpoint(str(path), "encoder")
    torch.testing.assert_close(outputs(enc.model, batch), outputs(module.model.roberta, batch), atol=1e-5, rtol=0)


def test_lightning_needs_config_and_tokenizer(tmp_path: Path) -> None:
    base = tiny_xlmr(tmp_path, head="encoder", name="base")
    path, _ = _save(tmp_path, base)
    moved = tmp_path / "moved"
    base.rename(moved)  # the recorded model_name_or_path no longer exists
    with pytest.raises(CheckpointError, match="no model config found"):
        load_checkpoint(str(path), "token-classification")
    with pytest.raises(CheckpointError, match="no tokenizer found"):
        load_checkpoint(str(path), "token-classification", config=str(moved / "config.json"))
    loaded = load_checkpoint(str(path), "token-classification", config=str(moved), tokenizer=str(moved))
    assert loaded.id2label() == PANX_LABELS


def test_lightning_wrong_head_and_truncation(tmp_path: Path) -> None:
    base = tiny_xlmr(tmp_path, head="encoder", name="base")
    path, _ = _save(tmp_path, base)
    with pytest.raises(CheckpointError, match="randomly initialised"):
        load_checkpoint(str(path), "question-answering")
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as err:
        load_checkpoint(str(path), "token-classification")
    assert str(path) in str(err.value)
