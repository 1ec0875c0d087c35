"""checkpoints.yaml: schema, resolution of per-task checkpoints, and validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness_ext.systems import (
    CheckpointRef,
    SystemsError,
    default_path,
    load_systems,
    validate_command,
    validate_file,
)
from tests.helpers.tiny_models import PANX_LABELS, tiny_xlmr

REPO = Path(__file__).resolve().parents[1]


def _write(folder: Path, text: str) -> Path:
    path = folder / "checkpoints.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_file_is_valid() -> None:
    systems = load_systems(REPO / "checkpoints.yaml")
    assert {"xlmr-base", "xlmr-large", "mbert-base", "mt5-small", "mt5-xxl"} <= set(systems)
    large = systems["xlmr-large"]
    ref = large.checkpoint_for("tatoeba")
    assert ref == CheckpointRef(source="FacebookAI/xlm-roberta-large", head="encoder", backend=None, options={},
                                settings={"layer": 13, "pooling": "mean"}, task="tatoeba", system="xlmr-large")
    assert large.size == 559890432 and large.family == "xlm-r" and large.baseline.scores["tatoeba"] == 57.7
    assert systems["mt5-small"].checkpoint_for("bucc2018").source == "google/mt5-small"
    with pytest.raises(SystemsError, match="has no checkpoint for xnli"):
        large.checkpoint_for("xnli")


def test_per_task_checkpoints_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "runs" / "xnli").mkdir(parents=True)
    path = _write(tmp_path, """
        systems:
          mine:
            family: xlm-r
            size: 1000
            intermediate_task: mnli
            seed: 3
            encoder: xlm-roberta-base
            retrieval: {layer: 7, pooling: cls}
            checkpoints:
              xnli: runs/xnli
              panx: {source: ./runs/panx.ckpt, backend: lightning, tokenizer: ./tok,
                     labels: [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC], options: {strict: true}}
              xquad: {source: google/mt5-small, head: seq2seq, templates: ./t.yaml}
        """)
    mine = load_systems(path)["mine"]
    assert mine.intermediate_task == "mnli" and mine.seed == 3
    assert mine.tasks() == ["xnli", "panx", "xquad", "bucc2018", "tatoeba", "lareqa", "mewslix"]  # the encoder serves every retrieval task
    assert mine.checkpoint_for("xnli").source == str(tmp_path / "runs" / "xnli")
    assert mine.checkpoint_for("xnli").head == "sequence-classification"
    panx = mine.checkpoint_for("panx")
    assert panx.source == str(tmp_path / "runs" / "panx.ckpt") and panx.backend == "lightning"
    assert panx.head == "token-classification"
    assert panx.options == {"strict": True, "tokenizer": str(tmp_path / "tok"), "labels": tuple(PANX_LABELS.values())}
    xquad = mine.checkpoint_for("xquad")
    assert (xquad.head, xquad.source, xquad.templates) == ("seq2seq", "google/mt5-small", str(tmp_path / "t.yaml"))
    tatoeba = mine.checkpoint_for("tatoeba")
    assert (tatoeba.source, tatoeba.head, tatoeba.settings) == ("xlm-roberta-base", "encoder", {"layer": 7, "pooling": "cls"})
    hash(tuple(sorted(panx.options.items())))  # the adapter uses options as a cache key


@pytest.mark.parametrize("body,field,message", [
    ("family: x\nsize: big\nencoder: a", "size", "integer"),
    ("family: x\nsize: 1\ncheckpoints: {nli: a}", "checkpoints", "unknown task"),
    ("family: x\nsize: 1\ncheckpoints: {xnli: {source: a, head: token-classification}}", "checkpoints", "cannot answer xnli"),
    ("family: x\nsize: 1\nencoder: a\nretrieval: {pooling: median}", "retrieval.pooling", "unknown pooling"),
    ("family: x\nsize: 1\nencoder: a\ncolour: red", "colour", "Extra inputs"),
    ("family: x\nsize: 1", "(top level)", "no checkpoints"),
    ("size: 1\nencoder: a", "family", "Field required"),
])
def test_errors_name_file_system_and_field(tmp_path: Path, body: str, field: str, message: str) -> None:
    indented = textwrap.indent(body, "    ")
    path = tmp_path / "checkpoints.yaml"
    path.write_text(f"systems:\n  broken:\n{indented}\n  fine:\n    family: x\n    size: 1\n    encoder: a\n")
    with pytest.raises(SystemsError) as err:
        load_systems(path)
    text = str(err.value)
    assert str(path) in text and "system 'broken'" in text and field in text and message in text
    assert "'fine'" not in text


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(SystemsError, match="no such file"):
        load_systems(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("systems: [unclosed")
    with pytest.raises(SystemsError, match="not valid YAML"):
        load_systems(tmp_path / "bad.yaml")
    (tmp_path / "v.yaml").write_text("version: 2\nsystems: {}")
    with pytest.raises(SystemsError, match="version"):
        load_systems(tmp_path / "v.yaml")


def test_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XTREME_CHECKPOINTS", raising=False)
    assert default_path() == REPO / "checkpoints.yaml"  # packaged / source-checkout copy
    _write(tmp_path, "systems: {}")
    assert default_path() == tmp_path / "checkpoints.yaml"
    monkeypatch.setenv("XTREME_CHECKPOINTS", str(tmp_path / "elsewhere.yaml"))
    assert default_path() == tmp_path / "elsewhere.yaml"


def test_validate_good_and_bad_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tiny_xlmr(tmp_path, head="sequence-classification", name="xnli")
    tiny_xlmr(tmp_path, head="token-classification", name="panx")
    tiny_xlmr(tmp_path, head="encoder", name="enc")
    tiny_xlmr(tmp_path, head="sequence-classification", name="generic", id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    good = _write(tmp_path, """
        systems:
          ok:
            family: xlm-r
            size: 1
            encoder: ./enc
            checkpoints:
              xnli: ./xnli
              panx: ./panx
              pawsx: {source: ./generic, labels: ["0", "1"]}
        """)
    problems = validate_file(good, check_heads=True)
    # pawsx: labels= names 2 outputs but this head has 3; the rest is fine
    assert [p.field for p in problems] == ["checkpoints.pawsx"] and "3" in problems[0].message
    good.write_text(good.read_text().replace("pawsx: {source: ./generic, labels: [\"0\", \"1\"]}",
                                             "udpos: {source: ./panx, labels: [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC]}"))
    problems = validate_file(good)
    assert [p.field for p in problems] == ["checkpoints.udpos"] and "NOUN" in problems[0].message
    good.write_text(good.read_text().replace("    udpos: {source: ./panx, labels: [O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC]}\n", ""))
    assert validate_file(good) == []
    assert validate_command(good) == 0
    assert "OK (1 systems)" in capsys.readouterr().out

    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        systems:
          bad:
            family: xlm-r
            size: 1
            checkpoints:
              xnli: ./panx             # a tagging head for a classification task
              pawsx: ./xnli            # XNLI labels for PAWS-X
              udpos: ./missing         # no such folder
              panx: ./generic          # sequence head named LABEL_i
              tatoeba: ./xnli          # an encoder from a task checkpoint is fine
        """))
    problems = {p.field: p for p in validate_file(bad)}
    assert set(problems) == {"checkpoints.xnli", "checkpoints.pawsx", "checkpoints.udpos", "checkpoints.panx"}
    assert "token-classification" in problems["checkpoints.xnli"].message
    assert "entailment" in problems["checkpoints.pawsx"].message
    assert "does not exist" in problems["checkpoints.udpos"].message
    assert all(p.system == "bad" and p.file == str(bad) for p in problems.values())
    assert validate_command(bad) == 1
    out = capsys.readouterr().out
    assert f"{bad}: system 'bad': checkpoints.udpos: error:" in out


def test_validate_shipped_file_offline(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    problems = validate_file(REPO / "checkpoints.yaml")
    assert problems and all(p.severity == "warning" and "not checked" in p.message for p in problems)
    assert validate_command(REPO / "checkpoints.yaml", check_heads=False) == 0


def test_validate_reports_schema_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "systems:\n  s:\n    family: x\n    size: -1\n    encoder: a\n")
    problems = validate_file(path)
    assert len(problems) == 1 and problems[0].severity == "error" and "size" in str(problems[0])



def test_validate_loads_non_hf_checkpoints(tmp_path: Path) -> None:
    """A DCP checkpoint's head and labels are checked by loading it (its config names no head)."""
    import torch.distributed.checkpoint as dcp
    import transformers

    hf = tiny_xlmr(tmp_path, head="sequence-classification", name="hf",
                   id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    model = transformers.AutoModelForSequenceClassification.from_pretrained(hf)
    dcp.save({"model": model.state_dict()}, checkpoint_id=str(tmp_path / "dcp"), no_dist=True)
    path = _write(tmp_path, """
        systems:
          s:
            family: xlm-r
            size: 1
            checkpoints:
              xnli: {source: ./dcp, tokenizer: ./hf, options: {config: ./hf}}
              pawsx: {source: ./dcp, tokenizer: ./hf, options: {config: ./hf}}
        """)
    problems = {p.field: p for p in validate_file(path)}
    assert set(problems) == {"checkpoints.xnli", "checkpoints.pawsx"} and "LABEL_0" in problems["checkpoints.xnli"].message
    path.write_text(path.read_text().replace("xnli: {source: ./dcp,", "xnli: {labels: [entailment, neutral, contradiction], source: ./dcp,"))
    problems = validate_file(path)
    assert [p.field for p in problems] == ["checkpoints.pawsx"]  # 3 outputs cannot be PAW-X's 2 labels


def test_xtreme_r_retrieval_tasks_take_the_encoder_and_their_own_layer(tmp_path):
    """LAReQA / Mewsli-X fall back to the system's encoder and retrieval settings; a checkpoint
    given for one of them may name its own layer and pooling (a fine-tuned dual encoder's CLS)."""
    from harness_ext.systems import load_systems

    path = tmp_path / "checkpoints.yaml"
    path.write_text(
        "systems:\n"
        "  row:\n"
        "    family: x\n    size: 1\n    encoder: some/encoder\n    retrieval: {layer: 7, pooling: mean}\n"
        "    checkpoints:\n      mewslix: {source: some/dual-encoder, layer: -1, pooling: cls}\n"
    )
    system = load_systems(path)["row"]
    lareqa = system.checkpoint_for("lareqa")
    assert (lareqa.source, lareqa.head, lareqa.settings) == ("some/encoder", "encoder", {"layer": 7, "pooling": "mean"})
    mewslix = system.checkpoint_for("mewslix")
    assert (mewslix.source, mewslix.settings) == ("some/dual-encoder", {"layer": -1, "pooling": "cls"})
    path.write_text(path.read_text().replace("mewslix: {", "xnli: {"))
    with pytest.raises(Exception, match="retrieval tasks"):
        load_systems(path)
