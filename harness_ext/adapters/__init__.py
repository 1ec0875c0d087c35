"""Adapters answer requests with a loaded checkpoint (batching, windows, decoding).

Three ways of answering, one sub-package each, and the runtime they share:

- ``encoder/``: fine-tuned encoders (XLM-R, mBERT, ...): a task head per request kind
  (``classify``, ``tag``, ``span``) and the bare encoder's hidden states (``embed``).
  Each module exposes ``answer(loaded, requests, settings) -> list``.
- ``text2text/``: mT5/T5 checkpoints: templates in, generated or scored text out.
- ``prompted/``: any other lm-eval ``LM`` (decoder LLMs, API models), through its own
  ``loglikelihood`` / ``generate_until``.
- ``formats/``: what ``text2text`` and ``prompted`` share: the template reader and the
  parser that turns generated text back into labels, tags and answers.
- ``runtime/``: batching, automatic batch sizes, the pipelined batch loop, data
  parallelism and the settings every adapter reads.

``xtreme_lm.XtremeLM`` is the lm-eval model (``--model xtreme``) that routes requests
to them.
"""
