"""PEFT backend: a LoRA adapter folder saved by peft loads (merged) with the adapter model's logits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import transformers

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint
from tests.helpers.tiny_models import XNLI_LABELS, encode, outputs, tiny_xlmr

peft = pytest.importorskip("peft", reason="optional extra 'peft' not installed")


def _adapter(tmp_path: Path, task_type: str = "SEQ_CLS") -> tuple[Path, Path, torch.nn.Module]:
    base = tiny_xlmr(tmp_path, head="encoder", name="base")
    cls = {"SEQ_CLS": transformers.AutoModelForSequenceClassification,
           "TOKEN_CLS": transformers.AutoModelForTokenClassification}[task_type]
    torch.manual_seed(3)
    model = cls.from_pretrained(base, num_labels=3, id2label=XNLI_LABELS)
    lora = peft.get_peft_model(model, peft.LoraConfig(task_type=task_type, r=4, target_modules=["query", "value"]))
    for name, param in lora.named_parameters():
        if "lora_B" in name:  # B starts at zero; make the adapter change the output
            torch.nn.init.normal_(param, std=0.5)
    lora.eval()
    folder = tmp_path / "adapter"
    lora.save_pretrained(folder)
    return folder, base, lora


def test_lora_adapter_matches_peft_model(tmp_path: Path) -> None:
    folder, base, lora = _adapter(tmp_path)
    assert detect_backend(str(folder)) == "peft"
    loaded = load_checkpoint(str(folder), "sequence-classification", labels=tuple(XNLI_LABELS.values()))
    assert loaded.backend == "peft" and type(loaded.model).__name__ == "XLMRobertaForSequenceClassification"
    assert loaded.id2label() == XNLI_LABELS
    batch = encode(loaded.tokenizer, pairs=True)
    torch.testing.assert_close(outputs(loaded.model, batch), outputs(lora, batch), atol=1e-5, rtol=0)
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(base, num_labels=3)
    assert not torch.allclose(outputs(plain.roberta, batch), outputs(loaded.model.roberta, batch))  # LoRA applied
    enc = load_checkpoint(str(folder), "encoder")
    with torch.no_grad():
        want = lora.base_model.model.roberta(**batch).last_hidden_state
    torch.testing.assert_close(outputs(enc.model, batch), want, atol=1e-5, rtol=0)


def test_adapter_for_another_task_and_missing_base(tmp_path: Path) -> None:
    folder, base, _ = _adapter(tmp_path, "TOKEN_CLS")
    with pytest.raises(CheckpointError, match="expected a sequence-classification adapter"):
        load_checkpoint(str(folder), "sequence-classification")
    assert load_checkpoint(str(folder), "token-classification").model.config.num_labels == 3
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tmp_path / "gone")
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="gone"):
        load_checkpoint(str(folder), "token-classification")
    assert load_checkpoint(str(folder), "token-classification", base_model=str(base)).backend == "peft"


def test_head_not_saved_is_refused(tmp_path: Path) -> None:
    folder, base, _ = _adapter(tmp_path)
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "adapter_model.safetensors")
    save_file({k: v for k, v in weights.items() if "classifier" not in k}, folder / "adapter_model.safetensors")
    with pytest.raises(CheckpointError, match="randomly initialised"):
        load_checkpoint(str(folder), "sequence-classification")


def test_truncated_adapter_and_missing_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _, _ = _adapter(tmp_path)
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(CheckpointError, match=r"pip install 'xtreme-harness\[peft\]'"):
        load_checkpoint(str(folder), "sequence-classification")
    monkeypatch.undo()
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    with pytest.raises(CheckpointError, match="truncated") as err:
        load_checkpoint(str(folder), "sequence-classification")
    assert str(weights) in str(err.value)
