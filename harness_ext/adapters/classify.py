"""Answer ``classify`` requests with a sequence-classification head.

Pairs are tokenised once, sorted by length and padded per batch; the predicted
class index is mapped to a label NAME through the head's ``id2label``, so a
checkpoint trained with another label order still scores correctly, and one
whose labels don't name the task's labels is refused instead of scoring noise.
"""

from __future__ import annotations

from typing import Any, Sequence

from harness_ext.adapters.autobatch import plan_for
from harness_ext.adapters.batching import host_tensors, move, pad_columns
from harness_ext.adapters.pipeline import overlap_enabled, run_pipelined
from harness_ext.adapters.settings import AdapterSettings

#: spellings of the same label found in public checkpoints -> our canonical name
LABEL_ALIASES: dict[str, str] = {
    "contradictory": "contradiction",
    "paraphrase": "1",
    "not_paraphrase": "0",
    "not paraphrase": "0",
}


class LabelMismatchError(ValueError):
    """The checkpoint's head labels don't name the task's labels."""


def _config_path(loaded: Any) -> str:
    return f"{loaded.source}/config.json" if getattr(loaded, "source", None) else "the checkpoint's config.json"


def head_to_task_labels(loaded: Any, task_labels: Sequence[str]) -> list[str]:
    """For each head output index, the task label it predicts (by name, case-insensitive)."""
    id2label = {int(k): str(v) for k, v in loaded.model.config.id2label.items()}
    wanted = {label.lower(): label for label in task_labels}
    mapped: list[str] = []
    for index in range(len(id2label)):
        raw = id2label.get(index, f"LABEL_{index}")
        name = LABEL_ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in wanted:
            raise LabelMismatchError(
                f"{_config_path(loaded)}: head label {index} is {raw!r}, which is not one of the task's labels "
                f"({', '.join(task_labels)}). Fix: set \"id2label\" in config.json to the label names the head "
                f"was trained with, e.g. {dict(enumerate(task_labels))}"
            )
        mapped.append(wanted[name])
    missing = set(task_labels) - set(mapped)
    if missing:
        raise LabelMismatchError(
            f"{_config_path(loaded)}: the head never predicts {sorted(missing)}; its id2label is {id2label}. "
            f"Fix: use a checkpoint fine-tuned on this task's labels ({', '.join(task_labels)})"
        )
    return mapped


def answer(loaded: Any, requests: list, settings: AdapterSettings) -> list[str]:
    """The predicted task label for every request (``args = (text_a, text_b or "", labels)``).

    Tokenised once (one batched Rust call), then length-sorted batches padded to
    their own longest pair, sized by :func:`harness_ext.adapters.autobatch.plan_for`
    (``batch_size=None`` = automatic); see docs/benchmarks.md for what this costs
    next to the bare forward passes.
    """
    if not requests:
        return []
    labels_per_request = {tuple(r.args[2]) for r in requests}
    if len(labels_per_request) != 1:
        raise ValueError("one classify batch must share one label set")
    index_to_label = head_to_task_labels(loaded, next(iter(labels_per_request)))

    tokenizer, model = loaded.tokenizer, loaded.model
    max_length = settings.max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    firsts = [r.args[0] for r in requests]
    seconds = [r.args[1] or None for r in requests]
    pair = any(s is not None for s in seconds)
    encoding = tokenizer(
        firsts, seconds if pair else None, truncation=True, max_length=max_length,
        padding=False, return_attention_mask=False,
    )
    columns = {k: encoding[k] for k in ("input_ids", "token_type_ids") if k in encoding}
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pads = {"input_ids": pad_id, "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0) or 0}
    lengths = [len(ids) for ids in columns["input_ids"]]
    device = settings.device

    def prepare(rows: list[int]) -> dict:  # worker thread: pad, tensors, pinned on CUDA
        return host_tensors(pad_columns(columns, rows, pads), device)

    def forward(inputs: dict) -> Any:  # calling thread: the model and the argmax stay on the device
        return model(**move(inputs, device)).logits.argmax(dim=-1)

    def finish(rows: list[int], predicted: Any) -> list[str]:  # worker thread: the one device sync
        return [index_to_label[i] for i in predicted.tolist()]

    plan = plan_for(loaded, settings)
    return run_pipelined(list(range(len(requests))), lengths, plan, forward, prepare=prepare, finish=finish,
                         overlap=overlap_enabled(settings), desc="classify")  # type: ignore[return-value]
