"""No checkpoint format executes code: for every backend a file carrying a pickled payload
(``os.system("touch MARKER")`` when unpickled without restriction) is loaded and validated;
the marker never appears and the error names the file and the refused class."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import textwrap
from pathlib import Path

import pytest
import torch

from harness_ext.backends import CheckpointError, load_checkpoint
from harness_ext.backends._torchfile import UnsafeCheckpointError, torch_load
from harness_ext.systems import validate_command
from tests.helpers.tiny_models import tiny_xlmr


class Payload:
    """Unpickles to ``os.system(f"touch {marker}")``: proof of code execution if it runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecPayload(Payload):
    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


SYSTEM = os.system.__module__ + ".system"  # posix.system (nt.system on Windows)


def _assert_refused(err: pytest.ExceptionInfo, file: Path, marker: Path, name: str = SYSTEM) -> None:
    assert not marker.exists(), "the payload ran"
    message = str(err.value)
    assert "\n" not in message, message
    assert str(file) in message and name in message, message
    assert "refused" in message


@pytest.fixture()
def marker(tmp_path: Path) -> Path:
    return tmp_path / "PWNED"


def _state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_payload_is_real(tmp_path: Path, marker: Path) -> None:
    """The payload does create the file when unpickled without restriction (control)."""
    pickle.loads(pickle.dumps(Payload(marker)))  # noqa: S301 - deliberate, in a temp dir
    assert marker.exists()
    marker.unlink()
    pickle.loads(pickle.dumps(ExecPayload(marker)))  # noqa: S301
    assert marker.exists()


def test_hf_bin(tmp_path: Path, marker: Path) -> None:
    folder = tiny_xlmr(tmp_path, head="sequence-classification", name="hf")
    state = _state(folder)
    (folder / "model.safetensors").unlink()
    torch.save({**state, "evil": Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(str(folder), "sequence-classification")
    _assert_refused(err, folder / "pytorch_model.bin", marker)


def test_lightning_ckpt(tmp_path: Path, marker: Path) -> None:
    folder = tiny_xlmr(tmp_path, head="sequence-classification", name="hf")
    ckpt = tmp_path / "run" / "epoch=0.ckpt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": {f"model.{k}": v for k, v in _state(folder).items()},
                "hyper_parameters": {"model_name_or_path": str(folder), "cfg": ExecPayload(marker)}}, ckpt)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(str(ckpt), "sequence-classification")
    _assert_refused(err, ckpt, marker, "builtins.exec")


def test_jiant(tmp_path: Path, marker: Path) -> None:
    run = tmp_path / "jiant"
    run.mkdir()
    torch.save({"encoder.embeddings.word_embeddings.weight": torch.zeros(2, 2), "x": Payload(marker)},
               run / "best_model.p")
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(str(run), "sequence-classification")
    _assert_refused(err, run / "best_model.p", marker)


def test_fairseq(tmp_path: Path, marker: Path) -> None:
    folder = tmp_path / "fairseq"
    folder.mkdir()
    (folder / "dict.txt").write_text("hello 1\n")
    torch.save({"model": {}, "args": Payload(marker)}, folder / "model.pt")
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(str(folder), "sequence-classification")
    _assert_refused(err, folder / "model.pt", marker)


@pytest.mark.parametrize("where", ["model_states", "optim_states"])
def test_deepspeed(tmp_path: Path, marker: Path, where: str) -> None:
    folder = tiny_xlmr(tmp_path, head="sequence-classification", name="ds")
    state = _state(folder)
    step = folder / "global_step1"
    step.mkdir()
    (folder / "latest").write_text("global_step1")
    model_states = {"module": state, "buffer_names": [], "param_shapes": [{k: v.shape for k, v in state.items()}],
                    "shared_params": {}}
    flat = torch.cat([v.reshape(-1).float() for v in state.values()])
    optim = {"optimizer_state_dict": {"zero_stage": 2, "partition_count": 1,
                                      "single_partition_of_fp32_groups": [flat]}}
    (model_states if where == "model_states" else optim["optimizer_state_dict"])["ds_config"] = Payload(marker)
    torch.save(model_states, step / "mp_rank_00_model_states.pt")
    torch.save(optim, step / "zero_pp_rank_0_mp_rank_00_optim_states.pt")
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(str(folder), "sequence-classification")
    bad = step / ("mp_rank_00_model_states.pt" if where == "model_states" else "zero_pp_rank_0_mp_rank_00_optim_states.pt")
    _assert_refused(err, bad, marker)


def test_deepspeed_hand_written_zero2_loads(tmp_path: Path) -> None:
    """Control for the test above: the same layout without the payload loads, fp32 rebuilt
    from the optimizer partitions (not the module states, here deliberately zeroed)."""
    folder = tiny_xlmr(tmp_path, head="sequence-classification", name="ds")
    state = _state(folder)
    step = folder / "global_step1"
    step.mkdir()
    torch.save({"module": {k: torch.zeros_like(v) for k, v in state.items()}, "buffer_names": [],
                "param_shapes": [{k: v.shape for k, v in state.items()}], "shared_params": {},
                "ds_config": argparse.Namespace(x=1)}, step / "mp_rank_00_model_states.pt")
    flat = torch.cat([v.reshape(-1).float() for v in state.values()])
    flat = torch.cat([flat, torch.zeros(-flat.numel() % 4)])  # DeepSpeed pads to 2 * world size
    half = (flat.numel() + 1) // 2
    for rank, piece in enumerate((flat[:half], flat[half:])):
        torch.save({"optimizer_state_dict": {"zero_stage": 2, "partition_count": 2,
                                             "single_partition_of_fp32_groups": [piece.clone()]}},
                   step / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")
    loaded = load_checkpoint(str(step), "sequence-classification")
    for name, value in loaded.model.state_dict().items():
        if name in state:
            torch.testing.assert_close(value, state[name].float())
    (step / "zero_pp_rank_1_mp_rank_00_optim_states.pt").unlink()
    with pytest.raises(CheckpointError, match="saved by 2 ranks"):
        load_checkpoint(str(step), "sequence-classification")


def test_dcp_metadata(tmp_path: Path, marker: Path) -> None:
    import torch.distributed.checkpoint as dcp
    import transformers

    hf = tiny_xlmr(tmp_path, head="sequence-classification", name="hf")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(hf)
    ckpt = tmp_path / "dcp"
    dcp.save({"model": model.state_dict()}, checkpoint_id=str(ckpt), no_dist=True)
    assert load_checkpoint(str(ckpt), "sequence-classification", tokenizer=str(hf), config=str(hf))  # control
    (ckpt / ".metadata").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(str(ckpt), "sequence-classification", tokenizer=str(hf), config=str(hf))
    _assert_refused(err, ckpt / ".metadata", marker)


def test_peft_adapter_bin(tmp_path: Path, marker: Path) -> None:
    pytest.importorskip("peft", reason="optional extra 'peft' not installed")
    base = tiny_xlmr(tmp_path, head="sequence-classification", name="base")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": str(base), "peft_type": "LORA", "task_type": "SEQ_CLS", "r": 2,
         "target_modules": ["query"]}))
    torch.save({"base_model.model.classifier.modules_to_save.default.out_proj.weight": torch.zeros(3, 32),
                "x": Payload(marker)}, adapter / "adapter_model.bin")
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(str(adapter), "sequence-classification")
    _assert_refused(err, adapter / "adapter_model.bin", marker)


def test_allowed_packages_get_inert_stand_ins(tmp_path: Path, marker: Path) -> None:
    """A callable from a package whose classes are allowed (here ``numpy.save``, which
    writes a file) becomes an inert stand-in: the file loads, the call never happens."""
    np = pytest.importorskip("numpy")
    target = tmp_path / "PWNED.npy"
    f = tmp_path / "x.pt"
    torch.save({"w": torch.ones(2), "cfg": _NumpySave(target)}, f)
    pickle.loads(pickle.dumps(_NumpySave(target)))  # noqa: S301 - control: unrestricted, it writes
    assert target.exists() and np.load(target).shape == (1,)
    target.unlink()
    data = torch_load(f)
    assert torch.equal(data["w"], torch.ones(2)) and not target.exists()


class _NumpySave:
    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        import numpy as np

        return (np.save, (self.target, [0.0]))


def test_validate_runs_nothing(tmp_path: Path, marker: Path, capsys: pytest.CaptureFixture) -> None:
    """``xtreme-eval checkpoints validate`` reads DeepSpeed and DCP checkpoints to learn their
    head: the payloads are refused there too, one line each."""
    ds = tmp_path / "ds" / "global_step1"
    ds.mkdir(parents=True)
    torch.save({"module": {}, "x": Payload(marker)}, ds / "mp_rank_00_model_states.pt")
    dcp_dir = tmp_path / "dcp"
    dcp_dir.mkdir()
    (dcp_dir / ".metadata").write_bytes(pickle.dumps(Payload(marker)))
    (dcp_dir / "__0_0.distcp").write_bytes(b"\0" * 8)
    path = tmp_path / "checkpoints.yaml"
    path.write_text(textwrap.dedent("""
        systems:
          s:
            family: xlm-r
            size: 1
            checkpoints:
              xnli: ./ds/global_step1
              pawsx: ./dcp
        """))
    assert validate_command(path) == 1
    out = capsys.readouterr().out
    assert not marker.exists()
    lines = [line for line in out.splitlines() if "refused" in line]
    assert len(lines) == 2 and all(SYSTEM in line for line in lines), out
    assert any(".metadata" in line for line in lines) and any("mp_rank_00_model_states.pt" in line for line in lines)


def test_deepspeed_hand_written_zero3_with_frozen_params_loads(tmp_path: Path) -> None:
    """ZeRO-3 over 2 ranks, each parameter split in ceil(numel / 2) pieces, with frozen
    parameters kept per rank in the model states: our reader puts every tensor back."""
    import math

    folder = tiny_xlmr(tmp_path, head="sequence-classification", name="ds")
    state = {k: v.float() for k, v in _state(folder).items()}
    names = list(state)
    frozen, trainable = names[:3], names[3:]
    step = folder / "global_step9"
    step.mkdir()

    def pieces(tensor: torch.Tensor) -> list[torch.Tensor]:
        flat = tensor.reshape(-1)
        part = math.ceil(flat.numel() / 2)
        flat = torch.cat([flat, torch.zeros(2 * part - flat.numel())])
        return [flat[:part].clone(), flat[part:].clone()]

    for rank in range(2):
        torch.save({"module": {}, "buffer_names": [], "shared_params": {},
                    "param_shapes": [{k: state[k].shape for k in trainable[:5]}, {k: state[k].shape for k in trainable[5:]}],
                    "frozen_param_shapes": {k: state[k].shape for k in frozen},
                    "frozen_param_fragments": {k: pieces(state[k])[rank] for k in frozen}},
                   step / f"zero_pp_rank_{rank}_mp_rank_00_model_states.pt")
        groups = [torch.cat([pieces(state[k])[rank] for k in trainable[:5]]),
                  torch.cat([pieces(state[k])[rank] for k in trainable[5:]])]
        torch.save({"optimizer_state_dict": {"zero_stage": 3, "partition_count": 2, "fp32_flat_groups": groups}},
                   step / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt")
    loaded = load_checkpoint(str(step), "sequence-classification")
    got = loaded.model.state_dict()
    for name, value in state.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0)
