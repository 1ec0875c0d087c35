"""Stock lm-eval prompts (preset ``lm-eval``): read from the installed lm-eval's own task YAMLs.

lm-eval ships prompted versions of five XTREME tasks (``xnli_<lang>``, ``paws_<lang>``,
``xquad_<lang>``, ``mlqa_<lang>_<lang>``, ``tydiqa_goldp_<lang>``), each with its own
per-language prompt, label verbalisations, target delimiter, stop sequences and
document processing. Preset ``lm-eval`` asks for exactly those, on XTREME's test sets,
so that a user can set our numbers beside published lm-eval ones. Nothing is copied:
the prompt, the choices (Jinja, rendered by lm-eval's own ``apply_template``), the
``target_delimiter``, the ``generation_kwargs`` and PAWS-X's ``process_docs`` come
from the task YAML of the lm-eval installed here, so they follow lm-eval's releases.

Equal to lm-eval's own tasks, request by request, for zero-shot runs without a chat
template (``tests/test_smollm2.py`` checks it on a real model). Shots follow lm-eval's
layout (``text + target_delimiter + answer``, joined by a blank line) but are drawn from
English validation data as in every preset (lm-eval draws them from the task's own
split), so k-shot numbers are not lm-eval's.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

#: our task -> (lm-eval's task folder, its task name for one language, lm-eval's document field names)
STOCK_TASKS: dict[str, tuple[str, str, tuple[str, str]]] = {
    "xnli": ("xnli", "xnli_{lang}", ("premise", "hypothesis")),
    "pawsx": ("paws-x", "paws_{lang}", ("sentence1", "sentence2")),
    "xquad": ("xquad", "xquad_{lang}", ("question", "context")),
    "mlqa": ("mlqa", "mlqa_{lang}_{lang}", ("question", "context")),
    "tydiqa": ("tydiqa", "tydiqa_goldp_{lang}", ("question", "context")),
}


class StockError(ValueError):
    """lm-eval has no stock task for this task and language (or it cannot be read)."""


@dataclass(frozen=True)
class StockPrompt:
    """One lm-eval task's prompt, as its YAML defines it."""

    name: str
    doc_to_text: str
    doc_to_choice: str | None
    target_delimiter: str
    generation_kwargs: Mapping[str, Any]
    fields: tuple[str, str]
    process_docs: Callable | None = None

    def docs(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
        """Documents with lm-eval's field names, processed as lm-eval processes them."""
        return process(self, [{self.fields[0]: a, self.fields[1]: b} for a, b in pairs])

    def text(self, doc: Mapping[str, Any]) -> str:
        from lm_eval.utils import apply_template

        return apply_template(self.doc_to_text, dict(doc))

    def choices(self, doc: Mapping[str, Any]) -> list[str]:
        """The continuations lm-eval scores, in label order, each after the target delimiter."""
        from lm_eval.utils import apply_template

        if self.doc_to_choice is None:
            raise StockError(f"lm-eval's {self.name} has no doc_to_choice: it is not a multiple-choice task")
        return [self.target_delimiter + c for c in ast.literal_eval(apply_template(self.doc_to_choice, dict(doc)))]

    def context(self, shots: Sequence[str], query: str) -> str:
        """lm-eval's few-shot layout: each shot followed by the fewshot delimiter (a blank line), then the query."""
        return "".join(f"{shot}\n\n" for shot in shots) + query


def process(stock: StockPrompt, docs: list[dict]) -> list[dict]:
    """lm-eval's ``process_docs`` (PAWS-X: detokenise, lower-case the second sentence) on our documents;
    documents it would drop (an empty sentence) stay as they are: XTREME scores every document."""
    if stock.process_docs is None or not docs:
        return docs
    import datasets

    keep = [i for i, d in enumerate(docs) if all(d.values())]
    if not keep:
        return docs
    shown = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one "Map" bar per batch of requests would drown the run's own
    try:
        done = stock.process_docs(datasets.Dataset.from_list([docs[i] for i in keep]))
    finally:
        if shown:
            datasets.enable_progress_bars()
    out = list(docs)
    for i, row in zip(keep, done):
        out[i] = {k: row[k] for k in docs[i]}
    return out


def _tasks_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).parent / "tasks"


@functools.lru_cache(maxsize=None)
def stock_prompt(task: str, lang: str) -> StockPrompt:
    """lm-eval's prompt for ``task`` in ``lang``, or a one-line error naming what is missing."""
    if task not in STOCK_TASKS:
        raise StockError(
            f"prompt preset lm-eval: lm-eval has no stock {task} task; preset lm-eval covers "
            f"{', '.join(STOCK_TASKS)} (other tasks keep the default preset's prompts)"
        )
    folder, pattern, fields = STOCK_TASKS[task]
    name = pattern.format(lang=lang)
    path = _tasks_dir() / folder / f"{name}.yaml"
    if not path.is_file():
        raise StockError(f"prompt preset lm-eval: lm-eval {_version()} has no task {name} ({path} is missing)")
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(path, resolve_func=False)
    process_docs = None
    if task == "pawsx" and config.get("process_docs"):  # the only stock task whose processing changes the prompt
        process_docs = _function(str(config["process_docs"]))
    return StockPrompt(
        name=name,
        doc_to_text=str(config.get("doc_to_text") or ""),
        doc_to_choice=config.get("doc_to_choice"),
        target_delimiter=str(config.get("target_delimiter", " ")),
        generation_kwargs=dict(config.get("generation_kwargs") or {}),
        fields=fields,
        process_docs=process_docs,
    )


def _function(spec: str) -> Callable:
    """A ``!function`` of a stock task YAML (``<folder>/utils.process_docs_...``), from lm-eval's own package."""
    from lm_eval.tasks._yaml_loader import _import_func_in_yml

    path = Path(spec)
    return _import_func_in_yml(path.name, path.parent)


def _version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
