"""Adapters answer requests with a loaded checkpoint (batching, windows, decoding).

One module per request kind exposes ``answer(loaded, requests, settings) -> list``;
``xtreme_lm.XtremeLM`` is the lm-eval model that routes requests to them.
"""
