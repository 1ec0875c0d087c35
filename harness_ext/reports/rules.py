"""XTREME's and XTREME-R's scoring rules as pure functions over numbers already computed per language.

Why a module of its own: the rules (a task's score is the plain mean over its
*official* languages; QA scores (EM + F1) / 2; the XTREME score is the mean of the
nine task scores and exists only when all nine are there; category scores need all
tasks of the category) are applied to two kinds of input -- prediction folders
(:mod:`harness_ext.reports.official`) and lm-eval results JSON
(:mod:`harness_ext.reports.results`) -- and must not drift apart. Everything here
reads the task table (:mod:`xtreme_tasks.table`); nothing reads files.

Incomplete input is never averaged over less: a task with a language missing has
no score (``None``), and so has the XTREME score when any task is missing.

Every function takes the benchmark version (``xtreme``, the default, or ``xtreme-r``:
``xtreme_tasks.table.BENCHMARKS``), which decides the tasks, the languages each task is
averaged over and the categories, as the official evaluate.py ``--xtreme_version`` does.
A task's score metric is the table's (accuracy, F1, (EM + F1) / 2 for QA, mAP@20 for
LAReQA and Mewsli-X) in both versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from xtreme_tasks.table import DEFAULT_BENCHMARK, TABLE, TaskSpec, get_benchmark

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


def xtreme_score(task_scores: Mapping[str, float | None], benchmark: str = DEFAULT_BENCHMARK) -> float | None:
    """Mean of all the benchmark's task scores (XTREME: nine, XTREME-R: ten); ``None`` unless
    every task of the benchmark has one (evaluate.py shows the overall score only then)."""
    values = [task_scores.get(name) for name in get_benchmark(benchmark).tasks]
    if not all(is_number(v) for v in values):
        return None
    return math.fsum(values) / len(values)  # type: ignore[arg-type]


def category_tasks(benchmark: str = DEFAULT_BENCHMARK) -> dict[str, tuple[str, ...]]:
    """Category -> its tasks (XTREME: classification, structured_prediction, qa, retrieval;
    XTREME-R adds multi_choice and leaves LAReQA out of every category, as evaluate.py does)."""
    return dict(get_benchmark(benchmark).categories)


def category_scores(task_scores: Mapping[str, float | None], benchmark: str = DEFAULT_BENCHMARK) -> dict[str, float | None]:
    """Mean task score per category; ``None`` for a category with a task missing."""
    out: dict[str, float | None] = {}
    for category, names in category_tasks(benchmark).items():
        values = [task_scores.get(name) for name in names]
        out[category] = math.fsum(values) / len(values) if all(is_number(v) for v in values) else None  # type: ignore[arg-type]
    return out


def missing_tasks(task_scores: Mapping[str, float | None], benchmark: str = DEFAULT_BENCHMARK) -> tuple[str, ...]:
    """Tasks of the benchmark's score without a score, in benchmark order."""
    return tuple(name for name in get_benchmark(benchmark).tasks if not is_number(task_scores.get(name)))


# ----------------------------------------------------------------------------- one system


@dataclass(frozen=True)
class TaskResult:
    """One task of one system: its languages' metrics, their means, and its score (or why none)."""

    name: str
    per_language: dict[str, dict[str, float]]
    averages: dict[str, float | None]
    score: float | None
    missing_languages: tuple[str, ...] = ()
    benchmark: str = DEFAULT_BENCHMARK

    @property
    def spec(self) -> TaskSpec:
        """The task as its benchmark scores it (``languages`` = the averaged ones)."""
        return get_benchmark(self.benchmark).spec(self.name)

    @property
    def complete(self) -> bool:
        return self.score is not None


def score_task(name: str, per_language: PerLanguage, benchmark: str = DEFAULT_BENCHMARK) -> TaskResult:
    """Apply the task rules to ``{lang: {metric: value}}`` (extra languages are kept but not averaged)."""
    spec = get_benchmark(benchmark).spec(name)
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
        benchmark=benchmark,
    )


@dataclass(frozen=True)
class SystemScores:
    """A leaderboard row of one benchmark version: every task of it found for a system, scored
    with that version's official rules (``benchmark``: ``xtreme`` or ``xtreme-r``)."""

    name: str
    tasks: dict[str, TaskResult]
    notes: tuple[str, ...] = field(default=())
    #: how the numbers were obtained (fine-tuned, text-to-text, prompted LLM, k-shot); several = a mix
    protocols: tuple[str, ...] = field(default=())
    benchmark: str = DEFAULT_BENCHMARK

    @property
    def mixed(self) -> bool:
        return len(set(self.protocols)) > 1

    @property
    def task_order(self) -> tuple[str, ...]:
        return get_benchmark(self.benchmark).tasks

    @property
    def task_scores(self) -> dict[str, float | None]:
        return {name: self.tasks[name].score if name in self.tasks else None for name in self.task_order}

    @property
    def xtreme(self) -> float | None:
        """The benchmark's overall score (the mean of its 9 or 10 task scores); none for a row
        mixing protocols (not comparable numbers)."""
        return None if self.mixed else xtreme_score(self.task_scores, self.benchmark)

    @property
    def overall(self) -> float | None:
        """Alias of :attr:`xtreme` that reads right for XTREME-R rows."""
        return self.xtreme

    @property
    def categories(self) -> dict[str, float | None]:
        return category_scores(self.task_scores, self.benchmark)

    @property
    def missing(self) -> tuple[str, ...]:
        return missing_tasks(self.task_scores, self.benchmark)

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
                 protocols: Iterable[str] = (), benchmark: str = DEFAULT_BENCHMARK) -> SystemScores:
    """``{task: {lang: {metric: value}}}`` -> a scored row of ``benchmark`` (tasks outside the table
    are an error; tasks of the table outside this benchmark, e.g. PAW-X in an XTREME-R row, are left out)."""
    unknown = sorted(set(metrics) - set(TABLE))
    if unknown:
        raise KeyError(f"unknown XTREME task(s) {unknown}; known: {', '.join(TABLE)}")
    order = get_benchmark(benchmark).tasks
    tasks = {task: score_task(task, metrics[task], benchmark) for task in order if task in metrics}
    return SystemScores(name=name, tasks=tasks, notes=tuple(notes), protocols=tuple(protocols), benchmark=benchmark)

