"""The SmolLM2 measurement script's candidates stay runnable (no model is loaded here).

``bench/measure_smollm2.py prompts`` prints the table docs/llm.md quotes; a candidate
whose prompt spec no longer loads, or a leaf that no longer exists, would only show
when someone reruns it. The built-in data holds real test data only: XNLI, PAWS-X and
PAN-X (not offline here) must come out as "no data", never as a score on made-up pairs.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "bench")]

import measure_smollm2 as measure  # noqa: E402

from harness_ext.adapters.prompted.prompts import load_prompts  # noqa: E402
from xtreme_tasks.table import TABLE  # noqa: E402


def test_every_candidate_spec_loads_and_names_real_leaves():
    for c in measure.CANDIDATES:
        prompts = load_prompts(c.spec)
        assert c.task in prompts and c.task in measure.METRICS, c.name
        for leaf in c.leaves:
            _, task, lang = leaf.split("-", 2)
            assert task == c.task and lang in TABLE[task].languages, leaf


def test_builtin_data_is_real_data_only(tmp_path):
    data = measure.builtin_data(tmp_path / "data")
    have = {leaf: measure.has_data(leaf, data, c.shots) for c in measure.CANDIDATES for leaf in c.leaves}
    assert all(have[leaf] for leaf in have if leaf.split("-")[1] in ("xquad", "udpos", "xcopa")), have
    assert not any(have[leaf] for leaf in have if leaf.split("-")[1] in ("xnli", "pawsx", "panx")), have
