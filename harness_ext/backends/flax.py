"""Flax/JAX checkpoints: Hugging Face Flax folders (``flax_model.msgpack`` + config.json)
and T5X checkpoints, e.g. mT5 fine-tuned with t5x, in both of T5X's formats:

* legacy: ``checkpoint_<step>/checkpoint`` msgpack, large arrays in TensorStore zarr
  folders beside it;
* Orbax (T5X's default since February 2024): ``checkpoint_<step>/state/`` written by
  orbax's ``PyTreeCheckpointHandler(use_ocdbt=True)`` (``_METADATA``, ``manifest.ocdbt``,
  ``ocdbt.process_*``), holding the train state ``{'target': params, 'state': {...}}``.
  Read with orbax itself (``orbax-checkpoint``, in the ``flax`` extra), only ``target``,
  as numpy arrays: JSON metadata and TensorStore chunks, nothing pickled.

transformers 5 dropped Flax (``from_flax`` is ignored), so the msgpack is read with
flax's own ``flax.serialization.msgpack_restore`` (the ``flax`` extra) and TensorStore
arrays with ``tensorstore`` (installed with flax). Renaming follows transformers'
former Flax<->PyTorch rules (``kernel`` = transposed ``weight``; ``embedding``/``scale``
= ``weight``) and its former T5X conversion script for T5X's own names.

T5X keeps its model config in gin files; without ``config=`` (or a config.json nearby)
an MT5Config is read off the weight shapes, with T5X's default relative-attention
max distance (128) and gated-GELU when ``wi_0``/``wi_1`` are present.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    config_from,
    find_config,
    fit_num_labels,
    load_tokenizer,
    missing_extra,
    model_from_state_dict,
)
from harness_ext.backends._guards import bytes_on_disk, check_claimed_bytes, inside, read_json
from harness_ext.backends.base import CheckpointError, register_backend

FLAX_WEIGHTS = "flax_model.msgpack"
FLAX_INDEX = "flax_model.msgpack.index.json"


# --------------------------------------------------------------------------- detection
def t5x_checkpoint(path: Path, step: int | None = None) -> Path | None:
    """The T5X ``checkpoint`` msgpack file for a checkpoint folder, its file, or a model
    folder of ``checkpoint_<step>`` folders (the latest, or ``step``)."""
    if path.is_file() and path.name == "checkpoint" and _is_msgpack(path):
        return path
    if not path.is_dir():
        return None
    if (path / "checkpoint").is_file() and _is_msgpack(path / "checkpoint"):
        return path / "checkpoint"
    steps = sorted((int(m.group(1)), p) for p in path.glob("checkpoint_*")
                   if (m := re.fullmatch(r"checkpoint_(\d+)", p.name)) and (p / "checkpoint").is_file())
    if step is not None:
        steps = [s for s in steps if s[0] == step]
    return steps[-1][1] / "checkpoint" if steps and _is_msgpack(steps[-1][1] / "checkpoint") else None


def _is_orbax_state(path: Path) -> bool:
    return path.is_dir() and (path / "_METADATA").is_file()


def orbax_state(path: Path, step: int | None = None) -> Path | None:
    """The Orbax ``state`` folder of a T5X checkpoint: given itself, its ``checkpoint_<step>``
    folder, or a model folder of ``checkpoint_<step>`` folders (the latest, or ``step``)."""
    if not path.is_dir():
        return None
    if _is_orbax_state(path) and path.name == "state":
        return path
    if _is_orbax_state(path / "state"):
        return path / "state"
    steps = sorted((int(m.group(1)), p / "state") for p in path.glob("checkpoint_*")
                   if (m := re.fullmatch(r"checkpoint_(\d+)", p.name)) and _is_orbax_state(p / "state"))
    if step is not None:
        steps = [s for s in steps if s[0] == step]
    return steps[-1][1] if steps else None


def _step_of(path: Path) -> int:
    for part in (path.parent.name, path.parent.parent.name):
        if m := re.fullmatch(r"checkpoint_(\d+)", part):
            return int(m.group(1))
    return -1


def t5x_source(path: Path, step: int | None = None) -> Path | None:
    """The T5X checkpoint to read: a legacy ``checkpoint`` msgpack file or an Orbax ``state``
    folder, whichever holds the latest step (or ``step``) when a model folder has both."""
    found = [p for p in (t5x_checkpoint(path, step), orbax_state(path, step)) if p is not None]
    return max(found, key=_step_of) if found else None


def _is_msgpack(path: Path) -> bool:
    """A msgpack map (T5X) rather than TensorFlow's text ``checkpoint`` index."""
    with path.open("rb") as fh:
        first = fh.read(1)
    return bool(first) and (0x80 <= first[0] <= 0x8F or first[0] in (0xDE, 0xDF))


def is_hf_flax(path: Path) -> bool:
    """A transformers Flax folder without PyTorch weights (those win when both exist)."""
    from harness_ext.backends.hf import is_hf_folder

    return path.is_dir() and (path / "config.json").is_file() and not is_hf_folder(path) and \
        ((path / FLAX_WEIGHTS).is_file() or (path / FLAX_INDEX).is_file())


def is_flax(path: Path) -> bool:
    return is_hf_flax(path) or t5x_source(path) is not None


@register_backend("flax", is_flax, priority=10,
                  expects="Flax: flax_model.msgpack + config.json, or T5X checkpoint_<step>/checkpoint "
                          "or checkpoint_<step>/state/ (Orbax)")
def load_flax(source: str, head: str, *, tokenizer: str | None = None, config: str | None = None,
              step: int | None = None) -> tuple[Any, Any]:
    path = Path(source)
    if is_hf_flax(path):
        params = _restore_hf_flax(path)
        state_dict = flax_to_torch_names(params)
        cfg = config_from(config or str(path / "config.json"))
        where, near = str(path / FLAX_WEIGHTS), [path]
    else:
        found = t5x_source(path, step)
        if found is None:
            raise CheckpointError(f"{path}: no T5X checkpoint (expected checkpoint_<step>/checkpoint "
                                  "or checkpoint_<step>/state/_METADATA)")
        if found.is_dir():  # Orbax: the state folder; configs and tokenizers are looked for above it
            file = found / "_METADATA"
            state_dict = t5x_to_torch(read_orbax(found), found)
        else:
            file = found
            state_dict = t5x_to_torch(read_t5x(file), file)
        cfg = t5_config_from_weights(state_dict) if config is None and not _config_near(file) else \
            find_config(file, config)[0]
        where, near = str(file), [file.parent, file.parent.parent, file.parent.parent.parent]
    fit_num_labels(cfg, head, state_dict)
    model = model_from_state_dict(cfg, head, state_dict, where)
    return model, load_tokenizer(near, where, tokenizer)


def _config_near(file: Path) -> bool:
    return any((d / "config.json").is_file() for d in (file.parent, file.parent.parent, file.parent.parent.parent))


# --------------------------------------------------------------------------- reading
def _serialization(where: str) -> Any:
    try:
        from flax import serialization
    except ImportError:
        raise missing_extra("flax", "flax", where) from None
    return serialization


def _msgpack(file: Path) -> Any:
    serialization = _serialization(str(file))
    try:
        return serialization.msgpack_restore(file.read_bytes())
    except Exception as exc:  # noqa: BLE001 - msgpack raises ExtraData/ValueError/... on damage
        raise CheckpointError(f"{file}: truncated or corrupted msgpack (expected a Flax/T5X checkpoint): "
                              f"{type(exc).__name__}: {exc}") from exc


def _restore_hf_flax(folder: Path) -> dict[str, Any]:
    if (folder / FLAX_WEIGHTS).is_file():
        return _msgpack(folder / FLAX_WEIGHTS)
    index = read_json(folder / FLAX_INDEX, "a Flax shard index")
    try:
        shards = sorted(set(map(str, index["weight_map"].values())))
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{folder / FLAX_INDEX}: not a valid shard index (expected a 'weight_map'): {exc}") from None
    params: dict[str, Any] = {}
    for shard in shards:
        if not inside(shard, folder):
            raise CheckpointError(f"{folder / FLAX_INDEX}: shard {shard[:80]!r} is outside the checkpoint folder")
        if not (folder / shard).is_file():
            raise CheckpointError(f"{folder / shard}: shard listed in {FLAX_INDEX} is missing")
        params.update(_flatten(_msgpack(folder / shard)))  # shards hold flat "a/b/c"-keyed trees
    return params


def _flatten(tree: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(tree, dict) and not _is_ts_spec(tree):
        out: dict[tuple[str, ...], Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, prefix + tuple(str(key).split("/"))))
        return out
    return {prefix: tree}


def flax_to_torch_names(params: dict[Any, Any]) -> dict[str, Any]:
    """transformers' Flax parameter tree -> PyTorch state dict (its former
    ``load_flax_weights_in_pytorch_model`` rules)."""
    import numpy as np
    import torch

    flat = params if params and isinstance(next(iter(params)), tuple) else _flatten(params)
    out = {}
    for key, value in flat.items():
        array = np.asarray(value)
        if key[-1] == "kernel":
            array = array.T if array.ndim == 2 else np.transpose(array, (3, 2, 0, 1))
            key = key[:-1] + ("weight",)
        elif key[-1] in ("scale", "embedding"):
            key = key[:-1] + ("weight",)
        out[".".join(key)] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return out


def _is_ts_spec(node: Any) -> bool:
    return isinstance(node, dict) and "driver" in node and "kvstore" in node


def read_t5x(file: Path) -> dict[tuple[str, ...], Any]:
    """The model parameters (``optimizer/target``) of a T5X checkpoint, TensorStore arrays read."""
    import numpy as np

    contents = _msgpack(file)
    target = contents.get("optimizer", contents).get("target") if isinstance(contents, dict) else None
    if not isinstance(target, dict):
        raise CheckpointError(f"{file}: no optimizer/target parameters (expected a T5X checkpoint)")
    flat = _flatten(target)
    out = {}
    for key, value in flat.items():
        out[key] = _read_ts(value, file.parent) if _is_ts_spec(value) else np.asarray(value)
    return out


def read_orbax(state: Path) -> dict[tuple[str, ...], Any]:
    """The model parameters (``target``) of a T5X Orbax checkpoint, as numpy arrays."""
    try:
        import jax
        import numpy as np
        import orbax.checkpoint as ocp
    except ImportError:
        raise missing_extra("flax", "orbax-checkpoint", str(state)) from None
    checkpointer = ocp.PyTreeCheckpointer()
    try:
        tree = checkpointer.metadata(state)
        tree = getattr(getattr(tree, "item_metadata", tree), "tree", tree)
    except Exception as exc:  # noqa: BLE001 - orbax raises FileNotFoundError/ValueError/... on damage
        raise CheckpointError(f"{state / '_METADATA'}: unreadable Orbax metadata: {type(exc).__name__}: {exc}") from exc
    if not isinstance(tree, dict) or not isinstance(tree.get("target"), dict):
        keys = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise CheckpointError(f"{state / '_METADATA'}: no 'target' parameters (found {keys}; expected a T5X train state)")
    claimed = sum(int(math.prod(getattr(m, "shape", ()) or ())) * np.dtype(getattr(m, "dtype", None) or "float32").itemsize
                  for m in jax.tree_util.tree_leaves(tree["target"]))
    check_claimed_bytes(claimed, bytes_on_disk(state), str(state / "_METADATA"), "the Orbax parameters")
    as_numpy = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree["target"])
    try:
        try:
            restored = checkpointer.restore(state, args=ocp.args.PyTreeRestore(
                item={"target": tree["target"]}, restore_args={"target": as_numpy}, partial_restore=True))
        except TypeError:  # orbax without partial_restore: read everything, keep the parameters
            everything = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
            restored = checkpointer.restore(state, args=ocp.args.PyTreeRestore(restore_args=everything))
    except Exception as exc:  # noqa: BLE001 - tensorstore/ocdbt errors on missing or damaged chunks
        raise CheckpointError(f"{state}: truncated or corrupted Orbax checkpoint: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return {key: np.asarray(value) for key, value in _flatten(restored["target"]).items()}


#: TensorStore array drivers T5X writes; the key-value store is always the local folder
_TS_DRIVERS = ("zarr", "zarr3", "n5")
#: key-value store drivers a T5X spec may name; each is read as a path inside the checkpoint folder
_TS_STORES = ("file", "gcs", "gfile")


def ts_spec(spec: dict[str, Any], ckpt_dir: Path, where: Path) -> dict[str, Any]:
    """A TensorStore spec we build ourselves from a checkpoint's: the array driver from
    :data:`_TS_DRIVERS` over the local ``file`` store at a relative path that resolves
    inside the checkpoint folder. Nothing else of the checkpoint's spec is used (no
    network drivers, absolute paths, contexts, metadata overrides or create/delete flags)."""
    spec = _lists(spec)
    store = spec.get("kvstore")
    if isinstance(store, str):
        raise CheckpointError(f"{where}: TensorStore kvstore {store[:80]!r} is a URL; expected a path relative "
                              "to the checkpoint folder (checkpoints never fetch from the network)")
    store = store if isinstance(store, dict) else {}
    driver, kind = spec.get("driver"), store.get("driver")
    if driver not in _TS_DRIVERS or kind not in _TS_STORES:
        raise CheckpointError(f"{where}: TensorStore spec with driver {str(driver)[:40]!r} over kvstore "
                              f"{str(kind)[:40]!r}; expected {'/'.join(_TS_DRIVERS)} over a local file store "
                              "(checkpoints never fetch from the network)")
    name = store.get("path") or spec.get("path") or ""
    if not isinstance(name, str) or not name or "\0" in name or "://" in name:
        raise CheckpointError(f"{where}: TensorStore path {str(name)[:80]!r}; expected a path relative to the checkpoint folder")
    if kind == "file" and Path(name).is_absolute() or not inside(name.lstrip("/") if kind != "file" else name, ckpt_dir):
        raise CheckpointError(f"{where}: TensorStore path {name[:80]!r} is outside the checkpoint folder "
                              f"{ckpt_dir}; expected a path relative to it")
    path = (ckpt_dir / (name.lstrip("/") if kind != "file" else name)).resolve()
    return {"driver": driver, "kvstore": {"driver": "file", "path": str(path)}, "open": True}


def _read_ts(spec: dict[str, Any], ckpt_dir: Path) -> Any:
    try:
        import tensorstore as ts
    except ImportError:
        raise missing_extra("flax", "tensorstore", str(ckpt_dir)) from None
    raw = spec.get("kvstore", {}).get("path", "") if isinstance(spec.get("kvstore"), dict) else ""
    where = ckpt_dir / Path(str(raw or spec.get("path", "array"))).name
    clean = ts_spec(spec, ckpt_dir, where)
    folder = Path(clean["kvstore"]["path"])
    if not folder.exists():
        raise CheckpointError(f"{where}: TensorStore array missing (expected a zarr folder beside the checkpoint)")
    try:
        store = ts.open(clean, read=True).result()
        claimed = int(math.prod(store.shape)) * int(store.dtype.numpy_dtype.itemsize)
    except Exception as exc:  # noqa: BLE001 - tensorstore raises ValueError on bad metadata
        raise CheckpointError(f"{where}: truncated or corrupted TensorStore array: {exc}") from exc
    check_claimed_bytes(claimed, bytes_on_disk(folder), str(where), f"array {list(store.shape)} {store.dtype}")
    try:
        return store.read().result()
    except Exception as exc:  # noqa: BLE001 - tensorstore raises ValueError on bad chunks
        raise CheckpointError(f"{where}: truncated or corrupted TensorStore array: {exc}") from exc


def _lists(node: Any) -> Any:
    """Undo flax's list -> {"0": .., "1": ..} encoding inside a spec written as plain data."""
    if isinstance(node, dict):
        if node and all(isinstance(k, str) and k.isdigit() for k in node) and \
                sorted(map(int, node)) == list(range(len(node))):
            return [_lists(node[str(i)]) for i in range(len(node))]
        return {k: _lists(v) for k, v in node.items()}
    return node


# --------------------------------------------------------------------------- T5X names
def t5x_to_torch(flat: dict[tuple[str, ...], Any], file: Path) -> dict[str, Any]:
    """T5X (t5x/examples/t5/network.py) names -> transformers' T5/mT5 state dict, as
    transformers' former convert_t5x_checkpoint_to_pytorch.py renamed them."""
    import numpy as np
    import torch

    p = {"/".join(k): np.asarray(v, dtype=np.float32) for k, v in flat.items()}
    out: dict[str, Any] = {}

    def put(name: str, array: Any) -> None:
        out[name] = torch.from_numpy(np.ascontiguousarray(array))

    def dense(t5x: str, hf: str) -> None:  # DenseGeneral kernels may keep (heads, head_dim) split
        kernel = p.pop(f"{t5x}/kernel")
        if kernel.ndim == 3:
            kernel = kernel.reshape(kernel.shape[0], -1) if not t5x.endswith("/out") else kernel.reshape(-1, kernel.shape[-1])
        put(f"{hf}.weight", kernel.T)

    def attention(t5x: str, hf: str) -> None:
        for a, b in (("query", "q"), ("key", "k"), ("value", "v"), ("out", "o")):
            dense(f"{t5x}/{a}", f"{hf}.{b}")

    def mlp(t5x: str, hf: str) -> None:
        for name in ("wi", "wi_0", "wi_1", "wo"):
            if f"{t5x}/{name}/kernel" in p:
                dense(f"{t5x}/{name}", f"{hf}.DenseReluDense.{name}")

    try:
        put("shared.weight", p.pop("token_embedder/embedding"))
        for stack, n_sub in (("encoder", 2), ("decoder", 3)):
            if f"{stack}/{stack}_norm/scale" not in p:
                if stack == "encoder":
                    raise KeyError("encoder/encoder_norm/scale")
                continue
            layers = sorted({int(m.group(1)) for k in p if (m := re.match(rf"{stack}/layers_(\d+)/", k))})
            rel = p.pop(f"{stack}/relpos_bias/rel_embedding", None)
            for i in layers:
                t, h = f"{stack}/layers_{i}", f"{stack}.block.{i}.layer"
                own_rel = p.pop(f"{t}/relpos_bias/rel_embedding", None)  # per-layer (umT5-style) biases
                if own_rel is not None or i == 0:
                    put(f"{h}.0.SelfAttention.relative_attention_bias.weight", (own_rel if own_rel is not None else rel).T)
                if stack == "encoder":
                    attention(f"{t}/attention", f"{h}.0.SelfAttention")
                    put(f"{h}.0.layer_norm.weight", p.pop(f"{t}/pre_attention_layer_norm/scale"))
                else:
                    attention(f"{t}/self_attention", f"{h}.0.SelfAttention")
                    put(f"{h}.0.layer_norm.weight", p.pop(f"{t}/pre_self_attention_layer_norm/scale"))
                    attention(f"{t}/encoder_decoder_attention", f"{h}.1.EncDecAttention")
                    put(f"{h}.1.layer_norm.weight", p.pop(f"{t}/pre_cross_attention_layer_norm/scale"))
                mlp(f"{t}/mlp", f"{h}.{n_sub - 1}")
                put(f"{h}.{n_sub - 1}.layer_norm.weight", p.pop(f"{t}/pre_mlp_layer_norm/scale"))
            put(f"{stack}.final_layer_norm.weight", p.pop(f"{stack}/{stack}_norm/scale"))
        if "decoder/logits_dense/kernel" in p:
            put("lm_head.weight", p.pop("decoder/logits_dense/kernel").T)
    except KeyError as exc:
        raise CheckpointError(f"{file}: missing T5X parameter {exc.args[0]!r} (expected an (m)T5 encoder-decoder)") from None
    if p:
        raise CheckpointError(f"{file}: T5X parameters not understood: {sorted(p)[:6]}")
    return out


def t5_config_from_weights(sd: dict[str, Any]) -> Any:
    """An MT5Config read off the weights' shapes (T5X keeps its config in gin files)."""
    from transformers import MT5Config

    vocab, d_model = sd["shared.weight"].shape
    rel = sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    heads = rel.shape[1]
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in sd
    d_ff = sd["encoder.block.0.layer.1.DenseReluDense." + ("wi_0" if gated else "wi") + ".weight"].shape[0]
    count = lambda stack: len({k.split(".")[2] for k in sd if k.startswith(f"{stack}.block.")})  # noqa: E731
    return MT5Config(
        vocab_size=vocab, d_model=d_model, d_kv=sd["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0] // heads,
        d_ff=d_ff, num_layers=count("encoder"), num_decoder_layers=count("decoder") or None, num_heads=heads,
        relative_attention_num_buckets=rel.shape[0], feed_forward_proj="gated-gelu" if gated else "relu",
        tie_word_embeddings="lm_head.weight" not in sd, dropout_rate=0.0, layer_norm_epsilon=1e-6,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
    )
