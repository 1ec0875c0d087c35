"""Paired bootstrap over test examples, for confidence intervals on score differences.

Method (why each choice):

* **Per-example statistics.** Every XTREME language score is a ratio of sums over
  examples, ``scale * sum(num) / sum(den)``: accuracy (``num`` = correct, ``den`` = 1),
  QA (``num`` = (EM + F1) / 2 of the question, ``den`` = 1, so the mean is the task's
  (mean EM + mean F1) / 2), and corpus-level span F1 for UD-POS / PAN-X
  (``num`` = 2 x correct spans of the sentence, ``den`` = predicted + gold spans, so the
  ratio is exactly seqeval's micro F1 = 2C / (P + G) of the resampled corpus). Resampling
  sentences and recomputing the corpus metric is therefore a sum over resampled rows,
  not a mean of per-sentence F1s (which would be a different metric).
* **Paired.** One draw of example indices per resample is used for every system
  compared (system and baseline, all seeds): the interval is on the difference of the
  two scores on the same resampled test set, which removes the example-difficulty
  variance the two systems share -- the reason a paired test detects smaller gains.
* **Stratified by language.** Each language's examples are resampled on their own (as
  many as it has), and a resampled task score is the plain mean of resampled language
  scores, mirroring how the task score is built (a language is not a random draw).
* **Percentile interval** of ``n_resamples`` resampled differences (default 1000,
  fixed seed, so reports are reproducible).

Retrieval tasks (BUCC, Tatoeba) score the whole corpus at once (a sentence's nearest
neighbour depends on all others) and lm-eval's samples hold no per-example outcome for
them, so they have no interval; callers say so rather than skip them silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from harness_ext.metrics.tagging import corpus_entities
from harness_ext.reports.results import example_id
from xtreme_tasks.table import TaskSpec, get_task


class BootstrapUnavailable(ValueError):
    """No interval can be computed; the message says why (shown in the report)."""


@dataclass(frozen=True)
class LanguageStats:
    """One language of one run: example ids and the per-example numerator/denominator."""

    ids: tuple[str, ...]
    num: np.ndarray
    den: np.ndarray
    scale: float

    def value(self) -> float:
        """The language score on the full set (must equal the results JSON)."""
        return ratio(self.num.sum(), self.den.sum(), self.scale)

    def aligned(self, order: Sequence[str], where: str) -> "LanguageStats":
        """The same statistics in ``order`` (another run's id order); refuses differing id sets."""
        if tuple(order) == self.ids:
            return self
        position = {i: n for n, i in enumerate(self.ids)}
        if len(position) != len(self.ids) or set(position) != set(order) or len(order) != len(self.ids):
            raise BootstrapUnavailable(f"{where}: the runs were scored on different examples "
                                       "(another --limit or data set?); a paired interval needs the same ones")
        index = np.fromiter((position[i] for i in order), dtype=np.int64, count=len(order))
        return LanguageStats(tuple(order), self.num[index], self.den[index], self.scale)


def ratio(num: Any, den: Any, scale: float) -> Any:
    """``scale * num / den`` elementwise, 0 where ``den`` is 0 (seqeval's F1 with no spans)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)
    return scale * out if out.ndim else float(scale * out)


def _span_counts(gold: Sequence[str], pred: Sequence[str]) -> tuple[int, int, int]:
    g, p = set(corpus_entities([gold])), set(corpus_entities([pred]))
    return len(g & p), len(p), len(g)


def language_stats(spec: TaskSpec, rows: Sequence[Mapping[str, Any]], where: str) -> LanguageStats:
    """Per-example statistics of one language from lm-eval samples rows (see the module doc)."""
    if not rows:
        raise BootstrapUnavailable(f"{where}: the samples file is empty")
    ids = tuple(example_id(row) for row in rows)
    kind = spec.request_kind
    try:
        if kind in ("classify", "choose"):
            num = np.array([float(row["acc"][0] == row["acc"][1]) for row in rows])
            return LanguageStats(ids, num, np.ones(len(rows)), 100.0)
        if kind == "tag":
            counts = np.array([_span_counts(row["f1"][0], row["f1"][1]) for row in rows], dtype=np.float64)
            return LanguageStats(ids, 2.0 * counts[:, 0], counts[:, 1] + counts[:, 2], 100.0)
        if kind == "extract_span":
            num = np.array([(float(row["em"][2]) + float(row["f1"])) / 2.0 for row in rows])
            return LanguageStats(ids, num, np.ones(len(rows)), 1.0)
    except (KeyError, IndexError, TypeError) as err:
        raise BootstrapUnavailable(f"{where}: samples rows lack the per-example metric items ({err!r}); "
                                   "were they written by this plugin with --log_samples?") from None
    raise BootstrapUnavailable(
        f"{spec.title} is scored over the whole corpus (retrieval) and its samples hold no per-example outcome"
    )


#: one run's statistics for one task: ``{lang: LanguageStats}`` over the official languages
TaskStats = Mapping[str, LanguageStats]


@dataclass(frozen=True)
class Comparison:
    """A system's runs and the baseline runs it is compared with (their mean); stats per task."""

    system: Mapping[str, TaskStats]
    baselines: Sequence[Mapping[str, TaskStats]]


def _task_languages(task: str, comparisons: Sequence[Comparison]) -> tuple[str, ...]:
    """The languages every run has for ``task`` (callers pass the official ones, see efficacy.StatsCache)."""
    languages = tuple(comparisons[0].system[task])
    for comparison in comparisons:
        for stats in (comparison.system, *comparison.baselines):
            if set(stats[task]) != set(languages):
                raise BootstrapUnavailable(f"{get_task(task).title}: the runs cover different languages")
    return languages


def bootstrap_task_gains(
    task: str, comparisons: Sequence[Comparison], n_resamples: int = 1000, seed: int = 0, chunk: int = 200
) -> np.ndarray:
    """Resampled task-score gains, shape ``(len(comparisons), n_resamples)``.

    For each language one index draw per resample is shared by every run in
    ``comparisons`` (paired); a comparison's gain is its system's resampled task score
    minus the mean of its baselines' resampled task scores.
    """
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    if not comparisons:
        raise ValueError("nothing to compare")
    rng = np.random.default_rng([seed, sum(task.encode())])
    gains = np.zeros((len(comparisons), n_resamples))
    languages = _task_languages(task, comparisons)
    for lang in languages:
        reference = comparisons[0].system[task][lang]
        order = reference.ids
        runs = []
        for c_index, comparison in enumerate(comparisons):
            where = f"{get_task(task).leaf(lang)}"
            system = comparison.system[task][lang].aligned(order, where)
            bases = [b[task][lang].aligned(order, where) for b in comparison.baselines]
            runs.append((c_index, system, bases))
        n = len(order)
        for start in range(0, n_resamples, chunk):
            stop = min(start + chunk, n_resamples)
            idx = rng.integers(0, n, size=(stop - start, n))
            for c_index, system, bases in runs:
                sys_score = ratio(system.num[idx].sum(1), system.den[idx].sum(1), system.scale)
                base_score = np.mean([ratio(b.num[idx].sum(1), b.den[idx].sum(1), b.scale) for b in bases], axis=0)
                gains[c_index, start:stop] += (sys_score - base_score) / len(languages)
    return gains


@dataclass(frozen=True)
class Interval:
    """A percentile interval of resampled values."""

    low: float
    high: float
    level: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def percentile_interval(values: np.ndarray, level: float = 0.95) -> Interval:
    if not 0 < level < 1:
        raise ValueError("confidence level must be between 0 and 1")
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(values, dtype=np.float64), [alpha, 1.0 - alpha])
    return Interval(float(low), float(high), level)
