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
QA         ``Context: {context}\\nQuestion: {question}\\nAnswer:``       the answer text
=========  ===========================================================  =========================

Override from a YAML/JSON file or a mapping (``--model_args ...,xtreme_prompts=FILE``),
starting from the ``default`` preset::

    preset: default
    pawsx:
      instruction: "Are the two sentences paraphrases? Answer yes or no."
      targets: {"0": "no", "1": "yes"}
    udpos: {max_new_tokens: 512}

Fields per task: ``instruction``, ``input`` (placeholders as in
:mod:`harness_ext.adapters.templates`: ``{text_a} {text_b}`` / ``{text}`` /
``{question} {context}``, and ``{lang}``), ``targets`` (classification: label ->
verbalisation), ``format`` / ``separator`` / ``empty`` (tagging: the
text-to-text formats of :mod:`harness_ext.adapters.t2t_parse`, and the word
the model writes for "no entity"), ``max_new_tokens`` (``None``: the kind's
default; for tagging it grows with the sentence).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from harness_ext.adapters.t2t_parse import TAG_FORMATS, normalize
from harness_ext.adapters.templates import PLACEHOLDERS, TemplateError
from xtreme_tasks.table import TASKS, UPOS_TAGS

#: generation budget per request kind when a template sets none (tagging: from the sentence)
DEFAULT_MAX_NEW_TOKENS: dict[str, int | None] = {"classify": 16, "tag": None, "extract_span": 64}
PROMPT_TASKS: tuple[str, ...] = tuple(n for n, s in TASKS.items() if s.request_kind in PLACEHOLDERS)


@dataclass(frozen=True)
class PromptTemplate:
    """How one task's documents become an LLM prompt, and what a right answer looks like."""

    task: str
    instruction: str
    input: str
    #: classification: task label name -> the verbalisation scored / expected
    targets: Mapping[str, str] = field(default_factory=dict)
    #: tagging: ``word_tags`` | ``spans`` | ``tags`` (see harness_ext.adapters.t2t_parse)
    format: str = ""
    separator: str = " $$ "
    #: tagging: what the model writes for a sentence with nothing to tag (spans format)
    empty: str = ""
    max_new_tokens: int | None = None

    @property
    def kind(self) -> str:
        return TASKS[self.task].request_kind

    def render(self, **values: str) -> str:
        return self.input.format(**values)

    def budget(self) -> int | None:
        return self.max_new_tokens if self.max_new_tokens is not None else DEFAULT_MAX_NEW_TOKENS[self.kind]


_QA = PromptTemplate(
    "xquad",
    "Answer the question with the shortest span of words copied exactly from the context.",
    "Context: {context}\nQuestion: {question}\nAnswer:",
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
}
PRESETS: dict[str, dict[str, PromptTemplate]] = {"default": DEFAULT}
DEFAULT_PRESET = "default"
_FIELDS = {f.name for f in fields(PromptTemplate)} - {"task"}


def check(template: PromptTemplate, where: str) -> PromptTemplate:
    """Refuse placeholders the task cannot fill, missing or clashing targets, unknown formats."""
    spec = TASKS[template.task]
    allowed = PLACEHOLDERS[spec.request_kind]
    for name in ("input", "instruction"):
        text = getattr(template, name)
        try:
            used = {n for _, n, _, _ in string.Formatter().parse(text) if n is not None}
        except ValueError as exc:
            raise TemplateError(f"{where}: {template.task}.{name} {text!r} is not a valid template: {exc}") from None
        if name == "instruction":
            if used:
                raise TemplateError(f"{where}: {template.task}.instruction is fixed English text; it may not use {sorted(used)}")
            continue
        unknown = sorted(used - allowed)
        if unknown or "" in used:
            raise TemplateError(
                f"{where}: {template.task}.input uses {unknown or ['{}']}; {spec.title} prompts may use "
                + ", ".join("{" + p + "}" for p in sorted(allowed))
            )
    if spec.request_kind == "classify":
        missing = [label for label in spec.labels if label not in template.targets]
        extra = sorted(set(template.targets) - set(spec.labels))
        if missing or extra:
            raise TemplateError(
                f"{where}: {template.task}.targets must map every label {list(spec.labels)} to a verbalisation; "
                f"missing {missing}, unknown {extra}"
            )
        texts = [normalize(str(t)) for t in template.targets.values()]
        if len(set(texts)) != len(texts) or not all(texts):
            raise TemplateError(f"{where}: {template.task}.targets must be distinct, non-empty texts: {dict(template.targets)}")
    if spec.request_kind == "tag" and template.format not in TAG_FORMATS:
        raise TemplateError(f"{where}: {template.task}.format {template.format!r}; expected one of {', '.join(TAG_FORMATS)}")
    value = template.max_new_tokens
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise TemplateError(f"{where}: {template.task}.max_new_tokens must be a positive integer, got {value!r}")
    return template


def _override(base: PromptTemplate, body: Any, where: str) -> PromptTemplate:
    if isinstance(body, str):
        body = {"input": body}
    if not isinstance(body, Mapping):
        raise TemplateError(f"{where}: {base.task}: expected a mapping of {sorted(_FIELDS)} or an input string")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise TemplateError(f"{where}: {base.task}: unknown field(s) {unknown}; expected some of {sorted(_FIELDS)}")
    values = dict(body)
    if "targets" in values:
        targets = values["targets"]
        if not isinstance(targets, Mapping):
            raise TemplateError(f"{where}: {base.task}.targets must map label names to verbalisations")
        booleans = sorted(str(k) for k, v in targets.items() if isinstance(v, bool) or isinstance(k, bool))
        if booleans:
            raise TemplateError(
                f"{where}: {base.task}.targets {booleans}: YAML reads yes/no/on/off/true/false as booleans; "
                "quote them (e.g. '1': 'yes')"
            )
        values["targets"] = {str(k): str(v) for k, v in targets.items()}
    return replace(base, **values)


def _read_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    import yaml

    return yaml.safe_load(text)


def load_prompts(spec: str | Mapping[str, Any] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> dict[str, PromptTemplate]:
    """Prompt templates for every prompted task: ``spec`` is ``None`` (the default
    preset), a preset name, a YAML/JSON file or a mapping shaped like it;
    ``overrides`` (``{task: input string or mapping}``) are applied last."""
    where = "prompts"
    body: Any = {}
    if spec is None or (isinstance(spec, str) and spec in PRESETS):
        preset = spec or DEFAULT_PRESET
    elif isinstance(spec, str):
        path = Path(spec).expanduser()
        where = str(path)
        if not path.is_file():
            raise TemplateError(f"xtreme_prompts={spec}: not a prompt preset ({', '.join(PRESETS)}) nor an existing file")
        try:
            body = _read_file(path) or {}
        except Exception as exc:  # noqa: BLE001 - YAML/JSON/OS errors
            raise TemplateError(f"{path}: cannot read prompts: {exc}") from None
        preset = str(body.get("preset", DEFAULT_PRESET)) if isinstance(body, Mapping) else DEFAULT_PRESET
    elif isinstance(spec, Mapping):
        body = spec
        preset = str(spec.get("preset", DEFAULT_PRESET))
    else:
        raise TemplateError(f"prompts: expected a preset name, a file or a mapping, got {type(spec).__name__}")
    if not isinstance(body, Mapping):
        raise TemplateError(f"{where}: expected a mapping of task -> prompt, got {type(body).__name__}")
    if preset not in PRESETS:
        raise TemplateError(f"{where}: unknown prompt preset {preset!r}; expected one of {', '.join(PRESETS)}")
    templates = dict(PRESETS[preset])
    for key, value in body.items():
        if key == "preset":
            continue
        if key not in templates:
            raise TemplateError(f"{where}: unknown task {key!r}; expected preset or one of {', '.join(PROMPT_TASKS)}")
        templates[key] = _override(templates[key], value, where)
    for key, value in (overrides or {}).items():
        if key not in templates:
            raise TemplateError(f"xtreme_prompt_{key}: unknown task {key!r}; expected one of {', '.join(PROMPT_TASKS)}")
        templates[key] = _override(templates[key], value, "--model_args")
    return {task: check(t, where) for task, t in templates.items()}


# --------------------------------------------------------------------------- rendering documents
def query_text(template: PromptTemplate, args: tuple, lang: str) -> str:
    """The input block for one request (its arguments as :mod:`harness_ext.requests` builds them)."""
    kind = template.kind
    if kind == "classify":
        return template.render(text_a=args[0], text_b=args[1] or "", lang=lang)
    if kind == "tag":
        return template.render(text=" ".join(args[1]), lang=lang)
    return template.render(question=args[0], context=args[1], lang=lang)


def demo_text(template: PromptTemplate, doc: Mapping[str, Any]) -> tuple[str, str]:
    """(input block, gold answer) of one English demonstration document."""
    kind = template.kind
    if kind == "classify":
        return template.render(text_a=doc["text_a"], text_b=doc.get("text_b") or "", lang="en"), template.targets[doc["label"]]
    if kind == "tag":
        from harness_ext.adapters.templates import render_tag_target

        answer = render_tag_target(list(doc["words"]), list(doc["tags"]), template)  # type: ignore[arg-type]
        return template.render(text=" ".join(doc["words"]), lang="en"), answer or template.empty
    answers = doc["answers"]["text"]
    return template.render(question=doc["question"], context=doc["context"], lang="en"), answers[0] if answers else ""
