"""What ``xtreme-eval tasks`` prints, from the one table: plain text, JSON, or the README's table.

Plain text rather than a terminal table: names are never cut, whatever the width,
and piping the output (``xtreme-eval tasks | grep ...``) keeps every name whole.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Any

from xtreme_tasks.table import BENCHMARKS, TABLE, TASK_ORDER, TASKS

UMBRELLA = "xtreme"


def extended_group(name: str) -> str | None:
    """``xtreme-<task>-all``: the official languages plus the extra ones (outside the score)."""
    return f"xtreme-{name}-all" if TABLE[name].extra_languages else None


def group_names() -> list[str]:
    """Every lm-eval group this plugin defines: XTREME's first, then XTREME-R's, then the ``-all`` ones."""
    names = [UMBRELLA] + [TASKS[name].group for name in TASK_ORDER]
    for benchmark in BENCHMARKS.values():
        if benchmark.umbrella != UMBRELLA:
            names += [benchmark.umbrella] + [benchmark.task_group(name) for name in benchmark.tasks]
    return names + [g for g in (extended_group(name) for name in TABLE) if g]


def rows(benchmark: str = UMBRELLA) -> list[dict[str, Any]]:
    """One record per task of ``benchmark`` (what ``--json`` prints), its languages as that version scores them."""
    version = BENCHMARKS[benchmark]
    out = []
    for name in version.tasks:
        spec = version.spec(name)
        out.append({
            "task": name, "title": spec.title, "group": version.task_group(name), "extended_group": extended_group(name),
            "category": spec.category, "request": spec.request_kind, "metrics": list(spec.metrics),
            "score": "(" + " + ".join(spec.score_metrics) + f") / {len(spec.score_metrics)}"
            if len(spec.score_metrics) > 1 else spec.score_metrics[0],
            "leaf": spec.leaf("<lang>"), "languages": list(spec.languages),
            "extra_languages": list(spec.extra_languages), "split": spec.split, "notes": spec.notes,
        })
    return out


def as_json() -> str:
    others = {name: {"umbrella": b.umbrella, "title": b.title, "tasks": rows(name), "categories": b.categories}
              for name, b in BENCHMARKS.items() if name != UMBRELLA}
    return json.dumps({"umbrella": UMBRELLA, "groups": group_names(), "tasks": rows(), "benchmarks": others},
                      indent=2, ensure_ascii=False)


def _languages_cell(row: dict[str, Any]) -> str:
    cell = str(len(row["languages"]))
    extra = row["extra_languages"]
    if extra:
        more = " ".join(f"`{lang}`" for lang in extra) if len(extra) <= 3 else f"{len(extra)} more"
        cell += f" (+ {more} in `{row['extended_group']}`)"
    return cell


def markdown_table(benchmark: str = UMBRELLA) -> str:
    """The README's task table of one benchmark (a test keeps the README equal to it)."""
    lines = ["| group | task | languages | request | metrics | task score |", "|---|---|---|---|---|---|"]
    for row in rows(benchmark):
        lines.append(f"| `{row['group']}` | {row['title']} | {_languages_cell(row)} | {row['request']} | "
                     f"{', '.join(row['metrics'])} | {row['score']} |")
    return "\n".join(lines)


def plain_text(width: int | None = None) -> str:
    """Readable in any width: names on their own line start, languages wrapped below them."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    wrap = textwrap.TextWrapper(width=max(40, width), initial_indent="    ", subsequent_indent="    ",
                                break_long_words=False, break_on_hyphens=False)
    lines = []
    for name, version in BENCHMARKS.items():
        lines += _plain_benchmark(name, version.title, wrap)
    return "\n".join(lines)


def _plain_benchmark(benchmark: str, title: str, wrap: textwrap.TextWrapper) -> list[str]:
    version = BENCHMARKS[benchmark]
    lines = [f"{version.umbrella}  all {len(version.tasks)} task groups below (lm-eval prints each; the {title} "
             f"score comes from `xtreme-eval report`)", ""]
    for row in rows(benchmark):
        lines.append(f"{row['group']}  {row['title']} | {row['category']} | {row['request']} | "
                     f"metrics: {', '.join(row['metrics'])} | score: {row['score']}")
        lines += wrap.wrap(f"{len(row['languages'])} languages ({row['leaf']}): {' '.join(row['languages'])}")
        if row["extra_languages"]:
            n_extra = len(row["extra_languages"])
            lines.append(f"{row['extended_group']}  {row['title']} with {n_extra} more "
                         f"language{'s' if n_extra > 1 else ''}, outside the {title} score")
            lines += wrap.wrap(f"extra: {' '.join(row['extra_languages'])}")
        if row["notes"]:
            lines += wrap.wrap(f"note: {row['notes']}")
    return lines + [""]
