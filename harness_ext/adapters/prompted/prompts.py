"""Prompt presets for decoder LLMs (``--model hf``, ``vllm``, API models) on XTREME tasks.

Zero-shot cross-lingual prompting: the instruction is English and the same for
every language; only the input text is in the target language. One template per
task:

=========  ===========================================================  =========================
task       input (after the English instruction)                        answer
=========  ===========================================================  =========================
xnli       ``Premise: {text_a}\\nHypothesis: {text_b}\\nAnswer:``         ``entailment`` /
                                                                        ``neutral`` /
                                                                        ``contradiction``
pawsx      ``Sentence 1: {text_a}\\nSentence 2: {text_b}\\nAnswer:``      ``yes`` (1) / ``no`` (0)
udpos      ``Sentence: {text}\\nTagged:``                               ``The/DET cat/NOUN``
panx       ``Sentence: {text}\\nEntities:``                             ``PER: John Smith $$ LOC:
                                                                        Paris`` (``none``)
QA         ``Context: {context}\\n\\nQuestion: {question}\\n\\nAnswer:``   the answer text (no
                                                                        instruction, stop at a newline)
xcopa      ``{context}\\nAnswer:`` (``{context}`` = "{premise} What     the text of the more
           was the {question}?")                                        plausible choice
=========  ===========================================================  =========================

Override from a YAML/JSON file or a mapping (``--model_args ...,xtreme_prompts=FILE``),
starting from the ``default`` preset::

    preset: default
    pawsx:
      instruction: "Are the two sentences paraphrases? Answer yes or no."
      targets: {"0": "no", "1": "yes"}
    udpos: {max_new_tokens: 512}

Fields per task: ``instruction``, ``input`` (placeholders as in
:mod:`harness_ext.adapters.text2text.templates`: ``{text_a} {text_b}`` / ``{text}`` /
``{question} {context}``, and ``{lang}``), ``targets`` (classification: label ->
verbalisation), ``format`` / ``separator`` / ``empty`` (tagging: the
text-to-text formats of :mod:`harness_ext.adapters.formats.parse`, and the word
the model writes for "no entity"), ``max_new_tokens`` (``None``: the kind's
default; for tagging it grows with the sentence), ``until`` (stop sequences; default
a blank line), ``stock`` (``true``: lm-eval's own prompt for the task and language,
see :mod:`harness_ext.adapters.prompted.stock`; preset ``lm-eval`` sets it for XNLI,
PAWS-X, the three QA tasks and XCOPA).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from harness_ext.adapters.formats.reader import choose_fields
from harness_ext.adapters.text2text.templates import (PLACEHOLDERS, TemplateError, TemplateFamily,
                                           TemplateMethods, check_answers, check_input, load_family)
from harness_ext.adapters.prompted.stock import STOCK_TASKS
from xtreme_tasks.table import TABLE as TASKS, UPOS_TAGS  # XTREME's tasks and XTREME-R's (XCOPA)

PROMPT_TASKS: tuple[str, ...] = tuple(n for n, s in TASKS.items() if s.request_kind in PLACEHOLDERS)


@dataclass(frozen=True)
class PromptTemplate(TemplateMethods):
    """How one task's documents become an LLM prompt, and what a right answer looks like."""

    task: str
    instruction: str
    input: str
    #: classification: task label name -> the verbalisation scored / expected
    targets: Mapping[str, str] = field(default_factory=dict)
    #: tagging: ``word_tags`` | ``spans`` | ``tags`` (see harness_ext.adapters.formats.parse)
    format: str = ""
    separator: str = " $$ "
    #: tagging: what the model writes for a sentence with nothing to tag (spans format)
    empty: str = ""
    max_new_tokens: int | None = None
    #: generation: stop sequences (empty: the adapter's default, a blank line)
    until: tuple[str, ...] = ()
    #: take prompt, choices, delimiter, stop sequences from lm-eval's own task YAML
    #: (:mod:`harness_ext.adapters.prompted.stock`); ``instruction``/``input``/``targets`` are then unused
    stock: bool = False



#: QA: no instruction, lm-eval's English layout, stop at a newline: measured on SmolLM2-135M-Instruct
#: (docs/llm.md), an instruction in front made it end its text at once on most questions
_QA = PromptTemplate(
    "xquad",
    "",
    "Context: {context}\n\nQuestion: {question}\n\nAnswer:",
    until=("\n",),
)
DEFAULT: dict[str, PromptTemplate] = {
    "xnli": PromptTemplate(
        "xnli",
        "Read the premise and the hypothesis. Does the premise entail the hypothesis, contradict it, "
        "or neither? Answer with one word: entailment, neutral or contradiction.",
        "Premise: {text_a}\nHypothesis: {text_b}\nAnswer:",
        targets={"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"},
    ),
    "pawsx": PromptTemplate(
        "pawsx",
        "Do the two sentences mean the same thing? Answer yes or no.",
        "Sentence 1: {text_a}\nSentence 2: {text_b}\nAnswer:",
        targets={"0": "no", "1": "yes"},
    ),
    "udpos": PromptTemplate(
        "udpos",
        "Tag every word of the sentence with its Universal Dependencies part-of-speech tag. Write each word "
        "followed by a slash and its tag (word/TAG), separated by spaces, on one line. Tags: "
        + " ".join(UPOS_TAGS) + ".",
        "Sentence: {text}\nTagged:",
        format="word_tags",
    ),
    "panx": PromptTemplate(
        "panx",
        "List the named entities in the sentence: persons (PER), organisations (ORG) and locations (LOC). "
        "Write each one as TYPE: words, with the words exactly as in the sentence, separated by ' $$ ', "
        "on one line. Write none if there is no entity.",
        "Sentence: {text}\nEntities:",
        format="spans", empty="none",
    ),
    "xquad": _QA,
    "mlqa": replace(_QA, task="mlqa"),
    "tydiqa": replace(_QA, task="tydiqa"),
    # scored by the log-likelihood of each candidate's own text after the input (no targets)
    "xcopa": PromptTemplate(
        "xcopa",
        "Read the premise and give the more plausible cause or effect.",
        "{context}\nAnswer:",
    ),
}
#: stock lm-eval's prompts where lm-eval has the task (its per-language prompts, choices and stop
#: sequences, read from its task YAMLs); UD-POS and PAN-X, which lm-eval lacks, keep the default's
LM_EVAL: dict[str, PromptTemplate] = {
    task: replace(t, instruction="", stock=True) if task in STOCK_TASKS else t
    for task, t in DEFAULT.items()
}
PRESETS: dict[str, dict[str, PromptTemplate]] = {"default": DEFAULT, "lm-eval": LM_EVAL}
DEFAULT_PRESET = "default"
_FIELDS = {f.name for f in fields(PromptTemplate)} - {"task"}


def check(template: PromptTemplate, where: str) -> PromptTemplate:
    """Refuse placeholders the task cannot fill, missing or clashing targets, unknown formats;
    the instruction is fixed English text (the same for every language)."""
    try:
        used = {n for _, n, _, _ in string.Formatter().parse(template.instruction) if n is not None}
    except ValueError as exc:
        raise TemplateError(
            f"{where}: {template.task}.instruction {template.instruction!r} is not a valid template: {exc}"
        ) from None
    if used:
        raise TemplateError(f"{where}: {template.task}.instruction is fixed English text; it may not use {sorted(used)}")
    check_input(template, template.input, "input", where, noun="prompts")
    check_answers(template, where, "verbalisation", ("max_new_tokens",))
    until = [template.until] if isinstance(template.until, str) else list(template.until or ())
    if not all(isinstance(u, str) and u for u in until):
        raise TemplateError(f"{where}: {template.task}.until must be a list of non-empty strings, got {template.until!r}")
    if not isinstance(template.stock, bool):
        raise TemplateError(f"{where}: {template.task}.stock must be true or false, got {template.stock!r}")
    if template.stock and template.task not in STOCK_TASKS:
        raise TemplateError(f"{where}: {template.task}.stock: lm-eval has no stock task for it; stock tasks: {', '.join(STOCK_TASKS)}")
    return replace(template, until=tuple(until))


FAMILY = TemplateFamily(
    noun="prompt", presets=PRESETS, default=DEFAULT_PRESET, tasks=PROMPT_TASKS, fields=frozenset(_FIELDS), check=check,
    spec_option="xtreme_prompts=", task_option="xtreme_prompt_", quote_example="quote them (e.g. '1': 'yes')",
)


def load_prompts(spec: str | Mapping[str, Any] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> dict[str, PromptTemplate]:
    """Prompt templates for every prompted task: ``spec`` is ``None`` (the default
    preset), a preset name, a YAML/JSON file or a mapping shaped like it;
    ``overrides`` (``{task: input string or mapping}``) are applied last."""
    return load_family(spec, overrides, FAMILY)


# --------------------------------------------------------------------------- rendering documents
def query_text(template: PromptTemplate, args: tuple, lang: str) -> str:
    """The input block for one request (its arguments as :mod:`harness_ext.requests` builds them)."""
    kind = template.kind
    if kind == "classify":
        return template.render(text_a=args[0], text_b=args[1] or "", lang=lang)
    if kind == "tag":
        return template.render(text=" ".join(args[1]), lang=lang)
    if kind == "choose":
        return template.render(**choose_fields(args[0], args[1]), lang=lang)
    return template.render(question=args[0], context=args[1], lang=lang)


def demo_text(template: PromptTemplate, doc: Mapping[str, Any]) -> tuple[str, str]:
    """(input block, gold answer) of one English demonstration document."""
    kind = template.kind
    if kind == "classify":
        return template.render(text_a=doc["text_a"], text_b=doc.get("text_b") or "", lang="en"), template.targets[doc["label"]]
    if kind == "tag":
        from harness_ext.adapters.text2text.templates import render_tag_target

        answer = render_tag_target(list(doc["words"]), list(doc["tags"]), template)  # type: ignore[arg-type]
        return template.render(text=" ".join(doc["words"]), lang="en"), answer or template.empty
    answers = doc["answers"]["text"]
    return template.render(question=doc["question"], context=doc["context"], lang="en"), answers[0] if answers else ""
