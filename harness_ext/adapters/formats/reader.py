"""The template reader shared by mT5 templates (:mod:`harness_ext.adapters.text2text.templates`)
and LLM prompts (:mod:`harness_ext.adapters.prompted.prompts`).

Both are frozen dataclasses with ``task``, ``input`` and ``max_new_tokens``, read from a
preset, a YAML/JSON file or a mapping and overridden per task; one reader gives both the
same checks and the same one-line messages. What differs is a :class:`TemplateFamily`.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from harness_ext.adapters.formats.parse import TAG_FORMATS, normalize
from xtreme_tasks.table import TABLE as TASKS  # XTREME's tasks and XTREME-R's (XCOPA)

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "classify": frozenset({"text_a", "text_b", "lang"}),
    "tag": frozenset({"text", "lang"}),
    "extract_span": frozenset({"question", "context", "lang"}),
    # choose: the request's first segment and its candidates in order (XCOPA: two)
    "choose": frozenset({"context", "choice1", "choice2", "lang"}),
}
#: generation budget per request kind when a template sets none; ``None`` for tagging
#: means "from the input": its tokens plus 4 per word plus 8 (output repeats the words)
DEFAULT_MAX_NEW_TOKENS: dict[str, int | None] = {"classify": 16, "tag": None, "extract_span": 64, "choose": 16}


def choose_fields(context: str, choices: Any) -> dict[str, str]:
    """Placeholders of a ``choose`` request: ``{context}`` and ``{choice1}``, ``{choice2}``, ..."""
    return {"context": context, **{f"choice{i}": str(c) for i, c in enumerate(choices, 1)}}


class TemplateError(ValueError):
    """A template preset, file or override is unusable; the message names where and why."""


class TemplateMethods:
    """What mT5 templates and LLM prompts share: the request kind, rendering and the
    generation budget (both are frozen dataclasses with ``task``, ``input`` and
    ``max_new_tokens``)."""

    task: str
    input: str
    max_new_tokens: int | None

    @property
    def kind(self) -> str:
        return TASKS[self.task].request_kind

    def render(self, **values: str) -> str:
        """The model input for one request."""
        return self.input.format(**values)

    def budget(self) -> int | None:
        return self.max_new_tokens if self.max_new_tokens is not None else DEFAULT_MAX_NEW_TOKENS[self.kind]


def check_input(template: Any, text: str, name: str, where: str, noun: str = "templates") -> None:
    """Refuse a malformed format string, or placeholders the task cannot fill."""
    spec = TASKS[template.task]
    allowed = PLACEHOLDERS[spec.request_kind]
    try:
        used = {n for _, n, _, _ in string.Formatter().parse(text) if n is not None}
    except ValueError as exc:
        raise TemplateError(f"{where}: {template.task}.{name} {text!r} is not a valid template: {exc}") from None
    unknown = sorted(used - allowed)
    if unknown or "" in used:
        raise TemplateError(
            f"{where}: {template.task}.{name} uses {unknown or ['{}']}; {spec.title} {noun} may use "
            + ", ".join("{" + p + "}" for p in sorted(allowed))
        )


def check_answers(template: Any, where: str, target_noun: str, positive: tuple[str, ...]) -> None:
    """Checks shared by mT5 templates and LLM prompts: every label has one distinct,
    non-empty target; tagging formats are known; token budgets are positive integers."""
    spec = TASKS[template.task]
    # choose: targets are optional (a prompted LLM scores the candidates' own texts)
    if spec.request_kind == "classify" or (spec.request_kind == "choose" and template.targets):
        missing = [label for label in spec.labels if label not in template.targets]
        extra = sorted(set(template.targets) - set(spec.labels))
        if missing or extra:
            raise TemplateError(
                f"{where}: {template.task}.targets must map every label {list(spec.labels)} to a {target_noun}; "
                f"missing {missing}, unknown {extra}"
            )
        texts = [normalize(str(t)) for t in template.targets.values()]
        if len(set(texts)) != len(texts) or not all(texts):
            raise TemplateError(f"{where}: {template.task}.targets must be distinct, non-empty texts: {dict(template.targets)}")
    if spec.request_kind == "tag" and template.format not in TAG_FORMATS:
        raise TemplateError(f"{where}: {template.task}.format {template.format!r}; expected one of {', '.join(TAG_FORMATS)}")
    for name in positive:
        value = getattr(template, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise TemplateError(f"{where}: {template.task}.{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class TemplateFamily:
    """What differs between reading mT5 templates and LLM prompts; one reader serves both."""

    noun: str  # "template" | "prompt"
    presets: Mapping[str, Mapping[str, Any]]
    default: str
    tasks: tuple[str, ...]
    fields: frozenset[str]
    check: Callable[[Any, str], Any]
    spec_option: str = ""  # how a spec that is neither preset nor file is named, e.g. "xtreme_prompts="
    task_option: str = "template_"  # prefix of the per-task --model_args override
    quote_example: str = "quote the target texts (e.g. entailment: 'yes')"


def override(base: Any, body: Any, where: str, family: TemplateFamily) -> Any:
    """``base`` with the fields of ``body`` (a mapping, or a bare input string)."""
    if isinstance(body, str):
        body = {"input": body}
    if not isinstance(body, Mapping):
        raise TemplateError(f"{where}: {base.task}: expected a mapping of {sorted(family.fields)} or an input string")
    unknown = sorted(set(body) - family.fields)
    if unknown:
        raise TemplateError(f"{where}: {base.task}: unknown field(s) {unknown}; expected some of {sorted(family.fields)}")
    values = dict(body)
    if "targets" in values:
        targets = values["targets"]
        if not isinstance(targets, Mapping):
            raise TemplateError(f"{where}: {base.task}.targets must map label names to texts")
        booleans = sorted(str(k) for k, v in targets.items() if isinstance(v, bool) or isinstance(k, bool))
        if booleans:
            raise TemplateError(
                f"{where}: {base.task}.targets {booleans}: YAML reads yes/no/on/off/true/false as booleans; "
                + family.quote_example
            )
        values["targets"] = {str(k): str(v) for k, v in targets.items()}
    return replace(base, **values)


def _read_file(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    import yaml

    return yaml.safe_load(text)


def load_family(spec: str | Mapping[str, Any] | None, overrides: Mapping[str, Any] | None,
                family: TemplateFamily) -> dict[str, Any]:
    """Every task's template of ``family``: ``spec`` is ``None`` (the default preset), a
    preset name, a YAML/JSON file or a mapping shaped like it; ``overrides``
    (``{task: input string or mapping}``) are applied last."""
    noun = family.noun
    where = f"{noun}s"
    body: Any = {}
    if spec is None or (isinstance(spec, str) and spec in family.presets):
        preset = spec or family.default
    elif isinstance(spec, str):
        path = Path(spec).expanduser()
        where = str(path)
        if not path.is_file():
            raise TemplateError(
                f"{family.spec_option}{spec}: not a {noun} preset ({', '.join(family.presets)}) nor an existing file"
            )
        try:
            body = _read_file(path) or {}
        except RecursionError:
            raise TemplateError(f"{path}: cannot read {noun}s: nested too deeply; fix the file's structure") from None
        except Exception as exc:  # noqa: BLE001 - YAML/JSON/OS errors
            from harness_ext.errors import yaml_error_line

            raise TemplateError(f"{path}: cannot read {noun}s: {yaml_error_line(exc)}") from None
        preset = str(body.get("preset", family.default)) if isinstance(body, Mapping) else family.default
    elif isinstance(spec, Mapping):
        body = spec
        preset = str(spec.get("preset", family.default))
    else:
        raise TemplateError(f"{noun}s: expected a preset name, a file or a mapping, got {type(spec).__name__}")
    if not isinstance(body, Mapping):
        raise TemplateError(f"{where}: expected a mapping of task -> {noun}, got {type(body).__name__}")
    if preset not in family.presets:
        raise TemplateError(
            f"{where}: unknown {noun} preset {preset!r}; expected one of {', '.join(family.presets)} or a file"
        )
    templates = dict(family.presets[preset])
    for key, value in body.items():
        if key == "preset":
            continue
        if key not in templates:
            raise TemplateError(f"{where}: unknown task {key!r}; expected preset or one of {', '.join(family.tasks)}")
        templates[key] = override(templates[key], value, where, family)
    for key, value in (overrides or {}).items():
        if key not in templates:
            raise TemplateError(
                f"{family.task_option}{key}: unknown task {key!r}; expected one of {', '.join(family.tasks)}"
            )
        templates[key] = override(templates[key], value, "--model_args", family)
    return {task: family.check(t, where) for task, t in templates.items()}
