"""bench/bench_overlap.py still runs end to end (tiny sizes, one round): every kind reports a device-busy figure.

Not a timing test: it asserts only that the simulation runs and reports, so the
benchmark behind docs/benchmarks.md's figures cannot rot unnoticed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_overlap_runs_every_kind_and_reports_device_busy(shared_data):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "bench_overlap.py"), "--speedup", "50", "--rounds", "1",
         "--n-classify", "24", "--n-tag", "24", "--n-qa", "4", "--n-embed", "24", "--before-rev", "HEAD",
         "--data", str(shared_data)],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = done.stdout.split("== all results", 1)[1]
    for kind in ("classify", "tag", "extract_span", "embed"):
        assert f"[{kind}]" in summary
    busy = re.findall(r"pipelined (\d\.\d\d); projected", summary)
    assert len(busy) == 4 and all(0.0 < float(b) <= 1.5 for b in busy)


def test_the_before_adapters_load_from_their_revision_whatever_the_layout():
    """The 'before' contender is read from git at bench_overlap.BEFORE_REV, when the adapters were
    still flat modules importing each other by their old names; both layouts must load."""
    sys.path[:0] = [str(REPO / "bench")]
    try:
        import bench_overlap
    finally:
        del sys.path[0]
    for name in ("classify", "tag", "span", "embed"):
        for rev in (bench_overlap.BEFORE_REV, "HEAD"):
            assert callable(bench_overlap.module_at(rev, name).answer), (rev, name)
