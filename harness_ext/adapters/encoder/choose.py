"""Answer ``choose`` requests (XCOPA) with a multiple-choice head (``AutoModelForMultipleChoice``).

As the official ``third_party/run_xcopa.py``: every candidate is paired with the same first
segment (the request's context, ``"{premise} What was the {question}?"``), the pairs are
tokenised with truncation to ``max_length``, and the head scores the candidates of one
example side by side (``(batch, n_choices, length)``); the highest logit wins (ties: the
first candidate). The answer is the candidate's label (``choice1`` / ``choice2``). Batches are
length-sorted and padded to their own longest pair (:func:`run_batched`, which also halves
a batch that runs out of memory).
"""

from __future__ import annotations

from typing import Any

from harness_ext.adapters.runtime.autobatch import plan_for
from harness_ext.adapters.runtime.batching import pad_columns, run_batched, to_device
from harness_ext.adapters.runtime.settings import AdapterSettings


def answer(loaded: Any, requests: list, settings: AdapterSettings) -> list[str]:
    """The label of the chosen candidate for every request (``args = (context, choices, labels)``)."""
    if not requests:
        return []
    tokenizer, model = loaded.tokenizer, loaded.model
    max_length = settings.max_length or min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    counts = {len(r.args[1]) for r in requests}
    if len(counts) != 1:
        raise ValueError(f"one choose batch must share its number of candidates, got {sorted(counts)}")
    firsts = [r.args[0] for r in requests for _ in r.args[1]]
    seconds = [choice for r in requests for choice in r.args[1]]
    encoding = tokenizer(firsts, seconds, truncation=True, max_length=max_length, padding=False,
                         return_attention_mask=False)
    keys = [k for k in ("input_ids", "token_type_ids") if k in encoding]
    n = counts.pop()
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pads = {"input_ids": pad_id, "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0) or 0}
    lengths = [n * max(len(ids) for ids in encoding["input_ids"][i * n:(i + 1) * n]) for i in range(len(requests))]

    def run(batch: list[int]) -> list[str]:
        rows = [i * n + j for i in batch for j in range(n)]
        arrays = pad_columns({k: encoding[k] for k in keys}, rows, pads)
        inputs = {k: v.reshape(len(batch), n, -1) for k, v in arrays.items()}
        import torch

        with torch.inference_mode():
            logits = model(**to_device(inputs, settings.device)).logits  # (batch, n)
        best = logits.float().argmax(dim=-1).tolist()  # argmax takes the first of equal logits
        return [requests[i].args[2][k] for i, k in zip(batch, best)]

    return run_batched(list(range(len(requests))), lengths, plan_for(loaded, settings), run, desc="choose")
