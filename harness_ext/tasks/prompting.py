"""What a task tells a prompted LLM beyond the document: lm-eval's prompt options and shots.

lm-eval hands ``--num_fewshot``, ``--system_instruction``, ``--apply_chat_template``,
``--fewshot_as_multiturn`` and ``--gen_kwargs`` to the *task* when it builds
requests; the model only sees the requests. So every ``classify``/``tag``/
``extract_span`` request carries a :class:`PromptContext` as its last argument.
``--model xtreme`` (fine-tuned heads, zero-shot by definition) ignores it and refuses
shots; the prompted adapter (:mod:`harness_ext.adapters.prompted.adapter`) renders the
prompt from it and writes the prompt and the raw model output back into it, so
``--log_samples`` shows both (the samples file's ``arguments``).

Few-shot demonstrations are English and come from the English *validation* split
of the same task (cross-lingual in-context transfer, never a test set): the same
``k`` documents for every document and every target language, drawn with
lm-eval's few-shot seed (``--seed``'s fourth value, default 1234), in a fixed order.
"""

from __future__ import annotations

import functools
import random
from typing import Any

from xtreme_tasks.table import get_task

#: task -> split holding its English demonstrations (the loaders map it to dev files / hub validation)
FEWSHOT_SPLIT: dict[str, str] = {
    "xnli": "validation", "pawsx": "validation", "udpos": "validation", "panx": "validation", "mlqa": "validation",
}
#: tasks whose only English split is (part of) a test set, so no demonstrations can be drawn
NO_ENGLISH_DEV: dict[str, str] = {
    "xquad": "XQuAD has one split, its test set (its English part is SQuAD v1.1 dev)",
    "tydiqa": "XTREME's TyDiQA-GoldP test set is the GoldP dev split itself",
    "xcopa": "XCOPA has no English part (its English source, COPA, is not shipped with it)",
}
DEFAULT_FEWSHOT_SEED = 1234


class FewshotError(ValueError):
    """``--num_fewshot`` cannot be honoured for a task; the message says why and what to do."""


class PromptContext(dict):
    """lm-eval's prompt options for one request, and (after answering) its prompt and raw output.

    A ``dict`` so that ``--log_samples`` writes it as a JSON object; every value is plain data.
    """

    @classmethod
    def build(cls, num_fewshot: int = 0, fewshot_seed: int | None = None, system_instruction: str | None = None,
              apply_chat_template: bool = False, fewshot_as_multiturn: bool = False,
              gen_kwargs: dict | None = None, data_dir: str | None = None) -> "PromptContext":
        context = cls(num_fewshot=int(num_fewshot or 0))
        if context["num_fewshot"]:
            context["fewshot_seed"] = DEFAULT_FEWSHOT_SEED if fewshot_seed is None else fewshot_seed
        if system_instruction:
            context["system_instruction"] = system_instruction
        if apply_chat_template:
            context["apply_chat_template"] = True
            context["fewshot_as_multiturn"] = bool(fewshot_as_multiturn)
        if gen_kwargs:
            context["gen_kwargs"] = dict(gen_kwargs)
        if data_dir:
            context["data_dir"] = str(data_dir)
        return context


def prompt_context_of(request: Any) -> PromptContext | None:
    """The :class:`PromptContext` a request carries (its last argument), if any."""
    args = getattr(request, "args", None) or ()
    last = args[-1] if args else None
    return last if isinstance(last, PromptContext) else None


def check_fewshot(task: str, num_fewshot: int, leaf: str) -> None:
    """Fail early, with the reason, when ``task`` has no English split to draw shots from."""
    if not num_fewshot:
        return
    if num_fewshot < 0:
        raise FewshotError(f"{leaf}: --num_fewshot {num_fewshot} must be 0 or more")
    if task in NO_ENGLISH_DEV:
        raise FewshotError(
            f"{leaf}: --num_fewshot {num_fewshot} needs English demonstrations from a validation split, but "
            f"{NO_ENGLISH_DEV[task]}; run {get_task(task).group} with --num_fewshot 0"
        )


@functools.lru_cache(maxsize=32)
def demonstrations(task: str, num_fewshot: int, seed: int, data_dir: str | None = None) -> tuple[dict, ...]:
    """``num_fewshot`` English documents of ``task``'s validation split, the same for every language."""
    from xtreme_tasks.data import load_docs

    check_fewshot(task, num_fewshot, get_task(task).group)
    if task not in FEWSHOT_SPLIT:
        raise FewshotError(f"{get_task(task).title}: few-shot demonstrations do not apply to {get_task(task).request_kind} tasks")
    try:
        pool = load_docs(task, "en", FEWSHOT_SPLIT[task], data_dir=data_dir)
    except Exception as exc:  # a missing dev file: say what few-shot needs
        raise FewshotError(
            f"{get_task(task).title}: --num_fewshot {num_fewshot} draws English demonstrations from the English "
            f"{FEWSHOT_SPLIT[task]} split, which could not be read: {exc}"
        ) from None
    if len(pool) < num_fewshot:
        raise FewshotError(f"{get_task(task).title}: --num_fewshot {num_fewshot} but the English validation split has {len(pool)} documents")
    picked = random.Random(seed).sample(range(len(pool)), num_fewshot)
    return tuple(pool[i] for i in picked)
