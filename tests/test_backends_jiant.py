"""jiant backend: a jiant 2.x experiment folder (exported model, run config, run outputs)
written exactly as jiant lays it out loads with the JiantModel's own logits.

jiant itself does not install on Python 3.11, so the JiantModel is rebuilt here from
jiant's source (heads.py / taskmodels.py / primary.py): a shared transformers encoder,
``taskmodels_dict`` of task models that hold that encoder and a head, saved with
``torch.save(jiant_model.state_dict(), "best_model.p")`` like runner.save_model_with_metadata.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn
import transformers

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint
from tests.helpers.tiny_models import encode, outputs, tiny_xlmr

JIANT_NLI = ("contradiction", "entailment", "neutral")
JIANT_PANX = ("B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O")


class ClassificationHead(nn.Module):  # jiant.proj.main.modeling.heads.ClassificationHead
    def __init__(self, hidden: int, n: int) -> None:
        super().__init__()
        self.dense, self.dropout, self.out_proj = nn.Linear(hidden, hidden), nn.Dropout(0.0), nn.Linear(hidden, n)

    def forward(self, pooled):
        return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))


class TokenClassificationHead(nn.Module):  # heads.TokenClassificationHead
    def __init__(self, hidden: int, n: int) -> None:
        super().__init__()
        self.dropout, self.classifier = nn.Dropout(0.0), nn.Linear(hidden, n)

    def forward(self, unpooled):
        return self.classifier(self.dropout(unpooled))


class QAHead(nn.Module):  # heads.QAHead
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.qa_outputs = nn.Linear(hidden, 2)

    def forward(self, unpooled):
        return self.qa_outputs(unpooled).permute(0, 2, 1)


class Taskmodel(nn.Module):  # taskmodels.Taskmodel: holds the shared encoder and a head
    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, batch):
        out = self.encoder(**batch)  # JiantTransformersModel.encode: pooled = pooler_output
        if isinstance(self.head, ClassificationHead):
            return self.head(out.pooler_output)
        return self.head(out.last_hidden_state)


class JiantModel(nn.Module):  # primary.JiantModel
    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.taskmodels_dict = nn.ModuleDict({name: Taskmodel(encoder, head) for name, head in heads.items()})


def write_experiment(tmp_path: Path, heads: dict[str, nn.Module], task_map: dict[str, str]) -> tuple[Path, JiantModel, Path]:
    """exp/models/xlmr (export_model.py), exp/runconfigs + configs, exp/runs/<run> (runscript.py)."""
    hf = tiny_xlmr(tmp_path, head="encoder", name="hf")
    exp = tmp_path / "exp"
    model_dir = exp / "models" / "xlmr"
    torch.manual_seed(5)
    pretraining = transformers.XLMRobertaForMaskedLM.from_pretrained(hf)
    (model_dir / "model").mkdir(parents=True)
    torch.save(pretraining.state_dict(), model_dir / "model" / "model.p")
    (model_dir / "model" / "config.json").write_text(json.dumps(pretraining.config.to_dict()))
    transformers.AutoTokenizer.from_pretrained(hf).save_pretrained(model_dir / "tokenizer")
    export = {"hf_pretrained_model_name_or_path": "xlm-roberta-base", "model_path": str(model_dir / "model" / "model.p"),
              "model_config_path": str(model_dir / "model" / "config.json")}
    (model_dir / "config.json").write_text(json.dumps(export))
    (exp / "configs").mkdir()
    for task in task_map:
        jiant_task = task.split("_")[0] if not task.startswith("squad") else "squad_v1"
        (exp / "configs" / f"{task}_config.json").write_text(json.dumps(
            {"task": jiant_task, "paths": {"val": f"/data/{task}/val.jsonl"}, "name": task}))
    run_config = {
        "task_config_path_dict": {t: str(exp / "configs" / f"{t}_config.json") for t in task_map},
        "taskmodels_config": {"task_to_taskmodel_map": task_map, "taskmodel_config_map": {m: None for m in heads}},
        "task_run_config": {"train_task_list": list(task_map)[:1], "train_val_task_list": list(task_map)[:1],
                            "val_task_list": list(task_map), "test_task_list": []},
    }
    (exp / "runconfigs").mkdir()
    (exp / "runconfigs" / "run.json").write_text(json.dumps(run_config))
    encoder = transformers.XLMRobertaModel.from_pretrained(hf)
    model = JiantModel(encoder, heads).eval()
    run = exp / "runs" / "run"
    run.mkdir(parents=True)
    torch.save(model.state_dict(), run / "best_model.p")
    (run / "best_model.metadata.json").write_text(json.dumps({"val_state": {"score": 0.5}, "val_metrics": {}}))
    args = {**export, "jiant_task_container_config_path": str(exp / "runconfigs" / "run.json"),
            "output_dir": str(run), "model_load_mode": "from_transformers", "do_train": True, "seed": 1}
    (run / "args.json").write_text(json.dumps(args))
    return run, model, hf


def _batch(tokenizer) -> dict:
    batch = encode(tokenizer, pairs=True)
    batch.pop("token_type_ids", None)
    return batch


def test_xnli_classification_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    run, model, _ = write_experiment(tmp_path, {"xnli": ClassificationHead(32, 3)},
                                     {"mnli": "xnli", "xnli_de": "xnli", "xnli_fr": "xnli"})
    assert "taskmodels_dict.xnli.encoder.embeddings.word_embeddings.weight" in torch.load(run / "best_model.p")
    assert detect_backend(str(run)) == "jiant"
    loaded = load_checkpoint(str(run), "sequence-classification")  # config + tokenizer from args.json
    assert loaded.backend == "jiant" and loaded.id2label() == dict(enumerate(JIANT_NLI))
    batch = _batch(loaded.tokenizer)
    with torch.no_grad():
        want = model.taskmodels_dict["xnli"](batch)
    torch.testing.assert_close(outputs(loaded.model, batch), want, atol=1e-5, rtol=0)
    enc = load_checkpoint(str(run / "best_model.p"), "encoder")
    torch.testing.assert_close(outputs(enc.model, batch), outputs(model.encoder, batch), atol=1e-5, rtol=0)


def test_multitask_run_tagging_and_qa_after_a_move(tmp_path: Path) -> None:
    torch.manual_seed(0)
    heads = {"panx": TokenClassificationHead(32, 7), "xquad": QAHead(32), "udpos": TokenClassificationHead(32, 17)}
    run, model, _ = write_experiment(tmp_path, heads, {"panx_en": "panx", "squad_v1": "xquad", "udpos_en": "udpos"})
    moved = tmp_path / "elsewhere"
    shutil.move(str(tmp_path / "exp"), str(moved))  # args.json still names the old absolute paths
    run = moved / "runs" / "run"
    with pytest.raises(CheckpointError, match=r"several token-classification task models \['panx', 'udpos'\]"):
        load_checkpoint(str(run), "token-classification")
    panx = load_checkpoint(str(run), "token-classification", task="panx")
    assert panx.id2label() == dict(enumerate(JIANT_PANX))
    batch = _batch(panx.tokenizer)
    with torch.no_grad():
        want = model.taskmodels_dict["panx"](batch)
        qa_want = model.taskmodels_dict["xquad"](batch)
    torch.testing.assert_close(outputs(panx.model, batch), want, atol=1e-5, rtol=0)
    qa = load_checkpoint(str(run), "question-answering")
    torch.testing.assert_close(outputs(qa.model, batch), qa_want.permute(1, 0, 2), atol=1e-5, rtol=0)
    with pytest.raises(CheckpointError, match="no task model with a sequence-classification head"):
        load_checkpoint(str(run), "sequence-classification")
    with pytest.raises(CheckpointError, match="has a question-answering head"):
        load_checkpoint(str(run), "token-classification", task="xquad")


def test_jiant_bad_input(tmp_path: Path) -> None:
    torch.manual_seed(0)
    run, _, hf = write_experiment(tmp_path, {"xnli": ClassificationHead(32, 3)}, {"mnli": "xnli"})
    shutil.rmtree(tmp_path / "exp" / "models")
    with pytest.raises(CheckpointError, match="no model config"):
        load_checkpoint(str(run), "sequence-classification")
    with pytest.raises(CheckpointError, match="no tokenizer found"):
        load_checkpoint(str(run), "sequence-classification", config=str(hf))
    assert load_checkpoint(str(run), "sequence-classification", config=str(hf), tokenizer=str(hf)).backend == "jiant"
    weights = run / "best_model.p"
    weights.write_bytes(weights.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as err:
        load_checkpoint(str(run), "sequence-classification", config=str(hf), tokenizer=str(hf))
    assert str(weights) in str(err.value)
