"""Answer ``classify`` requests with a sequence-classification head.

Pairs are encoded as ``run_classify.py`` encodes them (``encode_plus(text_a, text_b,
max_length=128)``, transformers 2.x's longest-first truncation: see ``pairs.py``),
tokenised once, sorted by length and padded per batch; the predicted
class index is mapped to a label NAME through the head's ``id2label``, so a
checkpoint trained with another label order still scores correctly, and one
whose labels don't name the task's labels is refused instead of scoring noise.
"""

from __future__ import annotations

from typing import Any, Sequence

from harness_ext.adapters.encoder.pairs import encode_pairs, pair_template
from harness_ext.adapters.runtime.autobatch import plan_for
from harness_ext.adapters.runtime.batching import host_tensors, move, pad_columns
from harness_ext.adapters.runtime.pipeline import Wave, first_wave, overlap_enabled, plan_waves, run_waves
from harness_ext.adapters.runtime.settings import AdapterSettings

#: run_classify.py's --max_seq_length (scripts/train_xnli.sh, train_pawsx.sh)
OFFICIAL_MAX_LENGTH = 128

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

    Tokenised once, in waves (:func:`harness_ext.adapters.runtime.pipeline.run_waves`: the
    next wave is tokenised while this one runs), then length-sorted batches padded
    to their own longest pair, sized by :func:`harness_ext.adapters.runtime.autobatch.plan_for`
    (``batch_size=None`` = automatic); padding happens ahead of and decoding behind
    the forward passes. See docs/benchmarks.md for what this costs next to the bare
    forward passes.
    """
    if not requests:
        return []
    labels_per_request = {tuple(r.args[2]) for r in requests}
    if len(labels_per_request) != 1:
        raise ValueError("one classify batch must share one label set")
    index_to_label = head_to_task_labels(loaded, next(iter(labels_per_request)))

    tokenizer, model = loaded.tokenizer, loaded.model
    # run_classify.py's --max_seq_length 128 (XNLI, PAWS-X), within what the tokenizer accepts
    max_length = settings.max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, OFFICIAL_MAX_LENGTH)
    plan = plan_for(loaded, settings)
    device = settings.device
    # on an accelerator, waves of requests sorted by characters (pipeline.WavePlan): tight padding, early start
    waves_plan = plan_waves([len(r.args[0]) + len(r.args[1] or "") for r in requests], first_wave(plan), settings, device)
    ordered = waves_plan.arrange(requests)
    firsts = [r.args[0] for r in ordered]
    seconds = [r.args[1] or None for r in ordered]
    pair = any(s is not None for s in seconds)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pads = {"input_ids": pad_id, "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0) or 0}

    template = pair_template(tokenizer) if pair and all(s is not None for s in seconds) else None

    def encode(lo: int, hi: int) -> Wave:  # encoding worker: batched Rust calls per wave
        if template is not None:  # encode_plus(a, b, max_length) with transformers 2.x's truncation
            rows = encode_pairs(tokenizer, template, firsts[lo:hi], seconds[lo:hi], max_length)  # type: ignore[arg-type]
            return Wave(rows, [len(row["input_ids"]) for row in rows])
        encoding = tokenizer(
            firsts[lo:hi], seconds[lo:hi] if pair else None, truncation=True, max_length=max_length,
            padding=False, return_attention_mask=False,
        )
        keys = [k for k in ("input_ids", "token_type_ids") if k in encoding]
        rows = [dict(zip(keys, values)) for values in zip(*(encoding[k] for k in keys))]
        return Wave(rows, [len(ids) for ids in encoding["input_ids"]])

    def prepare(rows: list[dict]) -> dict:  # worker thread: pad, tensors, pinned on CUDA
        columns = {k: [row[k] for row in rows] for k in rows[0]}
        return host_tensors(pad_columns(columns, range(len(rows)), pads), device)

    def forward(inputs: dict) -> Any:  # calling thread: the model and the argmax stay on the device
        return model(**move(inputs, device)).logits.argmax(dim=-1)

    def finish(rows: list, predicted: Any) -> list[str]:  # worker thread: the one device sync
        return [index_to_label[i] for i in predicted.tolist()]

    waves = run_waves(
        waves_plan.bounds, encode, plan, forward, prepare=prepare, finish=finish,
        overlap=overlap_enabled(settings), desc="classify", total=len(requests),
    )
    return waves_plan.restore([label for _, labels in waves for label in labels])
