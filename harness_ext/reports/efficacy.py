"""Intermediate-task efficacy: gains over a baseline, by model size, across seeds, with CIs.

The research question: *how does the gain from English intermediate-task training
change with model scale?* A system (row of ``checkpoints.yaml``) with an
``intermediate_task`` is compared with its baseline:

1. an explicit pairing (``--baseline SYSTEM=BASELINE``), else
2. the systems in the results with the same ``family`` and ``size`` and no
   intermediate task -- the one with the same ``seed`` when there is one, else the
   mean of all of them, else
3. the published numbers under the system's ``baseline:`` in ``checkpoints.yaml``
   (a gain without an interval: there are no examples to resample).

Gains are per task and on the XTREME score (only when both rows are complete).
Rows that share family, size and intermediate task are seeds of one configuration:
the scaling table gives their mean gain, the spread (sample standard deviation) and
a paired bootstrap interval of the mean gain (see :mod:`harness_ext.reports.bootstrap`;
the interval reflects test-example sampling, the spread reflects seeds).

For the XTREME-score interval, tasks without per-example items (BUCC, Tatoeba) enter
with their observed gain held fixed; the table notes say when that happened.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from harness_ext.reports.bootstrap import (
    BootstrapUnavailable,
    Comparison,
    Interval,
    LanguageStats,
    bootstrap_task_gains,
    language_stats,
    percentile_interval,
)
from harness_ext.reports.board import size_text as _size_text
from harness_ext.reports.escape import natural_key
from harness_ext.reports.official import ReportError
from harness_ext.reports.results import SystemRuns, read_samples
from harness_ext.reports.rules import SystemScores, is_number, language_score
from harness_ext.reports.tables import Cell, Table
from xtreme_tasks.table import DEFAULT_BENCHMARK, get_benchmark

OVERALL = "xtreme"
#: tolerance when checking that samples reproduce the results JSON (0-100 scale)
CONSISTENCY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Meta:
    """What makes rows comparable, from ``checkpoints.yaml``."""

    name: str
    family: str
    size: int
    intermediate_task: str | None = None
    seed: int | None = None
    published: Mapping[str, float] | None = None
    published_source: str | None = None


def metadata_from_systems(systems: Mapping[str, Any]) -> dict[str, Meta]:
    """:class:`harness_ext.systems.System` objects -> :class:`Meta`."""
    out = {}
    for name, system in systems.items():
        baseline = system.baseline
        out[name] = Meta(
            name=name, family=system.family, size=int(system.size), intermediate_task=system.intermediate_task,
            seed=system.seed, published=dict(baseline.scores) if baseline and baseline.scores else None,
            published_source=baseline.source if baseline else None,
        )
    return out


@dataclass(frozen=True)
class Pairing:
    """A system and what it is compared with: baseline systems, or published numbers."""

    system: str
    baselines: tuple[str, ...] = ()
    published: Mapping[str, float] | None = None
    label: str = ""


def pair_baselines(
    present: Sequence[str], meta: Mapping[str, Meta], explicit: Mapping[str, str] | None = None
) -> tuple[list[Pairing], list[str]]:
    """Pairings for every present system with an intermediate task (or an explicit baseline); notes for the rest."""
    explicit = dict(explicit or {})
    notes: list[str] = []
    for system, base in explicit.items():
        for name in (system, base):
            if name not in present:
                raise ReportError(f"--baseline {system}={base}: {name!r} has no results; present: {', '.join(sorted(present))}")
    pairings: list[Pairing] = []
    for name in sorted(present):
        if name in explicit:
            pairings.append(Pairing(name, (explicit[name],), label=explicit[name]))
            continue
        info = meta.get(name)
        if info is None:
            notes.append(f"{name}: not in checkpoints.yaml (family/size/intermediate task unknown); no gain computed")
            continue
        if info.intermediate_task is None and not info.published:
            continue  # a baseline itself
        candidates = [
            other for other in sorted(present)
            if other != name and other in meta and meta[other].intermediate_task is None
            and meta[other].family == info.family and meta[other].size == info.size
        ]
        if info.intermediate_task is not None and candidates:
            same_seed = [c for c in candidates if info.seed is not None and meta[c].seed == info.seed]
            chosen = tuple(same_seed[:1] or candidates)
            label = chosen[0] if len(chosen) == 1 else f"mean of {', '.join(chosen)}"
            pairings.append(Pairing(name, chosen, label=label))
        elif info.published:
            pairings.append(Pairing(name, published=dict(info.published),
                                    label=f"published ({info.published_source or 'checkpoints.yaml'})"))
        elif info.intermediate_task is not None:
            notes.append(f"{name}: no baseline (no {info.family} system of size {info.size} without an intermediate "
                         "task in the results, no published baseline in checkpoints.yaml)")
    return pairings, notes


# ----------------------------------------------------------------------------- point gains


def point_gains(pairing: Pairing, scores: Mapping[str, SystemScores]) -> dict[str, float | None]:
    """Gain per task and on the benchmark's score from the results JSON (``None`` where either side lacks it)."""
    mine = scores[pairing.system]
    out: dict[str, float | None] = {}
    for key in (OVERALL, *mine.task_order):
        value = mine.xtreme if key == OVERALL else mine.task_scores[key]
        if pairing.published is not None:
            base = pairing.published.get(key)
        else:
            bases = [scores[b].xtreme if key == OVERALL else scores[b].task_scores[key] for b in pairing.baselines]
            base = math.fsum(bases) / len(bases) if bases and all(is_number(b) for b in bases) else None  # type: ignore[arg-type]
        out[key] = value - base if is_number(value) and is_number(base) else None  # type: ignore[operator]
    return out


# ----------------------------------------------------------------------------- samples -> stats


class StatsCache:
    """Per (system, task) statistics read from samples once, checked against the results JSON."""

    def __init__(self, systems: Mapping[str, SystemRuns], benchmark: str = DEFAULT_BENCHMARK):
        self.systems = systems
        self.version = get_benchmark(benchmark)
        self._cache: dict[tuple[str, str], dict[str, LanguageStats] | BootstrapUnavailable] = {}

    def get(self, system: str, task: str) -> dict[str, LanguageStats]:
        key = (system, task)
        if key not in self._cache:
            try:
                self._cache[key] = self._load(system, task)
            except BootstrapUnavailable as err:
                self._cache[key] = err
        value = self._cache[key]
        if isinstance(value, BootstrapUnavailable):
            raise value
        return value

    def _load(self, system: str, task: str) -> dict[str, LanguageStats]:
        spec = self.version.spec(task)
        if spec.request_kind == "embed":
            raise BootstrapUnavailable(f"{spec.title}: retrieval is scored over the whole corpus; "
                                       "lm-eval samples hold no per-example outcome")
        runs = self.systems[system]
        out = {}
        for lang in spec.languages:
            leaf = spec.leaf(lang)
            run = runs.chosen.get(leaf)
            path = run.samples_file(leaf) if run else None
            if path is None:
                raise BootstrapUnavailable(f"{system}: no samples for {leaf} (run lm_eval with --log_samples)")
            stats = language_stats(spec, read_samples(path), str(path))
            expected = language_score(spec, run.metrics[task][lang])
            if expected is None or abs(stats.value() - expected) > CONSISTENCY_TOLERANCE:
                raise BootstrapUnavailable(f"{path} gives {stats.value():.6f} but its results file says {expected}; "
                                           "samples and results are from different runs")
            out[lang] = stats
        return out


# ----------------------------------------------------------------------------- efficacy


@dataclass(frozen=True)
class Gain:
    """One system's gain on one task (or ``xtreme``), with its interval or why there is none."""

    system: str
    baseline: str
    task: str
    gain: float | None
    interval: Interval | None = None
    note: str = ""


@dataclass(frozen=True)
class GroupGain:
    """Seeds of one (family, intermediate task, size) configuration on one task."""

    family: str
    intermediate_task: str
    size: int
    task: str
    systems: tuple[str, ...]
    gains: tuple[float, ...]
    interval: Interval | None = None
    note: str = ""

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.gains) if self.gains else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.gains) if len(self.gains) >= 2 else None


@dataclass
class Efficacy:
    gains: list[Gain] = field(default_factory=list)
    groups: list[GroupGain] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Meta] = field(default_factory=dict)
    level: float = 0.95
    n_resamples: int = 1000
    benchmark: str = DEFAULT_BENCHMARK
    #: systems whose numbers come from runs made with ``--limit`` (not XTREME numbers)
    limited: list[str] = field(default_factory=list)

    @property
    def task_order(self) -> tuple[str, ...]:
        return get_benchmark(self.benchmark).tasks

    def title(self, key: str) -> str:
        """Column title: the benchmark's name for the overall score, else the task's."""
        version = get_benchmark(self.benchmark)
        return version.title if key == OVERALL else version.spec(key).title

    def limit_note(self) -> str:
        """One line for tables and the plot when any compared run used ``--limit``; else ``""``."""
        if not self.limited:
            return ""
        return (f"runs made with --limit (a subset of each test set; not XTREME numbers): "
                f"{', '.join(sorted(self.limited, key=natural_key))}")


def _bootstrap_group(
    pairings: Sequence[Pairing], tasks: Sequence[str], cache: StatsCache, point: Mapping[str, Mapping[str, float | None]],
    n_resamples: int, seed: int, order: Sequence[str],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Resampled gains per task (rows = pairings), plus ``xtreme``; reasons for what has none."""
    draws: dict[str, np.ndarray] = {}
    reasons: dict[str, str] = {}
    for task in tasks:
        try:
            comparisons = [
                Comparison({task: cache.get(p.system, task)}, [{task: cache.get(b, task)} for b in p.baselines])
                for p in pairings
            ]
            draws[task] = bootstrap_task_gains(task, comparisons, n_resamples, seed)
        except BootstrapUnavailable as err:
            reasons[task] = str(err)
    if all(point[p.system].get(OVERALL) is not None for p in pairings):
        resampled = [t for t in order if t in draws]
        if resampled:
            fixed = [t for t in order if t not in draws]
            total = sum(draws[t] for t in resampled)
            for t in fixed:
                total = total + np.array([[point[p.system][t]] for p in pairings])
            draws[OVERALL] = total / len(order)
            if fixed:
                reasons[OVERALL] = f"interval resamples {len(resampled)} tasks; {', '.join(fixed)} held at their observed gain"
        else:
            reasons[OVERALL] = "no task has per-example samples"
    return draws, reasons


def compute_efficacy(
    systems: Mapping[str, SystemRuns], scores: Mapping[str, SystemScores], meta: Mapping[str, Meta],
    explicit: Mapping[str, str] | None = None, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
) -> Efficacy:
    """Gains of every system with a baseline, grouped by (family, intermediate task, size)."""
    pairings, notes = pair_baselines(list(scores), meta, explicit)
    versions = {getattr(row, "benchmark", DEFAULT_BENCHMARK) for row in scores.values()}
    if len(versions) > 1:
        raise ValueError(f"compute_efficacy got rows of {sorted(versions)}; score one version (all_scores(..., benchmark))")
    benchmark = versions.pop() if versions else DEFAULT_BENCHMARK
    order = get_benchmark(benchmark).tasks
    compared = {p.system for p in pairings} | {b for p in pairings for b in p.baselines}
    limited = [name for name in compared if name in systems and systems[name].limited()]
    result = Efficacy(notes=notes, meta=dict(meta), level=level, n_resamples=n_resamples, limited=limited,
                      benchmark=benchmark)
    point = {p.system: point_gains(p, scores) for p in pairings}
    cache = StatsCache(systems, benchmark)
    # systems compared with systems, grouped so seeds share resamples; published comparisons alone
    groups: dict[tuple, list[Pairing]] = {}
    for pairing in pairings:
        info = meta.get(pairing.system)
        key = (info.family, info.intermediate_task, info.size) if info else ("?", pairing.system, 0)
        groups.setdefault((pairing.published is not None, *key), []).append(pairing)
    for (published, family, intermediate, size), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        tasks = [t for t in order if any(point[p.system][t] is not None for p in members)]
        draws: dict[str, np.ndarray] = {}
        reasons: dict[str, str] = {}
        if published:
            reasons = {t: "compared with published numbers: no examples to resample" for t in (OVERALL, *tasks)}
        else:
            draws, reasons = _bootstrap_group(members, tasks, cache, point, n_resamples, seed, order)
        for key in (OVERALL, *tasks):
            for row, pairing in enumerate(members):
                gain = point[pairing.system][key]
                if gain is None:
                    if key == OVERALL and pairing.system in point:
                        result.gains.append(Gain(pairing.system, pairing.label, key, None, None,
                                                 "no XTREME score: a row is incomplete"))
                    continue
                interval = percentile_interval(draws[key][row], level) if key in draws else None
                result.gains.append(Gain(pairing.system, pairing.label, key, gain, interval, reasons.get(key, "")))
            if intermediate is None or published:
                continue
            have = [(row, p) for row, p in enumerate(members) if point[p.system][key] is not None]
            if not have:
                continue
            interval = None
            if key in draws and len(have) == len(members):
                interval = percentile_interval(draws[key].mean(axis=0), level)
            result.groups.append(GroupGain(
                family=family, intermediate_task=intermediate, size=size, task=key,
                systems=tuple(p.system for _, p in have), gains=tuple(point[p.system][key] for _, p in have),  # type: ignore[misc]
                interval=interval, note=reasons.get(key, ""),
            ))
    return result


# ----------------------------------------------------------------------------- tables


def _gain_text(gain: float | None, interval: Interval | None) -> Cell:
    if gain is None:
        return Cell(None, "-")
    text = f"{gain:+.2f}"
    if interval is not None:
        text += f" [{interval.low:+.2f}, {interval.high:+.2f}]" + ("*" if interval.excludes_zero else "")
    return Cell(gain, text)


def gains_table(eff: Efficacy) -> Table:
    """Wide: one row per system, gain [CI] on XTREME and each task with any gain."""
    keys = [OVERALL] + [t for t in eff.task_order if any(g.task == t for g in eff.gains)]
    header = ["System", "Baseline", "Family", "Size", "Intermediate", "Seed"] + [eff.title(k) for k in keys]
    table = Table("efficacy_gains", f"Gain over baseline ({eff.level:.0%} paired bootstrap CI over examples; * = excludes 0)", header)
    by_system: dict[str, dict[str, Gain]] = {}
    for g in eff.gains:
        by_system.setdefault(g.system, {})[g.task] = g
    for system, row in sorted(by_system.items(), key=lambda kv: natural_key(kv[0])):
        info = eff.meta.get(system)
        first = next(iter(row.values()))
        table.add([system, first.baseline, info.family if info else "", _size_text(info.size) if info else "",
                   (info.intermediate_task or "-") if info else "", "" if not info or info.seed is None else str(info.seed)]
                  + [_gain_text(row[k].gain, row[k].interval) if k in row else Cell(None, "-") for k in keys])
    table.notes.extend(_notes(eff))
    return table


def _notes(eff: Efficacy) -> list[str]:
    seen: list[str] = []
    for g in eff.gains:
        if g.note and g.interval is None and g.note not in seen:
            seen.append(g.note)
    for g in eff.gains:
        if g.note and g.interval is not None and g.note not in seen:
            seen.append(g.note)
    return ([eff.limit_note()] if eff.limited else []) + list(eff.notes) + seen


def scaling_table(eff: Efficacy) -> Table:
    """Wide: rows (family, intermediate task, size); mean gain +- seed std [CI of the mean] per task."""
    keys = [OVERALL] + [t for t in eff.task_order if any(g.task == t for g in eff.groups)]
    header = ["Family", "Intermediate", "Size", "Seeds"] + [eff.title(k) for k in keys]
    table = Table("efficacy_scaling", "Gain from intermediate-task training by model size "
                  f"(mean over seeds, ± seed std, [{eff.level:.0%} bootstrap CI of the mean])", header)
    rows: dict[tuple, dict[str, GroupGain]] = {}
    for g in eff.groups:
        rows.setdefault((g.family, g.intermediate_task, g.size), {})[g.task] = g
    for (family, intermediate, size), cells in sorted(rows.items(), key=lambda kv: (natural_key(kv[0][0]),
                                                                                 natural_key(kv[0][1]), kv[0][2])):
        seeds = max(len(g.gains) for g in cells.values())
        out = [family, intermediate, Cell(size, _size_text(size)), Cell(seeds, str(seeds))]
        for key in keys:
            g = cells.get(key)
            if g is None:
                out.append(Cell(None, "-"))
                continue
            text = f"{g.mean:+.2f}" + (f" ± {g.std:.2f}" if g.std is not None else "")
            if g.interval is not None:
                text += f" [{g.interval.low:+.2f}, {g.interval.high:+.2f}]" + ("*" if g.interval.excludes_zero else "")
            out.append(Cell(g.mean, text))
        table.add(out)
    table.notes.append("Seeds: std is the sample standard deviation of per-seed gains (blank with one seed); "
                       "the CI resamples test examples, shared by all seeds (see docs/reports.md).")
    table.notes.extend(_notes(eff))
    return table


def long_table(eff: Efficacy) -> Table:
    """One row per (system, task): numbers only, for CSV and further analysis."""
    header = ["system", "baseline", "family", "size", "intermediate_task", "seed", "task", "gain",
              "ci_low", "ci_high", "excludes_zero", "note"]
    table = Table("efficacy_long", "Gains, one row per system and task", header)
    for g in eff.gains:
        info = eff.meta.get(g.system)
        table.add([g.system, g.baseline, info.family if info else None, Cell(info.size, str(info.size)) if info else None,
                   info.intermediate_task if info else None, info.seed if info else None, g.task,
                   Cell.number(g.gain, 4, signed=True),
                   Cell.number(g.interval.low if g.interval else None, 4, signed=True),
                   Cell.number(g.interval.high if g.interval else None, 4, signed=True),
                   "" if g.interval is None else str(g.interval.excludes_zero), g.note])
    return table


def efficacy_tables(eff: Efficacy) -> list[Table]:
    return [scaling_table(eff), gains_table(eff), long_table(eff)]
