"""``xtreme-eval sweep --ray``: the same jobs on a small local Ray cluster (2 CPUs).

Checks that jobs run on Ray workers (another process), that the data folder travels to
them, that a broken checkpoint fails only its job, that the numbers equal a local run,
and that a rerun with everything finished submits nothing.
"""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray", reason="the Ray path needs the optional extra: pip install 'xtreme-harness[ray]'")

from test_sweep_local import write_sweep_inputs, write_xnli  # noqa: E402


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep_ray")
    write_xnli(root / "data")
    return root, write_sweep_inputs(root)


def test_sweep_on_a_local_ray_cluster(inputs, tmp_path, monkeypatch):
    from harness_ext import sweep_ray
    from harness_ext.sweep import run_sweep

    root, checkpoints = inputs
    monkeypatch.setenv("XTREME_DATA_DIR", str(root / "data"))
    assert sweep_ray.forwarded_env()["XTREME_DATA_DIR"] == str(root / "data")
    seen = []
    summary = run_sweep(checkpoints, tmp_path / "ray", tasks=["xnli"], ray="local", ray_num_cpus=2, on_done=seen.append)
    statuses = {o.id: o.status for o in summary.outcomes}
    assert statuses == {"base-s1/xnli": "done", "mnli-s1/xnli": "done", "broken/xnli": "failed"}
    assert len(seen) == 3 and not ray.is_initialized(), "the private cluster is shut down afterwards"
    assert "missing-ckpt" in (tmp_path / "ray" / "broken" / "xnli" / "error.log").read_text()

    # the same numbers as a run in this process
    local = run_sweep(checkpoints, tmp_path / "local", tasks=["xnli"], systems=["base-s1"])
    assert [o.status for o in local.outcomes] == ["done"]
    on_ray = json.loads((tmp_path / "ray" / "base-s1" / "xnli" / "results.json").read_text())["results"]
    here = json.loads((tmp_path / "local" / "base-s1" / "xnli" / "results.json").read_text())["results"]
    assert {k: v.get("acc,none") for k, v in on_ray.items()} == {k: v.get("acc,none") for k, v in here.items()}

    # finished jobs are not resubmitted; only the failed one goes back to Ray
    calls = []
    monkeypatch.setattr(sweep_ray, "run_on_ray", lambda jobs, *a, **k: calls.append([j.id for j in jobs]) or [])
    again = run_sweep(checkpoints, tmp_path / "ray", tasks=["xnli"], ray="local", ray_num_cpus=2)
    assert calls == [["broken/xnli"]]
    assert {o.id: o.status for o in again.outcomes if o.status == "skipped"} == {
        "base-s1/xnli": "skipped", "mnli-s1/xnli": "skipped"}


def test_ray_missing_gives_install_hint(monkeypatch):
    import builtins

    from harness_ext.sweep import SweepError
    from harness_ext.sweep_ray import _import_ray

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(SweepError, match=r"xtreme-harness\[ray\]"):
        _import_ray()
