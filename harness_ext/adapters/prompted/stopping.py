"""Stop each generated sequence at its own stop string (lm-eval's ``HFLM`` stops a batch only
when *one* stop string has appeared in *every* sequence).

lm-eval 0.4.13 builds one ``MultiTokenEOSCriteria`` per stop string, and each returns
"done" only when its string is in all sequences of the batch. The end-of-text token is
always one of the strings, so a batch where some answers end with a newline and
others with end-of-text never stops early: every sequence runs to ``max_gen_toks``
(measured on SmolLM2 and XQuAD: 64 tokens generated where 20 were needed, 0.63x of bare
``model.generate``; ``bench/bench_llm_prompted.py``). Here a sequence is done as soon
as any of the strings appeared in it, and transformers pads it from then on; lm-eval
cuts every output at its first stop string anyway, so outputs are unchanged.
"""

from __future__ import annotations

from typing import Any, Callable


def per_sequence(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap lm-eval's ``stop_sequences_criteria`` so that its criteria stop sequences one by one."""
    import torch
    import transformers

    class AnyStopString(transformers.StoppingCriteria):
        """Done per sequence once any of lm-eval's stop strings is in it."""

        def __init__(self, criteria: list) -> None:
            self.criteria = criteria

        def __call__(self, input_ids, scores, **kwargs):
            for criterion in self.criteria:
                criterion(input_ids, scores)  # updates its per-sequence done_tracker
            done = [any(c.done_tracker[i] for c in self.criteria) for i in range(input_ids.shape[0])]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def stop_sequences_criteria(tokenizer, stop_sequences, initial_decoder_input_length, batch_size):
        criteria = list(original(tokenizer, stop_sequences, initial_decoder_input_length, batch_size))
        if not criteria or not all(hasattr(c, "done_tracker") for c in criteria):
            return transformers.StoppingCriteriaList(criteria)  # not the criteria we know: leave them alone
        return transformers.StoppingCriteriaList([AnyStopString(criteria)])

    stop_sequences_criteria.__wrapped__ = original  # type: ignore[attr-defined]
    return stop_sequences_criteria
