"""Faults around a run's outputs: sweep folder names never collide, and every file a run
writes gets the mode a plain ``open(path, "w")`` gives (umask respected, like results.json)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness_ext.reports.submission import atomic_write_text


def test_sweep_folder_collision_is_an_error_at_start(tmp_path: Path) -> None:
    from harness_ext.sweep import SweepError, plan

    path = tmp_path / "checkpoints.yaml"
    path.write_text("version: 1\nsystems:\n"
                    "  team/xlmr: {family: x, size: 1, checkpoints: {xnli: ./a}}\n"
                    "  team_xlmr: {family: x, size: 1, checkpoints: {xnli: ./b}}\n")
    with pytest.raises(SweepError) as err:
        plan(path, ["xnli"])
    message = str(err.value)
    assert "'team/xlmr' and 'team_xlmr'" in message and "team_xlmr" in message and "\n" not in message
    path.write_text(path.read_text().replace("team_xlmr:", "Team/XLMR:"))  # case-insensitive disks
    with pytest.raises(SweepError, match="share the output folder"):
        plan(path, ["xnli"], systems=["team/xlmr"])
    path.write_text(path.read_text().replace("Team/XLMR:", "team-xlmr:"))
    jobs, _ = plan(path, ["xnli"])
    assert len({j.folder(tmp_path) for j in jobs}) == 2


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_writes_respect_umask(tmp_path: Path, umask: int) -> None:
    import harness_ext.reports.submission as submission

    old = os.umask(umask)
    submission._UMASK.clear()
    try:
        atomic_write_text(tmp_path / "job.json", "{}\n")
        with open(tmp_path / "plain.json", "w") as fh:  # how lm-eval writes results.json
            fh.write("{}\n")
    finally:
        os.umask(old)
        submission._UMASK.clear()
    mode = (tmp_path / "job.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.json").stat().st_mode & 0o777 == 0o666 & ~umask
