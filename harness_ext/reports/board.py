"""The leaderboard's data model: one row per system, shared by the tables and the static page.

Why a module of its own: the Markdown/LaTeX/CSV tables and the browsable page
(:mod:`harness_ext.reports.site`) show the same rows, and must agree on what a row
says -- its short name, its partial numbers, its size, protocol and benchmark, and
where each number came from. The scoring rules stay in :mod:`harness_ext.reports.rules`;
this module only adds what a reader needs beside them:

* **Short names.** A row named by ``pretrained=/home/me/venv/.../all-MiniLM-L6-v2`` is
  shown as ``all-MiniLM-L6-v2`` (the fewest trailing path parts that keep rows apart);
  the full name stays in CSV and in the hover / footnote.
* **Partial numbers.** XTREME never averages over fewer languages or tasks, so a task
  with a language missing has no score. The row still shows the mean over what it
  has, marked partial (``†``), and never ranks it as an XTREME score.
* **Provenance.** Every number names the results file(s), ``--limit``, date, lm-eval
  and plugin versions of the runs it comes from.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

from harness_ext.reports.escape import natural_key
from harness_ext.reports.rules import SystemScores, category_tasks, is_number, language_score
from xtreme_tasks.table import DEFAULT_BENCHMARK, get_task

PARTIAL_MARK = "\u2020"  # dagger
BENCHMARK_TITLES = {"xtreme": "XTREME", "xtreme-r": "XTREME-R"}


@dataclass(frozen=True)
class Value:
    """A number on the board; ``partial``: a mean over fewer languages or tasks than XTREME's rule needs."""

    value: float | None
    partial: bool = False

    @property
    def official(self) -> float | None:
        return None if self.partial else self.value

    def text(self, digits: int = 2) -> str:
        if not is_number(self.value):
            return "-"
        return f"{self.value:.{digits}f}" + (PARTIAL_MARK if self.partial else "")


@dataclass(frozen=True)
class Source:
    """Where a set of numbers came from: the runs whose leaves are used."""

    files: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    lm_eval: tuple[str, ...] = ()
    plugin: tuple[str, ...] = ()
    #: leaves a partial run left out on purpose (``results.Run.missing_tasks``, when the run says so)
    left_out: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.files:
            return "no results file"
        return "; ".join(([f"partial run, left out: {', '.join(self.left_out)}"] if self.left_out else []) + [
            "results: " + ", ".join(self.files),
            "--limit: " + (", ".join(self.limits) or "none"),
            "date: " + ", ".join(self.dates),
            "lm-eval " + (", ".join(self.lm_eval) or "not recorded"),
            "xtreme-harness " + (", ".join(self.plugin) or "not recorded"),
        ])


@dataclass
class BoardRow:
    """One system: the numbers, what they mean, and where they came from."""

    key: str
    name: str
    benchmark: str
    protocol: str
    size: int | None
    xtreme: Value
    categories: dict[str, Value]
    tasks: dict[str, Value]
    #: per task: language -> that language's score (e.g. (EM + F1) / 2 for QA)
    languages: dict[str, dict[str, float]]
    complete: bool
    limited: bool
    status: str
    badge: str
    #: leaves scored on a test set that is not XTREME's -> why
    warnings: dict[str, str] = field(default_factory=dict)
    #: task -> its source; ``""`` -> the whole row
    sources: dict[str, Source] = field(default_factory=dict)
    #: leaf -> its source
    leaf_sources: dict[str, Source] = field(default_factory=dict)

    def task_warning(self, task: str) -> str:
        spec = get_task(task)
        return "; ".join(f"{leaf}: {why}" for leaf, why in self.warnings.items()
                         if leaf.startswith(f"xtreme-{spec.name}-"))


# ----------------------------------------------------------------------------- short names

_HF_CACHE = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][0-9a-f]+$")
_SUFFIX = re.compile(r"^(?P<base>.*?)(?P<suffix> \[[^\]]*\])?$", re.S)


def _is_path(name: str) -> bool:
    return name.startswith(("/", "~", "./", "../", "\\")) or name.count("/") >= 2 or "\\" in name or bool(
        re.match(r"^[A-Za-z]:[/\\]", name))


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each system key -> a short readable name, unique among ``keys``.

    A path keeps the fewest trailing parts that tell it apart from the other rows
    (``run1/best`` and ``run2/best``); a Hugging Face cache snapshot becomes ``org/name``;
    hub ids and plain names are kept as written, as is a prompted row's ``[protocol]``.
    """
    parsed = {}
    for key in keys:
        match = _SUFFIX.match(key)
        base, suffix = match["base"], match["suffix"] or ""
        hub = _HF_CACHE.search(base.rstrip("/\\"))
        if hub:
            parsed[key] = ([f"{hub['org']}/{hub['name']}"], suffix)
        elif _is_path(base):
            parts = [p for p in re.split(r"[/\\]+", base) if p not in ("", ".", "~")]
            parsed[key] = (parts or [base], suffix)
        else:
            parsed[key] = ([base], suffix)
    depth = {key: 1 for key in keys}

    def shown(key: str) -> str:
        parts, suffix = parsed[key]
        return "/".join(parts[-depth[key]:]) + suffix

    for _ in range(max((len(p) for p, _ in parsed.values()), default=1)):
        seen: dict[str, list[str]] = {}
        for key in keys:
            seen.setdefault(shown(key), []).append(key)
        clashes = [k for group in seen.values() if len(group) > 1 for k in group]
        grow = [k for k in clashes if depth[k] < len(parsed[k][0])]
        if not grow:
            break
        for key in grow:
            depth[key] += 1
    out = {key: shown(key) for key in keys}
    if len(set(out.values())) < len(out):  # still equal (same path twice in other spellings): whole names
        return {key: key for key in keys}
    return out


# ----------------------------------------------------------------------------- partial numbers


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def language_scores(scores: SystemScores, task: str) -> dict[str, float]:
    """Language -> its score (official and extra languages), for the tasks that have one."""
    result = scores.tasks.get(task)
    if result is None:
        return {}
    out = {}
    for lang, metrics in result.per_language.items():
        value = language_score(get_task(task), metrics)
        if is_number(value):
            out[lang] = float(value)  # type: ignore[arg-type]
    return out


def task_value(scores: SystemScores, task: str) -> Value:
    """The official task score, else the mean over the official languages present (partial)."""
    result = scores.tasks.get(task)
    if result is None:
        return Value(None)
    if is_number(result.score):
        return Value(result.score)
    langs = language_scores(scores, task)
    present = [langs[lang] for lang in result.spec.languages if lang in langs]  # the row's version's languages
    return Value(_mean(present), partial=True) if present else Value(None)


def _combined(values: Sequence[Value]) -> Value:
    """Mean of task values: official when all are, partial when any is, none when one is missing."""
    if not values or any(not is_number(v.value) for v in values):
        return Value(None)
    return Value(_mean([v.value for v in values]), partial=any(v.partial for v in values))  # type: ignore[misc]


# ----------------------------------------------------------------------------- rows


def _iso(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return str(timestamp)


def _source(runs: Sequence[Any], leaves: Sequence[str] = ()) -> Source:
    """Summarise the runs (``results.Run``) that gave these leaves."""
    runs = sorted({id(r): r for r in runs}.values(), key=lambda r: str(r.path))
    plugin = set()
    for run in runs:
        configs = (run.raw or {}).get("configs") or {}
        for leaf in leaves or run.leaves():
            metadata = (configs.get(leaf) or {}).get("metadata") if isinstance(configs.get(leaf), Mapping) else None
            if isinstance(metadata, Mapping) and metadata.get("plugin_version"):
                plugin.add(str(metadata["plugin_version"]))
    return Source(
        files=tuple(str(r.path) for r in runs),
        limits=tuple(sorted({str(r.limit) for r in runs if r.limit not in (None, 0)})),
        dates=tuple(sorted({_iso(r.date) for r in runs})),
        lm_eval=tuple(sorted({str(r.raw.get("lm_eval_version")) for r in runs if (r.raw or {}).get("lm_eval_version")})),
        plugin=tuple(sorted(plugin)),
        left_out=tuple(sorted({leaf for r in runs for leaf in (getattr(r, "missing_tasks", None) or {})})),
    )


def _badge(scores: SystemScores, limited: bool) -> tuple[str, str]:
    """(one short badge, one-line status): the full list of what is missing stays in the status.
    The badge is empty for a complete row of full runs."""
    limit = ["--limit"] if limited else []
    if scores.mixed:
        return " \u00b7 ".join(["mixed protocols", *limit]), scores.status()
    if scores.complete:
        return " \u00b7 ".join(limit), scores.status()
    absent = [t for t in scores.missing if t not in scores.tasks]
    lacking = [t for t in scores.missing if t in scores.tasks]
    parts = []
    if absent:
        parts.append(f"{len(scores.task_order) - len(absent)}/{len(scores.task_order)} tasks")
    if lacking:
        parts.append(f"{len(lacking)} with languages missing")
    status = "partial: " + ", ".join(parts) + " (" + scores.status().removeprefix("incomplete: ") + ")"
    return " \u00b7 ".join(["partial", *limit]), status


def build_rows(scores: Mapping[str, SystemScores], systems: Mapping[str, Any] | None = None,
               sizes: Mapping[str, int] | None = None) -> list[BoardRow]:
    """Board rows in leaderboard order: complete rows by XTREME score, then the rest; ties and
    the rest by natural name order (``tiny32`` before ``tiny128``).

    ``systems``: :class:`harness_ext.reports.results.SystemRuns` by name, for sources and
    test-set warnings; ``sizes``: parameters by name (from ``checkpoints.yaml``).
    """
    shown = short_names(sorted({row.name for row in scores.values()}))
    names = {key: shown[row.name] for key, row in scores.items()}  # an XTREME-R row (NAME@xtreme-r) shows NAME
    rows = []
    for key, row in scores.items():
        benchmark = str(getattr(row, "benchmark", DEFAULT_BENCHMARK))
        runs = (systems or {}).get(key)
        if runs is None and row.name in (systems or {}):  # an XTREME-R row (key NAME@xtreme-r): its version's runs
            runs = systems[row.name].of_benchmark(benchmark)  # type: ignore[index]
        order = row.task_order
        tasks = {t: task_value(row, t) for t in order}
        categories = {c: _combined([tasks[t] for t in members]) for c, members in category_tasks(benchmark).items()}
        overall = Value(None) if row.mixed else _combined([tasks[t] for t in order])
        if is_number(row.xtreme):
            overall = Value(row.xtreme)
        limited = bool(runs.limited()) if runs is not None else False
        badge, status = _badge(row, limited)
        sources: dict[str, Source] = {}
        leaf_sources: dict[str, Source] = {}
        warnings: dict[str, str] = {}
        if runs is not None:
            sources[""] = _source(list(runs.chosen.values()))
            for task in row.tasks:
                leaves = [leaf for leaf in runs.chosen if leaf.startswith(f"xtreme-{task}-")]
                sources[task] = _source([runs.chosen[leaf] for leaf in leaves], leaves)
                for leaf in leaves:
                    leaf_sources[leaf] = _source([runs.chosen[leaf]], [leaf])
            warnings = {leaf: runs.chosen[leaf].nonstandard[leaf] for leaf in runs.nonstandard()}
        rows.append(BoardRow(
            key=key, name=names[key], benchmark=benchmark,
            protocol=" + ".join(row.protocols) or "fine-tuned", size=(sizes or {}).get(key, (sizes or {}).get(row.name)),
            xtreme=overall, categories=categories, tasks=tasks,
            languages={t: language_scores(row, t) for t in row.tasks},
            complete=row.complete and not row.mixed, limited=limited, status=status, badge=badge,
            warnings=warnings, sources=sources, leaf_sources=leaf_sources,
        ))
    rows.sort(key=lambda r: (not is_number(r.xtreme.official), -(r.xtreme.official or 0.0), natural_key(r.name)))
    return rows


def size_text(size: int | None) -> str:
    """``278000000`` -> ``278M``; ``None`` -> ``-``."""
    if size is None:
        return "-"
    for unit, div in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if size >= div:
            return f"{size / div:.3g}{unit}"
    return str(size)
