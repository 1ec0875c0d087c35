"""Stock lm-eval prompts (preset ``lm-eval``): read from the installed lm-eval's own task YAMLs.

lm-eval ships prompted versions of six of our tasks (``xnli_<lang>``, ``paws_<lang>``,
``xquad_<lang>``, ``mlqa_<lang>_<lang>``, ``tydiqa_goldp_<lang>``, ``xcopa_<lang>``), each
with its own per-language prompt, answer choices, target delimiter, stop sequences and
document processing. Preset ``lm-eval`` asks for exactly those, on XTREME's test sets,
so that a user can set our numbers beside published lm-eval ones. Nothing is copied:
the prompt and the choices (Jinja, rendered by lm-eval's own ``apply_template``, or
lm-eval's own functions, as XCOPA's connectors), the delimiters, the
``generation_kwargs`` and PAWS-X's ``process_docs`` come from the task YAML of the
lm-eval installed here, so they follow lm-eval's releases.

The context is laid out as lm-eval's ``ConfigurableTask.fewshot_context`` lays it out
(system instruction, shots, question; plain, one chat turn or multi-turn chat), with
lm-eval's own ``Message``/``multiturn_to_singleturn``/``maybe_delimit``; a scored answer
follows the target delimiter, or nothing after a chat template. ``tests/test_smollm2.py``
checks it request by request on a real model against lm-eval's own task configurations.
Shots are the one intended difference: English validation documents, as in every
preset (lm-eval draws them from the task's own split), so k-shot numbers are not lm-eval's.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union


def _pair(first: str, second: str) -> Callable[[Mapping[str, Any]], dict]:
    return lambda doc: {first: str(doc["text_a"]), second: str(doc.get("text_b") or "")}


def _qa(doc: Mapping[str, Any]) -> dict:
    return {"question": str(doc["question"]), "context": str(doc["context"])}


def _copa(doc: Mapping[str, Any]) -> dict:
    return {"premise": doc["premise"], "question": doc["question"], "choice1": doc["choices"][0], "choice2": doc["choices"][1]}


@dataclass(frozen=True)
class StockTask:
    """Where lm-eval keeps one of our tasks, and how our document becomes lm-eval's."""

    folder: str  #: under lm_eval/tasks
    file: str  #: the task YAML's file name for one language (XCOPA's is not its task name)
    to_doc: Callable[[Mapping[str, Any]], dict]  #: our document -> lm-eval's field names


STOCK_TASKS: dict[str, StockTask] = {
    "xnli": StockTask("xnli", "xnli_{lang}", _pair("premise", "hypothesis")),
    "pawsx": StockTask("paws-x", "paws_{lang}", _pair("sentence1", "sentence2")),
    "xquad": StockTask("xquad", "xquad_{lang}", _qa),
    "mlqa": StockTask("mlqa", "mlqa_{lang}_{lang}", _qa),
    "tydiqa": StockTask("tydiqa", "tydiqa_goldp_{lang}", _qa),
    "xcopa": StockTask("xcopa", "default_{lang}", _copa),
}


class StockError(ValueError):
    """lm-eval has no stock task for this task and language (or it cannot be read)."""


Field = Union[str, Callable[[dict], Any]]


@dataclass(frozen=True)
class StockPrompt:
    """One lm-eval task's prompt, as its YAML defines it (a Jinja template or lm-eval's own function)."""

    name: str
    doc_to_text: Field
    doc_to_choice: Field | None
    target_delimiter: str
    fewshot_delimiter: str
    description: str
    generation_kwargs: Mapping[str, Any]
    to_doc: Callable[[Mapping[str, Any]], dict]
    process_docs: Callable | None = None

    def docs(self, ours: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Our documents with lm-eval's field names, processed as lm-eval processes them."""
        return process(self, [self.to_doc(d) for d in ours])

    def text(self, doc: Mapping[str, Any]) -> str:
        return str(_resolve(self.doc_to_text, doc))

    def choices(self, doc: Mapping[str, Any]) -> list[str]:
        """The answers lm-eval scores, in label order (without the target delimiter)."""
        if self.doc_to_choice is None:
            raise StockError(f"lm-eval's {self.name} has no doc_to_choice: it is not a multiple-choice task")
        choices = _resolve(self.doc_to_choice, doc)
        return [str(c) for c in (ast.literal_eval(choices) if isinstance(choices, str) else choices)]

    def delimiter(self, chat: bool) -> str:
        """What lm-eval puts between the prompt and a scored answer: the target delimiter, none
        after a chat template (``ConfigurableTask.construct_requests``; no stock task has a gen_prefix)."""
        return "" if chat else self.target_delimiter

    def prompt(self, doc: Mapping[str, Any], shots: Sequence[tuple[Mapping[str, Any], str]] = (),
               system_instruction: str | None = None, chat_template: Callable[..., str] | None = None,
               multiturn: bool = False) -> str:
        """The context lm-eval's ``ConfigurableTask.fewshot_context`` builds for ``doc`` after
        ``shots`` (lm-eval documents with their answer text): a system message (the system
        instruction, then the task's description), each shot as a question turn ending in the
        target delimiter and an answer turn ending in the fewshot delimiter, then the question.
        Plain text is the turns joined (the system message with nothing after it, as lm-eval
        does); with ``chat_template`` (the LM's ``apply_chat_template``) the turns are one user
        message (lm-eval's ``multiturn_to_singleturn``) or, ``multiturn``, one turn each."""
        from lm_eval.api.utils import Message, maybe_delimit, multiturn_to_singleturn

        description = str(_resolve(self.description, doc)) if self.description else ""
        system = maybe_delimit(system_instruction, description, self.fewshot_delimiter)
        messages = [Message("system", system)] if system else []
        for shot, answer in shots:
            messages += [Message("user", self.text(shot), self.target_delimiter),
                         Message("assistant", answer, self.fewshot_delimiter)]
        messages.append(Message("user", self.text(doc)))
        if chat_template is None:
            return "".join(m.to_text() for m in messages)
        turns = [m.to_dict() for m in messages] if multiturn else multiturn_to_singleturn(messages)
        return chat_template(turns, add_generation_prompt=True)


def _resolve(field: Field, doc: Mapping[str, Any]) -> Any:
    """A YAML field on one document, as lm-eval reads it: its own function, or a Jinja template."""
    if callable(field):
        return field(dict(doc))
    from lm_eval.utils import apply_template

    return apply_template(field, dict(doc))


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
    where = STOCK_TASKS[task]
    path = _tasks_dir() / where.folder / f"{where.file.format(lang=lang)}.yaml"
    if not path.is_file():
        raise StockError(f"prompt preset lm-eval: lm-eval {_version()} has no {task} task for {lang} ({path} is missing)")
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(path, resolve_func=False)
    if config.get("gen_prefix") or config.get("fewshot_config"):
        raise StockError(f"prompt preset lm-eval: {path} sets gen_prefix or fewshot_config, which preset lm-eval "
                         "does not reproduce; use an lm-eval release whose task has neither")
    process_docs = None
    if task == "pawsx" and config.get("process_docs"):  # the only stock task whose processing changes the prompt
        process_docs = _function(str(config["process_docs"]))
    return StockPrompt(
        name=str(config.get("task") or path.stem),
        doc_to_text=_field(config.get("doc_to_text")) or "",
        doc_to_choice=_field(config.get("doc_to_choice")),
        target_delimiter=str(config.get("target_delimiter", " ")),
        fewshot_delimiter=str(config.get("fewshot_delimiter", "\n\n")),
        description=str(config.get("description") or ""),
        generation_kwargs=dict(config.get("generation_kwargs") or {}),
        to_doc=where.to_doc,
        process_docs=process_docs,
    )


def _field(value: Any) -> Field | None:
    """A YAML value read with ``resolve_func=False``: a ``!function`` is its file path (``<folder>/utils.name``)."""
    if isinstance(value, str) and Path(value).is_absolute():
        return _function(value)
    return value


def _function(spec: str) -> Callable:
    """A ``!function`` of a stock task YAML (``<folder>/utils.process_docs_...``), from lm-eval's own package."""
    from lm_eval.tasks._yaml_loader import _import_func_in_yml

    path = Path(spec)
    return _import_func_in_yml(path.name, path.parent)


def _version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
