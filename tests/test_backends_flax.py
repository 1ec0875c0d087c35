"""Flax backend: an mT5 saved as a Hugging Face Flax folder (flax_model.msgpack) and as a
T5X checkpoint (msgpack + TensorStore zarr arrays) loads with the original logits.

The files are written with flax's and tensorstore's own writers in the layouts transformers'
Flax models and t5x (t5x/checkpoints.py, t5x/examples/t5/network.py) use.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers

from harness_ext.backends import CheckpointError, detect_backend, load_checkpoint
from tests.helpers.tiny_models import encode, outputs, tiny_mt5

serialization = pytest.importorskip("flax.serialization", reason="optional extra 'flax' not installed")
ts = pytest.importorskip("tensorstore", reason="optional extra 'flax' (tensorstore) not installed")


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def write_hf_flax(model: torch.nn.Module, folder: Path) -> None:
    """transformers' Flax layout: Linear -> kernel (transposed), Embedding -> embedding, T5 norms keep weight."""
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    flat = {}
    for key, value in model.state_dict().items():
        if key.endswith("embed_tokens.weight"):
            continue  # Flax T5 shares one embedding
        module, _, leaf = key.rpartition(".")
        array = value.numpy()
        if kinds[module] == "Linear":
            flat[f"{module}.kernel"] = array.T
        elif kinds[module] == "Embedding":
            flat[f"{module}.embedding"] = array
        else:
            flat[key] = array
    folder.mkdir(parents=True)
    (folder / "flax_model.msgpack").write_bytes(serialization.to_bytes(_unflatten(flat)))
    model.config.save_pretrained(folder)


def t5x_params(model: transformers.MT5ForConditionalGeneration) -> dict[str, np.ndarray]:
    """The model's weights by T5X names, attention kernels split per head as DenseGeneral keeps them."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    heads, d_kv = model.config.num_heads, model.config.d_kv
    out = {"token_embedder/embedding": sd["shared.weight"], "decoder/logits_dense/kernel": sd["lm_head.weight"].T}

    def attn(t5x: str, hf: str) -> None:
        for a, b in (("query", "q"), ("key", "k"), ("value", "v")):
            out[f"{t5x}/{a}/kernel"] = sd[f"{hf}.{b}.weight"].T.reshape(-1, heads, d_kv)
        out[f"{t5x}/out/kernel"] = sd[f"{hf}.o.weight"].T.reshape(heads, d_kv, -1)

    for stack in ("encoder", "decoder"):
        out[f"{stack}/relpos_bias/rel_embedding"] = sd[f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T
        out[f"{stack}/{stack}_norm/scale"] = sd[f"{stack}.final_layer_norm.weight"]
        for i in range(model.config.num_layers):
            t, h = f"{stack}/layers_{i}", f"{stack}.block.{i}.layer"
            last = 1 if stack == "encoder" else 2
            if stack == "encoder":
                attn(f"{t}/attention", f"{h}.0.SelfAttention")
                out[f"{t}/pre_attention_layer_norm/scale"] = sd[f"{h}.0.layer_norm.weight"]
            else:
                attn(f"{t}/self_attention", f"{h}.0.SelfAttention")
                out[f"{t}/pre_self_attention_layer_norm/scale"] = sd[f"{h}.0.layer_norm.weight"]
                attn(f"{t}/encoder_decoder_attention", f"{h}.1.EncDecAttention")
                out[f"{t}/pre_cross_attention_layer_norm/scale"] = sd[f"{h}.1.layer_norm.weight"]
            for w in ("wi_0", "wi_1", "wo"):
                out[f"{t}/mlp/{w}/kernel"] = sd[f"{h}.{last}.DenseReluDense.{w}.weight"].T
            out[f"{t}/pre_mlp_layer_norm/scale"] = sd[f"{h}.{last}.layer_norm.weight"]
    return out


def _register_ts_spec() -> None:
    """t5x.checkpoints.register_ts_spec_for_serialization: a ts.Spec is stored as its JSON."""
    serialization.register_serialization_state(
        ts.Spec, ty_to_state_dict=lambda t: t.to_json(),
        ty_from_state_dict=lambda t, s: ts.Spec(s) if isinstance(s, dict) else s, override=True)


def write_t5x(model: transformers.MT5ForConditionalGeneration, model_dir: Path, step: int = 1000) -> Path:
    """t5x's legacy checkpoint: msgpack {'version', 'optimizer': {'target', 'state'}}; partitioned
    (here: the larger) arrays written to TensorStore zarr folders named like 'target.encoder....kernel'."""
    _register_ts_spec()
    ckpt = model_dir / f"checkpoint_{step}"
    ckpt.mkdir(parents=True)
    target: dict[str, object] = {}
    for name, array in t5x_params(model).items():
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array.size >= 1024:
            ts_name = "target." + name.replace("/", ".")
            spec = {"driver": "zarr", "dtype": "float32", "kvstore": {"driver": "file", "path": ts_name},
                    "metadata": {"compressor": {"id": "gzip"}, "shape": list(array.shape), "chunks": list(array.shape)}}
            write_spec = json.loads(json.dumps(spec))
            write_spec["kvstore"]["path"] = str(ckpt / ts_name)
            ts.open(write_spec, create=True).result().write(array).result()
            target[name] = ts.Spec(spec)  # serialized through to_json(), as t5x registers it
        else:
            target[name] = array
    tree = {"version": 3, "optimizer": {"target": _unflatten({k.replace("/", "."): v for k, v in target.items()}),
                                        "state": {"step": np.int32(step), "param_states": {}}}}
    (ckpt / "checkpoint").write_bytes(serialization.to_bytes(tree))
    return ckpt


def _compare(loaded_s2s, loaded_enc, original) -> None:
    batch = encode(loaded_s2s.tokenizer)
    torch.testing.assert_close(outputs(loaded_s2s.model, batch), outputs(original, batch), atol=1e-5, rtol=0)
    with torch.no_grad():
        want = original.encoder(**batch).last_hidden_state
    torch.testing.assert_close(outputs(loaded_enc.model, batch), want, atol=1e-5, rtol=0)


def test_hf_flax_msgpack_mt5(tmp_path: Path) -> None:
    hf = tiny_mt5(tmp_path)
    original = transformers.MT5ForConditionalGeneration.from_pretrained(hf).eval()
    folder = tmp_path / "flax"
    write_hf_flax(original, folder)
    for f in hf.glob("*token*"):
        shutil.copy(f, folder)
    shutil.copy(hf / "spiece.model", folder)
    assert detect_backend(str(folder)) == "flax"
    _compare(load_checkpoint(str(folder), "seq2seq"), load_checkpoint(str(folder), "encoder"), original)


def test_t5x_checkpoint_mt5(tmp_path: Path) -> None:
    hf = tiny_mt5(tmp_path)
    original = transformers.MT5ForConditionalGeneration.from_pretrained(hf).eval()
    model_dir = tmp_path / "t5x"
    write_t5x(original, model_dir, step=500)
    ckpt = write_t5x(original, model_dir, step=1000)
    assert any(p.is_dir() for p in ckpt.iterdir())  # TensorStore arrays beside the msgpack
    for source in (model_dir, ckpt):  # the model folder (latest step) or one checkpoint folder
        assert detect_backend(str(source)) == "flax"
    s2s = load_checkpoint(str(model_dir), "seq2seq", tokenizer=str(hf))  # config read off the shapes
    assert s2s.model.config.num_heads == original.config.num_heads
    _compare(s2s, load_checkpoint(str(ckpt), "encoder", tokenizer=str(hf)), original)


def write_t5x_orbax(model: transformers.MT5ForConditionalGeneration, model_dir: Path, step: int = 1000) -> Path:
    """T5X's current format, written by orbax itself as t5x.checkpoints.OrbaxCheckpointManagerInterface
    does: a CheckpointManager with step prefix 'checkpoint' and a 'state' item saved by
    PyTreeCheckpointHandler(use_ocdbt=True), holding the train state {'target', 'state'}."""
    ocp = pytest.importorskip("orbax.checkpoint", reason="optional extra 'flax' (orbax-checkpoint) not installed")
    target = _unflatten({k.replace("/", "."): np.ascontiguousarray(v, dtype=np.float32)
                         for k, v in t5x_params(model).items()})
    # Adafactor-like optimizer slots: the loader must read the parameters only
    slots = {"v_row": np.ones(3, np.float32), "v_col": np.ones(5, np.float32)}
    state = {"target": target, "state": {"step": np.int32(step), "param_states": {"token_embedder": slots}}}
    manager = ocp.CheckpointManager(
        model_dir, item_handlers={"state": ocp.PyTreeCheckpointHandler(use_ocdbt=True)},
        options=ocp.CheckpointManagerOptions(step_prefix="checkpoint"))
    manager.save(step, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state)))
    manager.wait_until_finished()
    manager.close()
    return model_dir / f"checkpoint_{step}"


def test_t5x_orbax_checkpoint_round_trip(tmp_path: Path) -> None:
    hf = tiny_mt5(tmp_path)
    original = transformers.MT5ForConditionalGeneration.from_pretrained(hf).eval()
    model_dir = tmp_path / "t5x"
    write_t5x(original, model_dir, step=500)  # an older legacy step beside the newer Orbax ones
    write_t5x_orbax(original, model_dir, step=800)
    ckpt = write_t5x_orbax(original, model_dir, step=1000)
    state = ckpt / "state"
    assert (state / "_METADATA").is_file() and not (ckpt / "checkpoint").exists()
    assert any(p.name.startswith("ocdbt.process") for p in state.iterdir())  # OCDBT, as t5x writes it
    for source in (model_dir, ckpt, state):
        assert detect_backend(str(source)) == "flax"
    from harness_ext.backends.flax import t5x_source

    assert t5x_source(model_dir) == state  # the latest step wins across both formats
    assert t5x_source(model_dir, step=500).name == "checkpoint"
    s2s = load_checkpoint(str(model_dir), "seq2seq", tokenizer=str(hf))
    _compare(s2s, load_checkpoint(str(state), "encoder", tokenizer=str(hf)), original)


def test_t5x_orbax_damage_is_one_clear_error(tmp_path: Path) -> None:
    hf = tiny_mt5(tmp_path)
    original = transformers.MT5ForConditionalGeneration.from_pretrained(hf).eval()
    state = write_t5x_orbax(original, tmp_path / "t5x") / "state"
    shutil.rmtree(next(p for p in state.iterdir() if p.name.startswith("ocdbt.process")))
    with pytest.raises(CheckpointError, match=r"state.*(corrupted Orbax|Orbax metadata)"):
        load_checkpoint(str(state), "encoder", tokenizer=str(hf))


def test_flax_bad_input(tmp_path: Path) -> None:
    hf = tiny_mt5(tmp_path)
    original = transformers.MT5ForConditionalGeneration.from_pretrained(hf).eval()
    ckpt = write_t5x(original, tmp_path / "t5x")
    with pytest.raises(CheckpointError, match="no tokenizer found"):
        load_checkpoint(str(ckpt), "seq2seq")
    with pytest.raises(CheckpointError, match="randomly initialised|no .*sequence-classification"):
        load_checkpoint(str(ckpt), "sequence-classification", tokenizer=str(hf))
    array = next(p for p in ckpt.iterdir() if p.is_dir())
    shutil.rmtree(array)
    with pytest.raises(CheckpointError, match="TensorStore array missing") as err:
        load_checkpoint(str(ckpt), "seq2seq", tokenizer=str(hf))
    assert array.name in str(err.value)
    msgpack = ckpt / "checkpoint"
    msgpack.write_bytes(msgpack.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupted msgpack"):
        load_checkpoint(str(ckpt), "seq2seq", tokenizer=str(hf))
