"""Progress: one bar per long phase with counts (and so an ETA), none for trivial work."""

from __future__ import annotations

import numpy as np
import pytest

from harness_ext import progress
from harness_ext.adapters.runtime.autobatch import BatchPlan
from harness_ext.adapters.runtime.pipeline import run_pipelined


def test_a_long_phase_shows_its_count_and_total(capsys):
    with progress.bar(50, "embed", unit="sent", leave=True) as shown:
        for _ in range(5):
            shown.update(10)
    err = capsys.readouterr().err
    assert "embed" in err and "50/50" in err and "sent/s" in err


def test_short_phases_and_the_switch_draw_nothing(capsys, monkeypatch):
    with progress.bar(1, "tiny", leave=True) as shown:  # below min_total
        shown.update(1)
    monkeypatch.setenv(progress.ENV, "0")
    with progress.bar(100, "switched off", leave=True) as shown:
        shown.update(100)
    assert capsys.readouterr().err == ""


def test_the_batch_pipeline_draws_one_bar_per_call(capsys):
    plan = BatchPlan(batch_size=4)
    out = run_pipelined(list(range(20)), [3] * 20, plan, lambda batch: [x * 2 for x in batch], desc="tag")
    assert out == [x * 2 for x in range(20)]
    err = capsys.readouterr().err
    assert err.count("tag:") >= 1 and "/20" in err
    assert "batches" not in err  # the adapter's own name, not a generic one


def test_exact_search_over_several_blocks_shows_progress(capsys):
    from harness_ext.retrieval.search import FlatIndex

    rng = np.random.default_rng(0)
    index = FlatIndex(rng.standard_normal((50, 8)).astype("float32"), backend="cpu")
    index.search(rng.standard_normal((30, 8)).astype("float32"), 3, block_size=10)
    err = capsys.readouterr().err
    assert "search 30x50" in err and "/30" in err


def test_library_bars_are_quiet_inside_and_restored_after():
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as tf_logging

    assert tf_logging.is_progress_bar_enabled()
    with progress.quiet_library_bars():
        assert not tf_logging.is_progress_bar_enabled()
        assert not hub_utils.are_progress_bars_disabled()  # downloads keep their bars
    assert tf_logging.is_progress_bar_enabled()


def test_loading_and_writing_a_tiny_checkpoint_prints_no_bars(tmp_path, capfd, minilm_path):
    from harness_ext.backends import load_checkpoint
    from harness_ext.demo import build_tiny_checkpoint

    folder = build_tiny_checkpoint(tmp_path / "tiny", "token-classification", ("A", "B"), minilm_path, seed=0)
    load_checkpoint(str(folder), "token-classification")
    err = capfd.readouterr().err
    assert "Writing model shards" not in err and "Loading weights" not in err, err


def test_a_phase_of_many_short_steps_is_one_bar(capsys):
    """36 short languages: one line for the phase, none for each language's batches."""
    plan = BatchPlan(batch_size=4)
    with progress.phase(3, "embed", unit="task") as shown:
        for _ in range(3):
            run_pipelined(list(range(20)), [3] * 20, plan, lambda batch: batch, desc="inner")
            shown.update(1)
    err = capsys.readouterr().err
    assert "embed" in err and "/3" in err
    assert "inner" not in err  # a 20-item step stays silent inside a phase


def test_a_step_of_unknown_length_inside_a_phase_draws_no_bare_counter(capsys):
    """Issue 22 (8): an inner bar without a total printed ``0item`` under the phase's line."""
    with progress.phase(2, "extract_span", unit="task") as shown:
        with progress.bar(None, "windows", unit="item", leave=True) as inner:
            inner.update(5)
        shown.update(2)
    err = capsys.readouterr().err
    assert "extract_span" in err and "item" not in err
    with progress.bar(None, "alone", unit="item", leave=True) as alone:  # outside a phase: a counter is all there is
        alone.update(5)
    assert "5item" in capsys.readouterr().err
