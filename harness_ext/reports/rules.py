"""XTREME's scoring rules as pure functions over numbers already computed per language.

Why a module of its own: the rules (a task's score is the plain mean over its
*official* languages; QA scores (EM + F1) / 2; the XTREME score is the mean of the
nine task scores and exists only when all nine are there; category scores need all
tasks of the category) are applied to two kinds of input -- prediction folders
(:mod:`harness_ext.reports.official`) and lm-eval results JSON
(:mod:`harness_ext.reports.results`) -- and must not drift apart. Everything here
reads the task table (:mod:`xtreme_tasks.table`); nothing reads files.

Incomplete input is never averaged over less: a task with a language missing has
no score (``None``), and so has the XTREME score when any task is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from xtreme_tasks.table import TASK_ORDER, TASKS, TaskSpec

#: per-language metrics of one task: ``{lang: {metric: value}}`` (0-100 scale)
PerLanguage = Mapping[str, Mapping[str, float]]


def is_number(value: object) -> bool:
    """A real, finite number (NaN marks a metric that could not be computed, e.g. withheld gold)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def language_mean(spec: TaskSpec, per_language: PerLanguage, metric: str) -> float | None:
    """Plain mean of ``metric`` over the task's official languages; ``None`` if any is missing.

    Extra languages (``spec.extra_languages``, e.g. XQuAD ``ro``) are outside the score
    and ignored even when present.
    """
    values = [per_language.get(lang, {}).get(metric) for lang in spec.languages]
    if not all(is_number(v) for v in values):
        return None
    return math.fsum(values) / len(values)  # type: ignore[arg-type]


def missing_languages(spec: TaskSpec, per_language: PerLanguage) -> tuple[str, ...]:
    """Official languages lacking a finite value for one of the task's score metrics."""
    return tuple(
        lang for lang in spec.languages
        if not all(is_number(per_language.get(lang, {}).get(m)) for m in spec.score_metrics)
    )


def score_from_averages(spec: TaskSpec, averages: Mapping[str, float | None]) -> float | None:
    """The task's XTREME score from its language means: the mean of ``spec.score_metrics``
    (accuracy or F1 for most tasks, (EM + F1) / 2 for QA); ``None`` if one is missing."""
    values = [averages.get(m) for m in spec.score_metrics]
    if not all(is_number(v) for v in values):
        return None
    return math.fsum(values) / len(values)  # type: ignore[arg-type]


def language_score(spec: TaskSpec, metrics: Mapping[str, float]) -> float | None:
    """One language's contribution to the task score (e.g. (EM + F1) / 2 for QA)."""
    return score_from_averages(spec, metrics)


def xtreme_score(task_scores: Mapping[str, float | None]) -> float | None:
    """Mean of all nine task scores; ``None`` unless every task of the benchmark has one."""
    values = [task_scores.get(name) for name in TASK_ORDER]
    if not all(is_number(v) for v in values):
        return None
    return math.fsum(values) / len(values)  # type: ignore[arg-type]


def category_tasks() -> dict[str, tuple[str, ...]]:
    """Category -> its tasks, in benchmark order (classification, structured_prediction, qa, retrieval)."""
    out: dict[str, list[str]] = {}
    for name in TASK_ORDER:
        out.setdefault(TASKS[name].category, []).append(name)
    return {category: tuple(names) for category, names in out.items()}


def category_scores(task_scores: Mapping[str, float | None]) -> dict[str, float | None]:
    """Mean task score per category; ``None`` for a category with a task missing."""
    out: dict[str, float | None] = {}
    for category, names in category_tasks().items():
        values = [task_scores.get(name) for name in names]
        out[category] = math.fsum(values) / len(values) if all(is_number(v) for v in values) else None  # type: ignore[arg-type]
    return out


def missing_tasks(task_scores: Mapping[str, float | None]) -> tuple[str, ...]:
    """Tasks of the XTREME score without a score, in benchmark order."""
    return tuple(name for name in TASK_ORDER if not is_number(task_scores.get(name)))


# ----------------------------------------------------------------------------- one system


@dataclass(frozen=True)
class TaskResult:
    """One task of one system: its languages' metrics, their means, and its score (or why none)."""

    name: str
    per_language: dict[str, dict[str, float]]
    averages: dict[str, float | None]
    score: float | None
    missing_languages: tuple[str, ...] = ()

    @property
    def spec(self) -> TaskSpec:
        return TASKS[self.name]

    @property
    def complete(self) -> bool:
        return self.score is not None


def score_task(name: str, per_language: PerLanguage) -> TaskResult:
    """Apply the task rules to ``{lang: {metric: value}}`` (extra languages are kept but not averaged)."""
    spec = TASKS[name]
    metrics = list(spec.score_metrics) + [m for m in spec.metrics if m not in spec.score_metrics]
    for values in per_language.values():
        metrics += [m for m in values if m not in metrics]
    averages = {m: language_mean(spec, per_language, m) for m in metrics}
    return TaskResult(
        name=name,
        per_language={lang: dict(values) for lang, values in per_language.items()},
        averages=averages,
        score=score_from_averages(spec, averages),
        missing_languages=missing_languages(spec, per_language),
    )


@dataclass(frozen=True)
class SystemScores:
    """A leaderboard row: every task found for a system, scored with the official rules."""

    name: str
    tasks: dict[str, TaskResult]
    notes: tuple[str, ...] = field(default=())
    #: how the numbers were obtained (fine-tuned, text-to-text, prompted LLM, k-shot); several = a mix
    protocols: tuple[str, ...] = field(default=())

    @property
    def mixed(self) -> bool:
        return len(set(self.protocols)) > 1

    @property
    def task_scores(self) -> dict[str, float | None]:
        return {name: self.tasks[name].score if name in self.tasks else None for name in TASK_ORDER}

    @property
    def xtreme(self) -> float | None:
        """The mean of the 9 task scores; none for a row mixing protocols (not comparable numbers)."""
        return None if self.mixed else xtreme_score(self.task_scores)

    @property
    def categories(self) -> dict[str, float | None]:
        return category_scores(self.task_scores)

    @property
    def missing(self) -> tuple[str, ...]:
        return missing_tasks(self.task_scores)

    @property
    def complete(self) -> bool:
        return not self.missing

    def status(self) -> str:
        """``complete``, or ``incomplete: ...`` naming absent tasks and tasks lacking languages."""
        if self.mixed:
            return "mixed protocols: " + "; ".join(self.protocols)
        if self.complete:
            return "complete"
        parts = []
        absent = [n for n in self.missing if n not in self.tasks]
        partial = [n for n in self.missing if n in self.tasks]
        if absent:
            parts.append("no " + ", ".join(absent))
        for name in partial:
            langs = self.tasks[name].missing_languages
            parts.append(f"{name} lacks {', '.join(langs) if langs else 'a score metric'}")
        return "incomplete: " + "; ".join(parts)


def score_system(name: str, metrics: Mapping[str, PerLanguage], notes: Iterable[str] = (),
                 protocols: Iterable[str] = ()) -> SystemScores:
    """``{task: {lang: {metric: value}}}`` -> a scored row (tasks outside the table are an error)."""
    unknown = sorted(set(metrics) - set(TASKS))
    if unknown:
        raise KeyError(f"unknown XTREME task(s) {unknown}; known: {', '.join(TASK_ORDER)}")
    tasks = {task: score_task(task, metrics[task]) for task in TASK_ORDER if task in metrics}
    return SystemScores(name=name, tasks=tasks, notes=tuple(notes), protocols=tuple(protocols))
