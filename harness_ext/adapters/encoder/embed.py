"""Answer ``embed`` requests: one sentence vector per text, from any encoder.

Layer convention (``layer=``), chosen to match the official XTREME scripts:

* ``layer=k`` with ``k >= 0`` is the output of transformer block ``k`` counted
  from 0, i.e. transformers' ``hidden_states[k + 1]`` (``hidden_states[0]`` is the
  embedding layer, which the official ``evaluate_retrieval.py`` drops before
  indexing with ``--specific_layer``). So ``layer=7`` reproduces
  ``--specific_layer 7`` (XTREME's mBERT/XLM setting) and ``layer=13`` the
  XLM-R large Tatoeba setting.
* ``layer=-k`` counts from the top exactly like Python: ``-1`` is the last block's
  output (``last_hidden_state``; for T5/mT5 after the final layer norm), and
  ``-(n_blocks + 1)`` reaches the embedding layer.
* ``layer=None`` (default) = ``-1``.

Pooling (``pooling=``):

* ``mean``: mean over every non-pad token *including* [CLS]/[SEP] (``<s>``/``</s>``),
  as XTREME does by default (``pool_skip_special_token=False``);
* ``cls``: the first token; ``max``, ``mean_sqrt_len``, ``weightedmean``, ``lasttoken``
  as sentence-transformers defines them;
* ``st``: whatever the checkpoint folder declares as a sentence-transformers model
  (``modules.json``: its ``Pooling`` config, then any ``Dense`` and ``Normalize``
  modules, and ``sentence_bert_config.json``'s ``max_seq_length``/``do_lower_case``).

A request may carry a token cap (``(text, max_tokens)``, :func:`harness_ext.requests.embed_args`):
LAReQA and Mewsli-X cut their inputs where the official scripts do; each cap's requests are
embedded together, at ``min(cap, the model's own limit)``.

Every distinct text is embedded once; texts are tokenised once, sorted by length
and padded per batch. A batch holds at most ``batch_size`` sentences (auto: 256 on
CPU, 1024 on GPU) and at most ``max_batch_tokens`` padded tokens (default 4096 on
CPU, 65536 on GPU), because sentence lengths are long-tailed: a count-only batch
pads the 36 Tatoeba languages to 1.77x the real tokens (4096: 1.19x). Hidden
states are pooled in float32 whatever the model's dtype (fp16/bf16 on GPU); a CUDA
out-of-memory batch is split in two and retried. Vectors go through :mod:`harness_ext.retrieval.cache`,
so a re-run does not embed again; with ``cache_layers=all`` in ``--model_args``
every layer's pooled vector is stored from the same forward pass, so a later
run with any other ``layer=`` (a layer sweep) does not embed either.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harness_ext.adapters.runtime.autobatch import BatchPlan
from harness_ext.adapters.runtime.pipeline import Wave, first_wave, overlap_enabled, plan_waves, run_waves
from harness_ext.adapters.runtime.settings import AdapterSettings
from harness_ext.retrieval.cache import EmbeddingCache, checkpoint_identity
from harness_ext.retrieval.mining import unique_texts

log = logging.getLogger(__name__)

#: bump when pooling/tokenisation code changes in a way that changes vectors
EMBED_FORMAT = 1
POOLINGS = ("mean", "cls", "max", "mean_sqrt_len", "weightedmean", "lasttoken", "st")
#: texts embedded before their vectors are flushed to the cache (bounds memory with cache_layers=all)
FLUSH_EVERY = 16384
#: default padded tokens per batch (``max_batch_tokens=`` overrides): sentence lengths are long-tailed,
#: so count-only batches of 256 pad all 36 Tatoeba languages to 1.77x the real tokens, 4096 to 1.19x
#: (2048: 1.10x, but its smaller matrices ran 1.2x slower on 2 threads; 8192 was no faster)
DEFAULT_TOKEN_BUDGET = {"cpu": 4096, "cuda": 65536}
#: sentences per batch when ``batch_size`` is auto (None)
DEFAULT_BATCH_SIZE = {"cpu": 256, "cuda": 1024}


# --------------------------------------------------------------------------- layer / pooling
def num_blocks(model: Any) -> int:
    """Transformer blocks in the encoder (``len(hidden_states) - 1``)."""
    config = getattr(model, "config", None)
    for name in ("num_hidden_layers", "num_layers", "n_layers", "encoder_layers"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(f"cannot tell how many layers {type(model).__name__} has (no num_hidden_layers in its config)")


def position_limit(model: Any) -> int | None:
    """Longest input the model's position table allows (None: relative positions, e.g. T5).

    RoBERTa-family tables reserve ``pad_token_id + 1`` leading rows (514 rows -> 512 tokens).
    """
    config = getattr(model, "config", None)
    rows = getattr(config, "max_position_embeddings", None)
    if not isinstance(rows, int) or getattr(config, "position_embedding_type", "absolute") not in ("absolute", None):
        return None
    model_type = str(getattr(config, "model_type", ""))
    if "roberta" in model_type or model_type == "camembert":
        rows -= int(getattr(config, "pad_token_id", 1) or 1) + 1
    return rows


def hidden_state_index(layer: int | None, blocks: int) -> int:
    """Our ``layer`` (official convention, see the module docstring) -> index into ``hidden_states``."""
    if layer is None:
        layer = -1
    if 0 <= layer < blocks:
        return layer + 1
    if -(blocks + 1) <= layer < 0:
        return blocks + 1 + layer
    raise ValueError(
        f"layer={layer} is out of range for a model with {blocks} transformer blocks: use 0..{blocks - 1} "
        f"(block outputs, as XTREME's --specific_layer) or -1..-{blocks + 1} (from the top; -{blocks + 1} = embeddings)"
    )


def _masked_mean(hidden, mask):
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def _pool_max(hidden, mask):
    return hidden.masked_fill(mask == 0, -1e9).max(1).values


def _pool_mean_sqrt(hidden, mask):
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9).sqrt()


def _pool_weighted(hidden, mask):
    import torch

    weights = torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype)[None, :, None] * mask
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def _pool_last(hidden, mask):
    import torch

    positions = torch.arange(hidden.shape[1], device=hidden.device)[None, :]
    last = (positions * mask[..., 0].long()).argmax(1)  # last non-pad position, either padding side
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


POOL_FUNCTIONS: dict[str, Callable] = {
    "mean": _masked_mean,
    "cls": lambda hidden, mask: hidden[:, 0],
    "max": _pool_max,
    "mean_sqrt_len": _pool_mean_sqrt,
    "weightedmean": _pool_weighted,
    "lasttoken": _pool_last,
}
#: sentence-transformers Pooling config flags, in the order it concatenates them
ST_POOLING_FLAGS = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
)


# --------------------------------------------------------------------------- sentence-transformers folders
@dataclass
class PoolingPlan:
    """How token states become a sentence vector: pooling modes, then post-modules."""

    modes: tuple[str, ...]
    #: callables applied in order to the pooled float32 tensor (Dense, Normalize)
    post: list[Callable] = field(default_factory=list)
    max_length: int | None = None
    lowercase: bool = False
    description: str = ""

    def apply(self, hidden, mask):
        pooled = [POOL_FUNCTIONS[mode](hidden, mask) for mode in self.modes]
        out = pooled[0] if len(pooled) == 1 else __import__("torch").cat(pooled, dim=-1)
        for module in self.post:
            out = module(out)
        return out


def _activation(name: str) -> Callable:
    import torch

    short = name.rsplit(".", 1)[-1]
    table = {"Tanh": torch.tanh, "Identity": lambda t: t, "ReLU": torch.relu, "Sigmoid": torch.sigmoid,
             "GELU": torch.nn.functional.gelu}
    if short not in table:
        raise ValueError(f"sentence-transformers Dense activation {name!r} is not supported (known: {', '.join(table)})")
    return table[short]


def _dense_module(folder: Path, device) -> Callable:
    """A sentence-transformers ``Dense`` module (linear + activation), read from its folder."""
    import torch

    config = json.loads((folder / "config.json").read_text())
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"))
    elif (folder / "pytorch_model.bin").exists():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"{folder}: Dense module without model.safetensors / pytorch_model.bin")
    weight = state["linear.weight"].float().to(device)
    bias = state.get("linear.bias")
    bias = bias.float().to(device) if bias is not None and config.get("bias", True) else None
    activation = _activation(config.get("activation_function", "torch.nn.modules.activation.Tanh"))

    def dense(x):
        return activation(torch.nn.functional.linear(x, weight, bias))

    return dense


def _normalize(x):
    import torch

    return torch.nn.functional.normalize(x, p=2, dim=-1)


def st_plan(folder: Path, device: str) -> PoolingPlan:
    """Read what a sentence-transformers folder declares (``modules.json`` and friends)."""
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        raise ValueError(
            f"pooling=st needs a sentence-transformers folder with modules.json and 1_Pooling/config.json; "
            f"{folder} has none. Use pooling=mean or pooling=cls instead."
        )
    modules = sorted(json.loads(modules_file.read_text()), key=lambda m: m.get("idx", 0))
    modes: tuple[str, ...] = ()
    post: list[Callable] = []
    names: list[str] = []
    for module in modules:
        kind = module.get("type", "").rsplit(".", 1)[-1]
        path = folder / module.get("path", "")
        if kind == "Transformer":
            continue
        if kind == "Pooling":
            config = json.loads((path / "config.json").read_text())
            modes = tuple(mode for flag, mode in ST_POOLING_FLAGS if config.get(flag))
            if not modes:
                raise ValueError(f"{path / 'config.json'}: no pooling mode is switched on")
            names.append("pooling=" + "+".join(modes))
        elif kind == "Dense":
            post.append(_dense_module(path, device))
            names.append(f"dense({module.get('path')})")
        elif kind == "Normalize":
            post.append(_normalize)
            names.append("normalize")
        else:
            raise ValueError(f"{modules_file}: module type {module.get('type')!r} is not supported for pooling=st")
    if not modes:
        raise ValueError(f"{modules_file}: declares no Pooling module")
    bert_config = folder / "sentence_bert_config.json"
    settings = json.loads(bert_config.read_text()) if bert_config.is_file() else {}
    return PoolingPlan(
        modes=modes, post=post, max_length=settings.get("max_seq_length"),
        lowercase=bool(settings.get("do_lower_case", False)), description=" ".join(names),
    )


def pooling_plan(pooling: str, source: str | None, device: str) -> PoolingPlan:
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}")
    if pooling == "st":
        if not source or not Path(source).expanduser().is_dir():
            raise ValueError(f"pooling=st needs a local sentence-transformers folder; {source!r} is not one")
        return st_plan(Path(source).expanduser(), device)
    return PoolingPlan(modes=(pooling,), description=pooling)


# --------------------------------------------------------------------------- the embedder
class Embedder:
    """Sentence vectors from one loaded encoder with fixed settings (see module docstring)."""

    def __init__(self, loaded: Any, settings: AdapterSettings, cap: int | None = None) -> None:
        self.loaded = loaded
        self.settings = settings
        model = loaded.model
        if getattr(getattr(model, "config", None), "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
            model = model.get_encoder()  # T5/mT5 loaded whole: its encoder embeds
        self.model = model
        self.tokenizer = loaded.tokenizer
        self.blocks = num_blocks(model)
        self.hidden_index = hidden_state_index(settings.layer, self.blocks)
        self.device = settings.device
        self.plan = pooling_plan(settings.pooling, getattr(loaded, "source", None), self.device)
        limits = [512, getattr(self.tokenizer, "model_max_length", None), position_limit(model)]
        self.max_length = int(settings.max_length or self.plan.max_length or min(x for x in limits if x))
        if cap:  # the task's own input limit (LAReQA, Mewsli-X truncate as the official scripts do)
            self.max_length = min(self.max_length, int(cap))
        cache_layers = str(settings.extra.get("cache_layers", "requested")).lower()
        if cache_layers not in ("requested", "all"):
            raise ValueError(f"cache_layers={cache_layers!r}: use 'requested' or 'all'")
        self.all_layers = cache_layers == "all" and settings.use_cache
        kind = "cuda" if str(self.device).startswith("cuda") else "cpu"
        self.batch_size = int(settings.batch_size or DEFAULT_BATCH_SIZE[kind])
        budget = settings.extra.get("max_batch_tokens")
        self.token_budget = int(budget) if budget not in (None, "") else DEFAULT_TOKEN_BUDGET[kind]
        #: shrinks in place on out-of-memory; this embedder lives as long as the loaded model
        #: (:func:`embedder_for`), so later calls start at the size that fit
        self.batch_plan = BatchPlan(batch_size=self.batch_size, token_budget=self.token_budget)
        self.cache = EmbeddingCache(settings.cache_dir) if settings.use_cache else None
        self._identity: dict | None = None
        #: forward passes run (tests count them to prove cache hits)
        self.forward_calls = 0

    # ------------------------------------------------------------ cache keys
    def identity(self) -> dict:
        if self._identity is None:
            self._identity = checkpoint_identity(
                getattr(self.loaded, "source", ""), self.model,
                backend=getattr(self.loaded, "backend", None), head=getattr(self.loaded, "head", None),
            )
        return self._identity

    def namespace(self, hidden_index: int):
        assert self.cache is not None
        return self.cache.namespace(
            self.identity(), format=EMBED_FORMAT, hidden_state=hidden_index, hidden_states=self.blocks + 1,
            pooling=self.settings.pooling, plan=self.plan.description, max_length=self.max_length,
            lowercase=self.plan.lowercase, dtype=self.settings.dtype,
        )

    # ------------------------------------------------------------ public
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32; duplicates embedded once; cached vectors reused."""
        unique, inverse = unique_texts(list(texts))
        if not unique:
            return np.zeros((0, 0), dtype=np.float32)
        if self.cache is None:
            vectors = self._encode(unique, flush=None)
        else:
            namespace = self.namespace(self.hidden_index)
            vectors, missing = namespace.get(unique)
            if missing:
                log.info("embedding %d of %d distinct texts (%d cached)", len(missing), len(unique), len(unique) - len(missing))
                fresh = self._encode([unique[i] for i in missing], flush=self._flush)
                if vectors is None:
                    vectors = np.zeros((len(unique), fresh.shape[1]), dtype=np.float32)
                vectors[np.asarray(missing)] = fresh
        return vectors[inverse]

    # ------------------------------------------------------------ encoding
    def _flush(self, texts: list[str], per_layer: dict[int, np.ndarray]) -> None:
        for index, vectors in per_layer.items():
            self.namespace(index).put(texts, vectors)

    def _layers_to_pool(self) -> list[int]:
        return list(range(self.blocks + 1)) if self.all_layers else [self.hidden_index]

    def _encode(self, texts: list[str], flush: Callable | None) -> np.ndarray:
        """Run the model over ``texts``; return the requested layer, flush every layer to the cache.

        Texts are tokenised in waves (the next while this one runs) and batches go
        through :func:`harness_ext.adapters.runtime.pipeline.run_waves`: padding ahead of and
        the pooled vectors' copy back behind the forward passes; an out-of-memory batch
        halves :attr:`batch_plan`, which later calls keep."""
        # on an accelerator, waves of texts sorted by characters (pipeline.WavePlan): tight padding, early start
        waves_plan = plan_waves([len(t) for t in texts], first_wave(self.batch_plan), self.settings, self.device)
        texts = waves_plan.arrange(texts)
        bounds = waves_plan.bounds
        inputs = [t.lower() for t in texts] if self.plan.lowercase else texts
        layers = self._layers_to_pool()
        state: dict[str, Any] = {"result": None, "pending": [], "vectors": {index: [] for index in layers}}

        right = getattr(self.tokenizer, "padding_side", "right") == "right"

        def encode(lo: int, hi: int) -> Wave:  # encoding worker: this wave's texts, tokenised once
            # right padding builds the attention mask from the lengths (pad_columns): not asking the tokenizer
            # for it saves a third of the Python work on the workers, which share the GIL with the caller
            encoding = self.tokenizer(inputs[lo:hi], truncation=True, max_length=self.max_length, padding=False,
                                      return_attention_mask=not right)
            keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoding]
            features = [dict(zip(keys, values)) for values in zip(*(encoding[k] for k in keys))]
            return Wave(features, [len(ids) for ids in encoding["input_ids"]], lo)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        pads = {"input_ids": pad_id, "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0) or 0}

        def prepare(features: list[dict]) -> dict:  # worker thread: padding, pinned on CUDA
            from harness_ext.adapters.runtime.batching import host_tensors, pad_columns

            if right:  # vectorised; the same arrays as tokenizer.pad (tests/test_batching.py)
                columns = {k: [f[k] for f in features] for k in features[0]}
                return host_tensors(pad_columns(columns, range(len(features)), pads), self.device)
            return host_tensors(dict(self.tokenizer.pad(features, padding=True, return_tensors="pt")), self.device)

        def finish(batch: list[int], pooled: dict) -> dict[int, np.ndarray]:  # worker thread: the device sync
            return {index: vectors.cpu().numpy() for index, vectors in pooled.items()}

        def collect(k: int, local: list[int], pooled: dict[int, np.ndarray]) -> None:  # calling thread, batch order
            batch = [i + bounds[k][0] for i in local]
            if state["result"] is None:
                state["result"] = np.zeros((len(texts), pooled[self.hidden_index].shape[1]), dtype=np.float32)
            state["result"][np.asarray(batch)] = pooled[self.hidden_index]
            if flush is not None:
                state["pending"].extend(batch)
                for index in layers:
                    state["vectors"][index].append(pooled[index])
                if len(state["pending"]) >= FLUSH_EVERY:
                    flush([texts[i] for i in state["pending"]], {i: np.concatenate(v) for i, v in state["vectors"].items()})
                    state["pending"], state["vectors"] = [], {index: [] for index in layers}

        run_waves(
            bounds, encode, self.batch_plan, lambda padded: self._forward_device(padded, layers),
            prepare=prepare, finish=finish, collect=collect, overlap=overlap_enabled(self.settings),
            desc="embed", progress=len(texts) >= 4 * self.batch_size, total=len(texts),
        )
        if flush is not None and state["pending"]:
            flush([texts[i] for i in state["pending"]], {i: np.concatenate(v) for i, v in state["vectors"].items()})
        assert state["result"] is not None
        return waves_plan.restore(state["result"])

    def _forward_device(self, padded: dict, layers: list[int]) -> dict[int, Any]:
        """One padded batch (CPU tensors) -> pooled float32 vectors per hidden-state index, on the device."""
        from harness_ext.adapters.runtime.batching import move

        padded = move(padded, self.device)
        self.forward_calls += 1
        outputs = self.model(**padded, output_hidden_states=True, return_dict=True)
        hidden_states = outputs.hidden_states
        if hidden_states is None or len(hidden_states) != self.blocks + 1:
            raise RuntimeError(
                f"{type(self.model).__name__} returned {len(hidden_states or ())} hidden states, "
                f"expected {self.blocks + 1} (embeddings + {self.blocks} blocks)"
            )
        mask = padded["attention_mask"].unsqueeze(-1).float()
        return {index: self.plan.apply(hidden_states[index].float(), mask).float() for index in layers}


# --------------------------------------------------------------------------- adapter entry point
def embedder_for(loaded: Any, settings: AdapterSettings, cap: int | None = None) -> Embedder:
    """One :class:`Embedder` per (loaded checkpoint, settings), so the checkpoint is fingerprinted once.

    Kept in ``loaded.extra`` so it lives exactly as long as the loaded model (the
    lm-eval model drops checkpoints it no longer needs; a global memo would pin them).
    """
    key = "_embedder:" + repr((settings.layer, settings.pooling, settings.max_length, settings.cache_dir,
           settings.use_cache, settings.dtype, settings.device, settings.batch_size,
           str(settings.extra.get("cache_layers", "requested")), str(settings.extra.get("max_batch_tokens")), cap))
    memo = getattr(loaded, "extra", None)
    if not isinstance(memo, dict):
        return Embedder(loaded, settings, cap)
    if key not in memo:
        memo[key] = Embedder(loaded, settings, cap)
    return memo[key]


def answer(loaded: Any, requests: list, settings: AdapterSettings) -> list[np.ndarray]:
    """lm-eval ``embed`` requests (``args == (text,)`` or ``(text, max_tokens)``) -> one float32 vector each."""
    from harness_ext.requests import by_cap, embed_response

    vectors: list = [None] * len(requests)
    for cap, positions in by_cap(requests).items():
        found = embedder_for(loaded, settings, cap).embed([requests[i].args[0] for i in positions])
        for row, i in enumerate(positions):
            vectors[i] = embed_response(found[row])
    return vectors
