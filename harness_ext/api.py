"""Python API: run XTREME tasks through lm-eval without relying on the start-up hook.

    from harness_ext.api import evaluate
    results = evaluate(["xtreme_xnli"], pretrained="path/to/xnli-checkpoint", limit=100)
    results["results"]["xtreme_xnli"]["acc,none"]
"""

from __future__ import annotations

import sys
from typing import Any, Sequence


def ensure_registered() -> None:
    """Register our tasks folder and the ``xtreme`` model with lm-eval (idempotent)."""
    from harness_ext import _autoload

    _autoload.install()
    import lm_eval.api.registry  # noqa: F401  (triggers the registry hook)
    import lm_eval.tasks.manager  # noqa: F401  (triggers the TaskManager hook)


def task_manager(**kwargs: Any):
    """A ``TaskManager`` that indexes the XTREME tasks (and lm-eval's built-ins)."""
    ensure_registered()
    from lm_eval.tasks import TaskManager

    return TaskManager(**kwargs)


_XTREME_ONLY = None


def xtreme_task_manager():
    """A cached ``TaskManager`` over the XTREME folder alone: ~5 s to build instead of
    ~30 s for lm-eval's thousands of built-in YAML files."""
    global _XTREME_ONLY
    if _XTREME_ONLY is None:
        from xtreme_tasks import TASK_DIR

        _XTREME_ONLY = task_manager(include_defaults=False, include_path=TASK_DIR)
    return _XTREME_ONLY


def evaluate(
    tasks: Sequence[str],
    *,
    model: Any = "xtreme",
    pretrained: str | None = None,
    system: str | None = None,
    model_args: dict[str, Any] | None = None,
    limit: int | float | None = None,
    batch_size: int | str | None = None,
    device: str | None = None,
    log_samples: bool = False,
    task_manager: Any = None,
    allow_missing: bool = False,
    **simple_evaluate_kwargs: Any,
) -> dict[str, Any]:
    """Evaluate XTREME tasks (names or globs, e.g. ``"xtreme_*"``) and return lm-eval's results dict.

    ``model``: ``"xtreme"`` (fine-tuned checkpoints, the default), any lm-eval model name
    (``"hf"``, ``"vllm"``, ``"local-completions"``: prompted, see docs/llm.md; ``xtreme_*``
    keys of ``model_args`` are the prompted adapter's options) or an ``LM`` instance.
    Pass ``task_manager=harness_ext.api.task_manager()`` to mix in lm-eval's built-in tasks.

    Fails loudly (``harness_ext.run_guard``): a misspelt XTREME task name, an unknown
    ``model_args`` key, or selected tasks without data raise one-line errors before any
    work. ``allow_missing=True`` runs the tasks that have data on purpose; the returned
    results then carry ``xtreme_partial`` (``{"missing_tasks": {leaf: reason}, ...}``).
    """
    ensure_registered()
    import lm_eval

    from harness_ext import run_guard

    args = dict(model_args or {})
    if pretrained is not None:
        args["pretrained"] = pretrained
    if system is not None:
        args["system"] = system
    if allow_missing:
        key = run_guard.ALLOW_MISSING_ARG if model == "xtreme" else "xtreme_" + run_guard.ALLOW_MISSING_ARG
        if isinstance(model, str):
            args[key] = True
        else:
            model.allow_missing = True
    run_guard.check_task_names(list(tasks))
    if isinstance(model, str):
        run_guard.check_model_args(model, args)
    return lm_eval.simple_evaluate(
        model=model,
        model_args=args if isinstance(model, str) else None,
        tasks=list(tasks),
        limit=limit,
        batch_size=batch_size,
        device=device,
        log_samples=log_samples,
        task_manager=task_manager or xtreme_task_manager(),
        **simple_evaluate_kwargs,
    )


def run_lm_eval_cli(argv: list[str]) -> int:
    """Run lm-eval's own command line with our tasks and model registered."""
    ensure_registered()
    from lm_eval.__main__ import cli_evaluate

    saved = sys.argv
    sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except SystemExit as done:
        return int(done.code or 0)
    finally:
        sys.argv = saved
    return 0
