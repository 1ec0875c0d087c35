"""Glue shared by the backends: choosing the transformers class for a head, refusing
random task heads, finding a tokenizer, and turning a raw state dict into a model.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness_ext.backends._guards import (
    check_claimed_bytes,
    check_config,
    check_config_dict,
    check_local_config,
    check_tokenizer_files,
    read_json,
)
from harness_ext.backends.base import TASK_HEADS, CheckpointError
from xtreme_tasks.data.hub import found_offline, offline_unless_hub_answers  # noqa: F401  (one probe for all)

#: class-name suffix of a transformers architecture -> the head it carries
ARCH_SUFFIX_HEAD = {
    "ForSequenceClassification": "sequence-classification",
    "ForTokenClassification": "token-classification",
    "ForQuestionAnswering": "question-answering",
    "ForMultipleChoice": "multiple-choice",
    "ForConditionalGeneration": "seq2seq",
}
_T5_ENCODERS = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}
#: base-model keys that an encoder may lack without harm (pooler is unused by XTREME)
_OPTIONAL_ENCODER_KEYS = ("pooler.",)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "sentencepiece.bpe.model", "spiece.model", "vocab.txt")


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) asks for no network, or the hub did not answer."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    return found_offline()  # this process probed the hub and nothing answered


def model_class(config: Any, head: str) -> type:
    """The transformers class that carries ``head`` for this config."""
    import transformers

    if head == "encoder" and config.model_type in _T5_ENCODERS:
        return getattr(transformers, _T5_ENCODERS[config.model_type])
    auto = {
        "encoder": transformers.AutoModel,
        "sequence-classification": transformers.AutoModelForSequenceClassification,
        "token-classification": transformers.AutoModelForTokenClassification,
        "question-answering": transformers.AutoModelForQuestionAnswering,
        "multiple-choice": transformers.AutoModelForMultipleChoice,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
    }[head]
    mapping = auto._model_mapping  # config class -> model class
    try:
        return mapping[type(config)]
    except KeyError:
        raise CheckpointError(
            f"a {config.model_type!r} model has no {head} class in transformers; "
            f"expected a checkpoint whose architecture supports {head}"
        ) from None


def saved_head(config: Any) -> str | None:
    """The head named by ``config.architectures``, or None for a bare or unknown one."""
    for arch in getattr(config, "architectures", None) or []:
        for suffix, head in ARCH_SUFFIX_HEAD.items():
            if arch.endswith(suffix):
                return head
    return None


_HEAD_TASKS = {"sequence-classification": ("XNLI and PAWS-X", "ForSequenceClassification"),
               "token-classification": ("UD-POS and PAN-X", "ForTokenClassification"),
               "question-answering": ("XQuAD, MLQA and TyDiQA", "ForQuestionAnswering"),
               "multiple-choice": ("XCOPA", "ForMultipleChoice")}


def head_fix(head: str) -> str:
    """What to pass instead, for an error about a missing or wrong task head."""
    if head not in _HEAD_TASKS:
        return ""
    tasks, suffix = _HEAD_TASKS[head]
    return (f"; {tasks} need a checkpoint fine-tuned with a {head} head (e.g. XLMRoberta{suffix}): pass it as "
            "pretrained=, or name it for this task under the system's checkpoints: in checkpoints.yaml and use system=")


def check_saved_head(config: Any, head: str, where: str) -> None:
    """Refuse e.g. a token-classification checkpoint asked for sequence classification.

    Needed beside the missing-keys check: BERT's sequence and token heads are both
    ``classifier.weight`` and would load into each other without a complaint.
    """
    saved = saved_head(config)
    if head in TASK_HEADS and saved is not None and saved != head and saved != "seq2seq":
        archs = ", ".join(config.architectures)
        raise CheckpointError(f"{where}: checkpoint is {archs} ({saved} head); expected a {head} head{head_fix(head)}")


def check_loading_info(info: Mapping[str, Any], head: str, where: str) -> None:
    """Turn transformers' "newly initialized weights" into an error.

    Task heads must load every weight; an encoder may miss only the pooler.
    """
    missing = sorted(info.get("missing_keys") or ())
    mismatched = sorted(info.get("mismatched_keys") or ())
    if head == "encoder":
        missing = [k for k in missing if not any(p in k for p in _OPTIONAL_ENCODER_KEYS)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} weight(s) missing, would be randomly initialised: {_short(missing)}")
    if mismatched:
        shown = [f"{k[0]} {tuple(k[1])} vs {tuple(k[2])}" if isinstance(k, tuple) else str(k) for k in mismatched]
        problems.append(f"{len(mismatched)} weight(s) of the wrong shape: {_short(shown)}")
    if info.get("error_msgs"):
        problems.append("; ".join(map(str, info["error_msgs"]))[:500])
    if problems:
        raise CheckpointError(f"{where}: cannot load a complete {head} model: " + "; ".join(problems) + head_fix(head))


def _short(items: Iterable[str], n: int = 6) -> str:
    items = list(items)
    more = f" ... (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_tokenizer(candidates: Iterable[str | Path | None], where: str, option: str | None = None) -> Any:
    """A (fast) tokenizer from ``option`` if given, else the first candidate that has one.

    Candidates are folders beside the weights (jiant, fairseq, Lightning, DeepSpeed and DCP
    store no tokenizer with the weights) and model names the checkpoint recorded (hub ids,
    read from the local cache when HF_HUB_OFFLINE is set).
    """
    from transformers import AutoTokenizer

    if option is not None:
        try:
            if Path(str(option)).is_dir():
                check_tokenizer_files(Path(str(option)))
            return AutoTokenizer.from_pretrained(str(option), local_files_only=hub_offline() or Path(str(option)).exists(),
                                                 trust_remote_code=False)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - transformers raises many kinds here
            missing = sentencepiece_missing()
            hint = (f" (if its tokenizer is a sentencepiece model, as mT5's is, it needs '{missing}': "
                    "pip install 'xtreme-harness[sentencepiece]')") if missing else ""
            raise CheckpointError(f"{where}: cannot load tokenizer {option!r}: {exc}{hint}") from exc
    tried = []
    for cand in candidates:
        if not cand:
            continue
        path = Path(cand)
        tried.append(str(cand))
        if path.is_dir():
            if not any((path / f).exists() for f in TOKENIZER_FILES):
                continue
            require_sentencepiece(path)
            check_tokenizer_files(path)
            try:
                return AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
            except Exception as exc:  # noqa: BLE001
                raise CheckpointError(f"{path}: tokenizer files present but unreadable: {exc}") from exc
        elif not path.exists():
            try:  # a model name recorded in the checkpoint: hub id
                return AutoTokenizer.from_pretrained(str(cand), local_files_only=hub_offline(), trust_remote_code=False)
            except Exception:  # noqa: BLE001 - not available here; keep looking
                continue
    raise CheckpointError(
        f"{where}: no tokenizer found (looked for {', '.join(TOKENIZER_FILES)} in {', '.join(tried) or 'nothing'}); "
        "expected one beside the weights, or pass tokenizer=<folder or hub id>"
    )


def guess_prefix(keys: Iterable[str], expected: Iterable[str]) -> str:
    """The module prefix (e.g. ``model.``, ``module.``) most checkpoint keys carry
    in front of the model's own key names; "" when they already match."""
    expected = set(expected)
    keys = list(keys)
    if sum(k in expected for k in keys) * 2 >= len(expected):
        return ""
    votes: Counter[str] = Counter()
    for key in keys:
        parts = key.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[i:]) in expected:
                votes[".".join(parts[:i]) + "."] += 1
                break
    return votes.most_common(1)[0][0] if votes else ""


def model_from_state_dict(config: Any, head: str, state_dict: Mapping[str, Any], where: str) -> Any:
    """Build the ``head`` model for ``config`` and load ``state_dict`` into it, strictly.

    Keys may carry a wrapper prefix (``model.``, ``module.``); it is found and stripped.
    For an encoder, a task-model state dict is fine: its base-model keys are used.
    """
    check_saved_head(config, head, where)
    check_config(config, where)
    cls = model_class(config, head)
    check_model_size(cls, config, state_dict, where)
    model = cls(config)
    own = model.state_dict()
    prefix = guess_prefix(state_dict, own)
    sd = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if head == "encoder":  # a task model's keys are "<base>.<key>"; the encoder wants "<key>"
        base = getattr(model, "base_model_prefix", "") + "."
        stripped = {k[len(base):]: v for k, v in sd.items() if k.startswith(base)}
        if len(stripped.keys() & own.keys()) > len(sd.keys() & own.keys()):
            sd = stripped
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in sd.items()
                  if k in own and tuple(own[k].shape) != tuple(v.shape)]
    missing: list[str] = []
    unexpected: list[str] = []
    if not mismatched:
        result = model.load_state_dict(sd, strict=False)
        missing = [k for k in result.missing_keys if not _tied(model, k)]
        unexpected = [k for k in result.unexpected_keys if not k.endswith("position_ids")]
    check_loading_info({"missing_keys": missing, "mismatched_keys": mismatched}, head, where)
    if unexpected and head in TASK_HEADS:
        raise CheckpointError(
            f"{where}: weights not used by a {head} model: {_short(unexpected)}; expected a {head} checkpoint"
        )
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    return model


def check_model_size(cls: type, config: Any, state_dict: Mapping[str, Any], where: str) -> None:
    """Refuse, before allocating it, a model whose config claims far more values than the
    weights hold (a config.json edited to 10^6 hidden units would otherwise exhaust memory)."""
    import torch

    try:
        with torch.device("meta"):
            wanted = sum(t.numel() for t in cls(config).state_dict().values())
    except Exception:  # noqa: BLE001 - a config that cannot even build on meta: the real build reports it
        return
    held = sum(int(getattr(v, "numel", lambda: 0)()) for v in state_dict.values())
    if wanted > 2 * held + 2**22:
        raise CheckpointError(f"{where}: the config describes a model of {wanted} values but the weights hold {held}; "
                              "expected the config the checkpoint was trained with (pass config=)")
    check_claimed_bytes(4 * wanted, 4 * held + 2**24, where, "the model from its config", expansion=2)


def _tied(model: Any, key: str) -> bool:
    """A key filled by weight tying (e.g. T5 lm_head from shared), so not really missing."""
    tied = getattr(model, "all_tied_weights_keys", None) or getattr(model, "_tied_weights_keys", None) or {}
    if isinstance(tied, Mapping):
        return key in tied
    return any(key == t or key.endswith(t) for t in tied)


def find_config(weights: Path, option: str | None, hints: Iterable[str] = ()) -> tuple[Any, str]:
    """The transformers config for a bare state dict, and where it came from.

    ``option`` (folder, config.json or hub id) wins; then a config.json beside the
    weights or up to two folders above; then ``hints`` (e.g. a model name recorded in the
    checkpoint's hyper-parameters).
    """
    tried: list[str] = []
    candidates: list[str] = [option] if option else []
    if not option:
        start = weights if weights.is_dir() else weights.parent
        candidates += [str(d / "config.json") for d in (start, start.parent, start.parent.parent)
                       if (d / "config.json").exists()]
        candidates += [h for h in hints if h]
    for cand in candidates:
        tried.append(cand)
        try:
            return config_from(cand), cand
        except CheckpointError as exc:
            if cand == option or "refused" in str(exc) or "hostile" in str(exc) or "would be" in str(exc):
                raise
        except Exception as exc:  # noqa: BLE001
            if cand == option:
                raise CheckpointError(f"{weights}: cannot read config {option!r}: {exc}") from exc
    raise CheckpointError(
        f"{weights}: no model config found (tried {', '.join(tried) or 'config.json beside the weights'}); "
        "expected a transformers config.json beside the checkpoint, or pass config=<folder, config.json or hub id>"
    )


def config_from(source: str) -> Any:
    """A transformers config from a folder, a config.json file or a hub id."""
    from transformers import AutoConfig

    path = Path(source)
    if path.is_file():
        data = read_json(path, "a transformers config.json")
        check_config_dict(data, path)
        config = AutoConfig.for_model(data.pop("model_type"), **data)
    else:
        if path.is_dir():
            check_local_config(path)
        config = AutoConfig.from_pretrained(source, local_files_only=hub_offline() or path.exists(), trust_remote_code=False)
    check_config(config, str(path / "config.json") if path.is_dir() else source)
    return config


#: head-layer weights whose first dimension is the number of labels
_LABEL_WEIGHTS = ("classifier.weight", "classifier.out_proj.weight", "score.weight", "classification_head.out_proj.weight")


def fit_num_labels(config: Any, head: str, state_dict: Mapping[str, Any]) -> None:
    """Size the config's head to the checkpoint (num_labels from the output layer's rows),
    keeping label names when the count already agrees."""
    if head not in ("sequence-classification", "token-classification"):
        return
    for key, value in state_dict.items():
        if key.endswith(_LABEL_WEIGHTS) and getattr(value, "ndim", 0) == 2:
            rows = int(value.shape[0])
            if getattr(config, "num_labels", None) != rows:
                config.num_labels = rows  # resets id2label to LABEL_i
            return


def apply_label_names(config: Any, head: str, names: Iterable[str] | None, where: str) -> None:
    """Label names recorded by the training framework, for a classification/tagging head."""
    if not names or head not in ("sequence-classification", "token-classification"):
        return
    names = [str(n) for n in names]
    if len(names) != config.num_labels:
        raise CheckpointError(f"{where}: {len(names)} label names {names} for a head with {config.num_labels} outputs")
    config.id2label = dict(enumerate(names))
    config.label2id = {n: i for i, n in enumerate(names)}


#: a tokenizer shipped only as a sentencepiece model (mT5's spiece.model, XLM-R's
#: sentencepiece.bpe.model) with no tokenizer.json beside it
SENTENCEPIECE_FILES = ("spiece.model", "sentencepiece.bpe.model")


def sentencepiece_missing() -> str | None:
    """``"sentencepiece"`` or ``"protobuf"`` when that package is not installed, else None."""
    import importlib.util

    if importlib.util.find_spec("sentencepiece") is None:
        return "sentencepiece"
    try:
        protobuf = importlib.util.find_spec("google.protobuf")
    except ModuleNotFoundError:  # no "google" namespace at all
        protobuf = None
    return None if protobuf is not None else "protobuf"


def require_sentencepiece(folder: Path) -> None:
    """A sentencepiece-only tokenizer needs ``sentencepiece`` and ``protobuf`` (transformers
    converts it to a fast tokenizer with both); without them transformers 5 fails with an
    unrelated message (``tiktoken is required``), so name the extra first."""
    if (folder / "tokenizer.json").exists() or not any((folder / f).exists() for f in SENTENCEPIECE_FILES):
        return
    missing = sentencepiece_missing()
    if missing:
        raise missing_extra("sentencepiece", missing, f"{folder} (tokenizer: a sentencepiece model, no tokenizer.json)")


def missing_extra(extra: str, module: str, where: str) -> CheckpointError:
    """The error for an optional dependency that is not installed."""
    return CheckpointError(
        f"{where}: reading this checkpoint needs the '{module}' package; "
        f"install it with: pip install 'xtreme-harness[{extra}]'"
    )
