"""bench/gpu_check.py --smoke: the one-command GPU check runs end to end (tiny sizes, on the CPU here),
so the first run on a lent GPU does not fail on a typo. It measures nothing; the figures it prints
on the CPU are not GPU figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

pytestmark = pytest.mark.slow


def test_gpu_check_smoke_writes_every_part(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--smoke", "--rounds", "1", "--threads", "1",
         "--out", str(out), "--data", str(DATA)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] is True and not out.with_name(out.name + ".tmp").exists()
    parts = report["parts"]
    assert set(parts) == {"environment", "search", "bucc", "mewslix", "throughput"}
    assert not [name for name, part in parts.items() if "error" in part]
    for name, case in parts["search"]["cases"].items():
        for key, agreement in case.items():
            if key.startswith("vs_"):  # the same neighbours as faiss CPU, ties aside
                assert agreement["differences_are_ties"] and agreement["same_ids"] > 0.99, (name, agreement)
    assert parts["search"]["k_above_gpu_limit"]["k"] > 2048
    assert parts["search"]["k_above_gpu_limit"]["vs_torch_cpu"]["differences_are_ties"]
    assert parts["mewslix"]["vs_torch"]["differences_are_ties"]
    found, planted = parts["bucc"]["planted_pairs_found"].split("/")
    assert found == planted
    kinds = parts["throughput"]["kinds"]
    assert set(kinds) == {"classify", "tag", "extract_span", "embed"}
    assert all(k["ratio"] > 0 and k["floor_seconds"] > 0 for k in kinds.values())
    assert "NOT GPU figures" in report["measured_on"]
    assert "peak_rss_mb" in report["memory"]
