"""One progress display per long phase, one style (tqdm), and quiet library bars.

Long phases (loading data, embedding, searching and mining, each adapter's batches,
sweep jobs) open one :func:`bar` with a total, so tqdm shows the count, the rate and
an ETA. Short phases stay silent: a bar is drawn only when its total reaches
``min_total``. ``XTREME_PROGRESS=0`` turns every bar of ours off. When stderr is not a
terminal (a log file, CI) a bar is redrawn at most every 30 s, so a long phase leaves a
few lines in the log instead of thousands of redraws.

Bars that libraries draw for trivial work of ours (transformers' "Loading weights"
for a checkpoint already on disk, "Writing model shards" when the demo saves a tiny
model) are switched off around that work with :func:`quiet_library_bars`, through
transformers' own switch; hub download bars are left on. lm-eval's own bars are
left alone (it offers no switch).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from typing import Any, Iterator

ENV = "XTREME_PROGRESS"
#: inside a :func:`phase`, an inner bar (one language's batches) is drawn only this long
INNER_MIN_TOTAL = 2000
_IN_PHASE: contextvars.ContextVar[bool] = contextvars.ContextVar("xtreme_in_phase", default=False)


def enabled() -> bool:
    """Whether our bars may be drawn at all (``XTREME_PROGRESS`` unset, or not ``0``)."""
    return os.environ.get(ENV, "").strip().lower() not in ("0", "false", "no", "off")


def bar(total: int | None, desc: str, *, unit: str = "it", min_total: int = 2, show: bool = True,
        leave: bool = False, **kwargs: Any) -> Any:
    """A tqdm bar for one phase: ``with bar(n, "embed", unit="sent") as b: ... b.update(k)``.

    Disabled (a no-op object with the same methods) when ``show`` is false, ``total`` is
    below ``min_total`` or ``XTREME_PROGRESS=0``.
    """
    from tqdm.auto import tqdm

    inner = _IN_PHASE.get()
    if inner:  # the phase's own bar counts the steps; only a long step gets a second line
        min_total = max(min_total, INNER_MIN_TOTAL)
    # a step of unknown length inside a phase would draw a bare counter ("0item") under it
    visible = show and enabled() and (not inner if total is None else total >= min_total)
    if not getattr(sys.stderr, "isatty", lambda: False)():
        kwargs.setdefault("mininterval", 30.0)
    return tqdm(total=total, desc=desc, unit=unit, leave=leave, disable=not visible, dynamic_ncols=True, **kwargs)


@contextlib.contextmanager
def phase(total: int, desc: str, *, unit: str = "it", min_total: int = 2) -> Iterator[Any]:
    """One bar for a phase made of steps (e.g. every language of an ``embed`` call).

    Inside it, bars of single steps (the batch pipeline's) are drawn only for a step of at
    least ``INNER_MIN_TOTAL`` items, so a run over 36 short languages shows one line with
    its ETA, and a single long language still shows its own progress below it.
    """
    with bar(total, desc, unit=unit, min_total=min_total) as shown:
        token = _IN_PHASE.set(True)
        try:
            yield shown
        finally:
            _IN_PHASE.reset(token)


@contextlib.contextmanager
def quiet_library_bars() -> Iterator[None]:
    """Switch transformers' progress bars off for the block, then restore them as they were.

    transformers' switch also turns off huggingface_hub's bars; those are put back at
    once, so a real download still shows its progress.
    """
    try:
        from huggingface_hub import utils as hub_utils
        from transformers.utils import logging as tf_logging
    except ImportError:  # pragma: no cover - both are dependencies
        yield
        return
    was_on = tf_logging.is_progress_bar_enabled()
    hub_was_off = hub_utils.are_progress_bars_disabled()
    tf_logging.disable_progress_bar()
    if not hub_was_off:
        hub_utils.enable_progress_bars()
    try:
        yield
    finally:
        if was_on:
            tf_logging.enable_progress_bar()
            if hub_was_off:
                hub_utils.disable_progress_bars()
