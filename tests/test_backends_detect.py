"""Backend auto-detection from what is on disk: each layout goes to its backend, and the
overlaps real tools produce (Trainer folders with DeepSpeed shards, Flax beside PyTorch
weights, PEFT folders with a config.json) resolve to the right one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint


def _touch(folder: Path, *names: str, content: bytes = b"x") -> Path:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


@pytest.mark.parametrize("files,backend", [
    (("config.json", "model.safetensors"), "hf"),
    (("config.json", "pytorch_model.bin.index.json"), "hf"),
    (("config.json", "model.safetensors", "flax_model.msgpack"), "hf"),  # PyTorch weights win
    (("config.json", "flax_model.msgpack"), "flax"),
    (("adapter_config.json", "adapter_model.safetensors", "config.json"), "peft"),
    (("config.json", "model.safetensors", "latest", "global_step10/mp_rank_00_model_states.pt"), "deepspeed"),
    (("global_step10/zero_pp_rank_0_mp_rank_00_model_states.pt",), "deepspeed"),
    ((".metadata", "__0_0.distcp"), "dcp"),
    (("best_model.p", "args.json"), "jiant"),
    (("model__000001000.p",), "jiant"),
    (("model.pt", "dict.txt", "sentencepiece.bpe.model"), "fairseq"),
    (("checkpoint_best.pt", "dict.txt"), "fairseq"),
    (("epoch=3-step=100.ckpt",), "lightning"),
])
def test_folder_layouts(tmp_path: Path, files: tuple[str, ...], backend: str) -> None:
    assert detect_backend(str(_touch(tmp_path / "ckpt", *files))) == backend


def test_files_and_t5x(tmp_path: Path) -> None:
    assert detect_backend(str(_touch(tmp_path, "run.ckpt") / "run.ckpt")) == "lightning"
    assert detect_backend(str(_touch(tmp_path, "best_model.p") / "best_model.p")) == "jiant"
    fair = _touch(tmp_path / "fs", "model.pt", "dict.txt")
    assert detect_backend(str(fair / "model.pt")) == "fairseq"
    t5x = tmp_path / "t5x"
    _touch(t5x, "checkpoint_100/checkpoint", "checkpoint_200/checkpoint", content=b"\x82\xa7version\x03")
    assert detect_backend(str(t5x)) == "flax" and detect_backend(str(t5x / "checkpoint_200")) == "flax"
    tf = _touch(tmp_path / "tf", "checkpoint", content=b'model_checkpoint_path: "model.ckpt-1"\n')
    with pytest.raises(CheckpointError, match="unknown checkpoint format"):
        detect_backend(str(tf))  # TensorFlow's text index is not a T5X msgpack


def test_unknown_format_lists_what_is_expected(tmp_path: Path) -> None:
    folder = _touch(tmp_path / "odd", "weights.h5", "vocab.json")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(str(folder), "encoder")
    text = str(err.value)
    assert str(folder) in text and "weights.h5" in text
    for backend in ("hf", "peft", "jiant", "fairseq", "flax", "lightning", "deepspeed", "dcp"):
        assert f"- {backend}:" in text


def test_explicit_backend_and_unknown_backend(tmp_path: Path) -> None:
    folder = _touch(tmp_path / "x", "config.json", "model.safetensors")
    with pytest.raises(CheckpointError, match="unknown backend 'tensorflow'"):
        load_checkpoint(str(folder), "encoder", backend="tensorflow")
    with pytest.raises(CheckpointError, match="corrupted safetensors"):
        load_checkpoint(str(folder), "encoder", backend="hf")
