"""Start-up hook that makes ``lm_eval --tasks 'xtreme_*' --model xtreme`` work.

lm-eval 0.4.13 reads no plugin entry points and has no ``--include_path`` default,
so the wheel ships ``xtreme_harness.pth``, which calls :func:`install` at
interpreter start. ``install`` only puts a finder on ``sys.meta_path`` (a few
microseconds); nothing of lm-eval, torch or ours is imported until the process
itself imports lm-eval. Then, right after lm-eval's own modules load:

* ``lm_eval.api.registry``: the built-in model table (``lm_eval.models``) is
  registered first (registering anything before it would hide ``hf``,
  ``dummy``, ...), then ``xtreme`` is added as a lazy placeholder;
* ``lm_eval.tasks.manager``: every ``TaskManager`` also indexes our task folder;
* ``lm_eval._cli.utils``: ``--model_args layer=-1`` stays the integer -1 (the
  command line read a signed integer as a float, -1.0, and printed it so; lm-eval's
  own ``utils.handle_arg_string`` already reads signed integers as integers);
* ``lm_eval.api.model``: the ``LM`` base class gets ``classify``/``tag``/
  ``extract_span``/``embed`` methods (only names it lacks), so any lm-eval model
  (``hf``, ``vllm``, API models) answers XTREME tasks through its own
  ``loglikelihood``/``generate_until`` (:mod:`harness_ext.adapters.prompted.adapter`);
  ``XtremeLM`` defines its own and keeps them. ``LM.create_from_arg_string`` /
  ``create_from_arg_obj`` take our ``xtreme_*`` options out of ``--model_args``
  before the model class sees them. lm-eval's own tasks never send these request
  kinds, so nothing changes for them.

Switch it off with ``XTREME_HARNESS_AUTOLOAD=0``; then use ``xtreme-eval run`` or
``--include_path $(python -c 'import xtreme_tasks; print(xtreme_tasks.TASK_DIR)')``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Callable

MODEL_NAME = "xtreme"
MODEL_TARGET = "harness_ext.adapters.xtreme_lm:XtremeLM"


def _patch_registry(module) -> None:
    import lm_eval.models  # noqa: F401  (registers the built-in models first)

    registry = module.model_registry
    if MODEL_NAME not in registry:
        registry.register(MODEL_NAME, target=MODEL_TARGET)


def _patch_task_manager(module) -> None:
    manager_cls = module.TaskManager
    if getattr(manager_cls, "_xtreme_patched", False):
        return
    original_init = manager_cls.__init__

    def __init__(self, *args, include_path=None, **kwargs):
        from xtreme_tasks import TASK_DIR

        paths = [] if include_path is None else (
            list(include_path) if isinstance(include_path, (list, tuple)) else [include_path]
        )
        if not any(str(p).rstrip("/") == TASK_DIR for p in paths):
            paths.insert(0, TASK_DIR)
        original_init(self, *args, include_path=paths, **kwargs)

    __init__.__wrapped__ = original_init  # type: ignore[attr-defined]
    manager_cls.__init__ = __init__
    manager_cls._xtreme_patched = True


def _patch_cli_values(module) -> None:
    original = getattr(module, "handle_cli_value_string", None)
    if original is None or getattr(original, "_xtreme_patched", False):
        return
    import re

    def handle_cli_value_string(arg):
        if isinstance(arg, str) and re.fullmatch(r"[+-][0-9]+", arg.strip()):
            return int(arg)
        return original(arg)

    handle_cli_value_string._xtreme_patched = True  # type: ignore[attr-defined]
    handle_cli_value_string.__wrapped__ = original  # type: ignore[attr-defined]
    module.handle_cli_value_string = handle_cli_value_string


REQUEST_KINDS = ("classify", "tag", "extract_span", "embed", "choose")


def _prompted_method(kind: str) -> Callable:
    def method(self, requests):
        from harness_ext.adapters.prompted import adapter as prompted

        return prompted.answer(kind, self, requests)

    method.__name__ = kind
    method.__qualname__ = f"LM.{kind}"
    method.__doc__ = f"Answer XTREME {kind} requests through this model's loglikelihood/generate_until (xtreme-harness)."
    return method


def _with_options(create_from_dict: Callable, takes_string: bool) -> classmethod:
    """``LM.create_from_arg_*`` that set our ``xtreme_*`` options on the instance instead of
    passing them to the model class (``HFLM`` would hand them to ``from_pretrained``)."""

    def create(cls, args, additional_config=None):
        from harness_ext.adapters.prompted.adapter import split_options

        if takes_string:
            from lm_eval.utils import simple_parse_args_string

            args = simple_parse_args_string(args)
        own, ours = split_options(dict(args or {}))
        lm = create_from_dict(cls, own, additional_config)  # lm-eval's own create_from_arg_obj
        if ours:
            lm._xtreme_options = ours
        return lm

    create.__wrapped__ = create_from_dict  # type: ignore[attr-defined]
    return classmethod(create)


def _patch_lm(module) -> None:
    lm_cls = module.LM
    if getattr(lm_cls, "_xtreme_patched", False):
        return
    for kind in REQUEST_KINDS:
        if not hasattr(lm_cls, kind):
            setattr(lm_cls, kind, _prompted_method(kind))
    from_dict = lm_cls.__dict__["create_from_arg_obj"].__func__
    lm_cls.create_from_arg_string = _with_options(from_dict, takes_string=True)
    lm_cls.create_from_arg_obj = _with_options(from_dict, takes_string=False)
    lm_cls._xtreme_patched = True


def _patch_evaluator(module) -> None:
    """``evaluate`` stops before any request when selected XTREME tasks have no data, unless
    a partial run was asked for; such a run's results carry ``xtreme_partial``."""
    original = module.evaluate
    if getattr(original, "_xtreme_patched", False):
        return

    def evaluate(lm, task_dict, *args, **kwargs):
        from harness_ext.run_guard import PARTIAL_KEY, check_data

        partial = check_data(lm, task_dict)
        results = original(lm, task_dict, *args, **kwargs)
        if partial and isinstance(results, dict):
            results[PARTIAL_KEY] = partial
        return results

    evaluate._xtreme_patched = True  # type: ignore[attr-defined]
    evaluate.__wrapped__ = original  # type: ignore[attr-defined]
    evaluate.__doc__ = original.__doc__
    module.evaluate = evaluate


def _patch_harness_cli(module) -> None:
    """``lm_eval run``: bad XTREME input fails before lm-eval indexes its tasks, our errors are
    one ``error:`` line (exit 2) instead of a traceback, and the indexing is announced."""
    cli_cls = module.HarnessCLI
    if getattr(cli_cls, "_xtreme_patched", False):
        return
    original = cli_cls.execute

    def execute(self, args):
        import os

        from harness_ext import run_guard
        from harness_ext.errors import is_user_error

        try:
            if getattr(args, "command", None) == "run":
                run_guard.check_cli_args(args)
                if os.environ.get("XTREME_PROGRESS", "1") != "0":
                    sys.stderr.write("xtreme-harness: lm-eval is indexing its task folders (15-20 s) ...\n")
                    sys.stderr.flush()
            return original(self, args)
        except Exception as err:
            shown = run_guard.tasks_not_found(err) or (err if is_user_error(err) else None)
            if shown is None:
                raise
            if os.environ.get("XTREME_VERBOSE", "") not in ("", "0"):
                import traceback

                traceback.print_exc()
            sys.stderr.write(f"error: {' '.join(str(shown).split())}\n")
            raise SystemExit(2) from None

    execute.__wrapped__ = original  # type: ignore[attr-defined]
    cli_cls.execute = execute
    cli_cls._xtreme_patched = True


def _patch_tracker(module) -> None:
    """lm-eval only logs a warning when it cannot write results (a full disk leaves a truncated
    JSON and exit 0): check what it wrote and fail in one line."""
    tracker_cls = module.EvaluationTracker
    if getattr(tracker_cls, "_xtreme_patched", False):
        return
    save_results, save_samples = tracker_cls.save_results_aggregated, tracker_cls.save_results_samples

    def folder_of(tracker):
        from pathlib import Path

        path = Path(tracker.output_path)
        return (path.parent, f"{path.stem}_") if path.suffix == ".json" else (
            path / str(tracker.general_config_tracker.model_name_sanitized), "results_")

    def save_results_aggregated(self, results, samples=None):
        save_results(self, results=results, samples=samples)
        if self.output_path:
            from harness_ext.run_guard import check_results_file

            folder, prefix = folder_of(self)
            if not getattr(self, "date_id", None):
                from datetime import datetime

                self.date_id = datetime.now().isoformat().replace(":", "-")
            check_results_file(folder / f"{prefix}{self.date_id}.json", results)

    def save_results_samples(self, task_name, samples):
        save_samples(self, task_name=task_name, samples=samples)
        if self.output_path and samples:
            from harness_ext.run_guard import check_samples_file

            folder = folder_of(self)[0]
            check_samples_file(folder / f"samples_{task_name}_{self.date_id}.jsonl")

    tracker_cls.save_results_aggregated = save_results_aggregated
    tracker_cls.save_results_samples = save_results_samples
    tracker_cls._xtreme_patched = True


def _patch_git_hash(module) -> None:
    """lm-eval asks git for a version hash at every run; outside a git checkout git printed
    ``fatal: not a git repository`` on stderr. Same answer, without the noise."""
    original = getattr(module, "get_git_commit_hash", None)
    if original is None or getattr(original, "_xtreme_patched", False):
        return
    import os
    import subprocess

    def get_git_commit_hash():
        try:
            return subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL).strip().decode()  # noqa: S607
        except (subprocess.CalledProcessError, OSError):
            return module.get_commit_from_path(os.getcwd())

    get_git_commit_hash._xtreme_patched = True  # type: ignore[attr-defined]
    get_git_commit_hash.__wrapped__ = original  # type: ignore[attr-defined]
    module.get_git_commit_hash = get_git_commit_hash


HOOKS: dict[str, Callable] = {
    "lm_eval.api.model": _patch_lm,
    "lm_eval.api.registry": _patch_registry,
    "lm_eval.tasks.manager": _patch_task_manager,
    "lm_eval._cli.utils": _patch_cli_values,
    "lm_eval._cli.harness": _patch_harness_cli,
    "lm_eval.evaluator": _patch_evaluator,
    "lm_eval.loggers.evaluation_tracker": _patch_tracker,
    "lm_eval.loggers.utils": _patch_git_hash,
}


class _PostImportLoader(importlib.abc.Loader):
    def __init__(self, wrapped: importlib.abc.Loader, hook: Callable) -> None:
        self._wrapped = wrapped
        self._hook = hook

    def create_module(self, spec):
        return self._wrapped.create_module(spec)

    def exec_module(self, module) -> None:
        self._wrapped.exec_module(module)
        try:
            self._hook(module)
        except Exception as err:  # never break lm-eval because of us
            sys.stderr.write(f"xtreme-harness: could not register with lm-eval ({err!r})\n")


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the few lm-eval modules we hook; ignores everything else."""

    def find_spec(self, fullname, path, target=None):
        hook = HOOKS.get(fullname)
        if hook is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PostImportLoader(spec.loader, hook)
        return spec


def install() -> None:
    """Put the finder in place (idempotent); patch modules that are already imported."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name, hook in HOOKS.items():
        if name in sys.modules:
            hook(sys.modules[name])


def is_installed() -> bool:
    return any(isinstance(f, _Finder) for f in sys.meta_path)
