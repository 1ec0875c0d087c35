"""Input and target templates for text-to-text (mT5) checkpoints.

A seq2seq checkpoint only works with the exact text format it was fine-tuned on, so
the format is part of the checkpoint's description (``templates:`` of its entry in
``checkpoints.yaml``, or ``templates=`` in ``--model_args``), not of the task. The
default preset ``mt5`` is what google-research/multilingual-t5 fine-tunes with
(``preprocessors.py`` / ``tasks.py``):

=========  ==============================================  =====================================
task       input                                           target
=========  ==============================================  =====================================
xnli       ``xnli: premise: {text_a} hypothesis: {text_b}``  ``0`` / ``1`` / ``2`` (entailment,
                                                           neutral, contradiction: TFDS label ids)
pawsx      ``paws sentence1: {text_a} sentence2: {text_b}``  ``different_meaning`` / ``paraphrase``
panx       ``tag: {text}``                                 ``PER: John Smith $$ LOC: Paris``
                                                           (``""`` when there is no entity)
udpos      ``pos: {text}`` (ours: mT5 has no POS task)     ``The/DET cat/NOUN`` (``word_tags``)
xcopa      ``xcopa: {context} choice1: {choice1}           ``choice1`` / ``choice2``
           choice2: {choice2}`` (ours: mT5 has no XCOPA
           task; ``{context}`` = "{premise} What was
           the {question}?")
xquad,     ``question: {question} context: {context}``     the answer text; question and context
mlqa,                                                      punctuation-padded as mT5 does
tydiqa                                                     (``pad_punctuation: true``)
=========  ==============================================  =====================================

Preset ``mt5-words`` is the same with XNLI's label words (``entailment`` ...) as
targets, the other common fine-tuning choice. A template file (YAML or JSON) starts
from a preset and overrides per task::

    preset: mt5                     # optional, default mt5
    xnli:
      input: "premise: {text_a} hypothesis: {text_b}"
      targets: {entailment: yes, neutral: maybe, contradiction: no}
    panx: {format: spans, separator: " $$ ", max_new_tokens: 256}

Placeholders: classification ``{text_a} {text_b}``, tagging ``{text}`` (the words
joined by single spaces), QA ``{question} {context}``, XCOPA ``{context} {choice1} {choice2}``;
all tasks ``{lang}``.
Per task also: ``max_new_tokens`` (``None`` = the task default, see
:data:`DEFAULT_MAX_NEW_TOKENS`) and ``max_input_tokens`` (mT5 fine-tunes with 1024).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from harness_ext.adapters.formats.reader import (DEFAULT_MAX_NEW_TOKENS, PLACEHOLDERS, TemplateError,  # noqa: F401
                                                 TemplateFamily, TemplateMethods, check_answers, check_input,
                                                 load_family)
from xtreme_tasks.table import TABLE as TASKS  # XTREME's tasks and XTREME-R's (XCOPA)

#: mT5 fine-tuning input length (multilingual_t5/gin/sequence_lengths/*.gin)
DEFAULT_MAX_INPUT_TOKENS = 1024
TEXT_TASKS: tuple[str, ...] = tuple(name for name, spec in TASKS.items() if spec.request_kind in PLACEHOLDERS)


@dataclass(frozen=True)
class TaskTemplate(TemplateMethods):
    """How one task's requests become model input, and what the model answers."""

    task: str
    input: str
    #: classification: task label name -> target text
    targets: Mapping[str, str] = field(default_factory=dict)
    #: tagging: ``spans`` | ``word_tags`` | ``tags`` (see harness_ext.adapters.formats.parse)
    format: str = ""
    separator: str = " $$ "
    #: QA: question and context were punctuation-padded at fine-tuning (mT5's xquad preprocessor)
    pad_punctuation: bool = False
    max_new_tokens: int | None = None
    max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS



_QA = "question: {question} context: {context}"
MT5: dict[str, TaskTemplate] = {
    "xnli": TaskTemplate("xnli", "xnli: premise: {text_a} hypothesis: {text_b}",
                         targets={"entailment": "0", "neutral": "1", "contradiction": "2"}),
    "pawsx": TaskTemplate("pawsx", "paws sentence1: {text_a} sentence2: {text_b}",
                          targets={"0": "different_meaning", "1": "paraphrase"}),
    "panx": TaskTemplate("panx", "tag: {text}", format="spans"),
    "udpos": TaskTemplate("udpos", "pos: {text}", format="word_tags"),
    "xquad": TaskTemplate("xquad", _QA, pad_punctuation=True),
    "mlqa": TaskTemplate("mlqa", _QA, pad_punctuation=True),
    "tydiqa": TaskTemplate("tydiqa", _QA, pad_punctuation=True),
    # ours (mT5 has no XCOPA task): the multiple-choice model's first segment, then the candidates
    "xcopa": TaskTemplate("xcopa", "xcopa: {context} choice1: {choice1} choice2: {choice2}",
                          targets={"choice1": "choice1", "choice2": "choice2"}),
}
PRESETS: dict[str, dict[str, TaskTemplate]] = {
    "mt5": MT5,
    "mt5-words": {**MT5, "xnli": replace(MT5["xnli"], targets={label: label for label in TASKS["xnli"].labels})},
}
DEFAULT_PRESET = "mt5"
_FIELDS = {f.name for f in fields(TaskTemplate)} - {"task"}


def check(template: TaskTemplate, where: str) -> TaskTemplate:
    """Refuse placeholders the task cannot fill, missing or clashing targets, unknown formats."""
    check_input(template, template.input, "input", where)
    check_answers(template, where, "target text", ("max_new_tokens", "max_input_tokens"))
    return template


MT5_FAMILY = TemplateFamily(
    noun="template", presets=PRESETS, default=DEFAULT_PRESET, tasks=TEXT_TASKS, fields=frozenset(_FIELDS), check=check,
)


def load_templates(spec: str | Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> dict[str, TaskTemplate]:
    """Templates for every text-to-text task.

    ``spec``: ``None`` (the ``mt5`` preset), a preset name, a YAML/JSON file, or a
    mapping shaped like that file. ``overrides``: ``{task: input string or mapping}``
    applied last (e.g. from ``--model_args template_xnli=...``).
    """
    return load_family(spec, overrides, MT5_FAMILY)


# --------------------------------------------------------------------------- targets (for fine-tuning data)
def render_tag_target(words: list[str], tags: list[str], template: TaskTemplate) -> str:
    """The target text a tagging checkpoint is trained to produce (inverse of the parser),
    so fine-tuning data and evaluation can never disagree on the format."""
    if template.format == "tags":
        return " ".join(tags)
    if template.format == "word_tags":
        return " ".join(f"{w}/{t}" for w, t in zip(words, tags))
    from harness_ext.adapters.formats.parse import NO_TAG, split_tag

    spans: list[tuple[str, list[str]]] = []
    previous: str | None = None  # type of the span the previous word belongs to
    for word, tag in zip(words, tags):
        if tag == NO_TAG:
            previous = None
            continue
        prefix, type_ = split_tag(tag)
        # I-X (or a bare tag, e.g. UPOS) continues an open span of the same type; B-X opens one
        if prefix != "B" and previous == type_:
            spans[-1][1].append(word)
        else:
            spans.append((type_, [word]))
        previous = type_
    return template.separator.join(f"{t}: {' '.join(ws)}" for t, ws in spans)


def render_target(template: TaskTemplate, label: str | None = None, words: list[str] | None = None,
                  tags: list[str] | None = None, answer: str | None = None) -> str:
    """Target text for one training example of ``template``'s task."""
    if template.kind in ("classify", "choose"):
        return template.targets[str(label)]
    if template.kind == "tag":
        return render_tag_target(list(words or []), list(tags or []), template)
    if template.pad_punctuation and answer is not None:
        from harness_ext.adapters.formats.parse import pad_punctuation

        return pad_punctuation(answer).text.strip()
    return str(answer or "")
