"""What ``xtreme-eval tasks`` prints, from the one table: plain text, JSON, or the README's table.

Plain text rather than a terminal table: names are never cut, whatever the width,
and piping the output (``xtreme-eval tasks | grep ...``) keeps every name whole.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Any

from xtreme_tasks.table import TASK_ORDER, TASKS

UMBRELLA = "xtreme"


def extended_group(name: str) -> str | None:
    """``xtreme-<task>-all``: the official languages plus the extra ones (outside the score)."""
    return f"xtreme-{name}-all" if TASKS[name].extra_languages else None


def group_names() -> list[str]:
    """Every lm-eval group this plugin defines."""
    names = [UMBRELLA] + [TASKS[name].group for name in TASK_ORDER]
    return names + [g for g in (extended_group(name) for name in TASK_ORDER) if g]


def rows() -> list[dict[str, Any]]:
    """One record per task (what ``--json`` prints)."""
    out = []
    for name in TASK_ORDER:
        spec = TASKS[name]
        out.append({
            "task": name, "title": spec.title, "group": spec.group, "extended_group": extended_group(name),
            "category": spec.category, "request": spec.request_kind, "metrics": list(spec.metrics),
            "score": "(" + " + ".join(spec.score_metrics) + f") / {len(spec.score_metrics)}"
            if len(spec.score_metrics) > 1 else spec.score_metrics[0],
            "leaf": spec.leaf("<lang>"), "languages": list(spec.languages),
            "extra_languages": list(spec.extra_languages), "split": spec.split, "notes": spec.notes,
        })
    return out


def as_json() -> str:
    return json.dumps({"umbrella": UMBRELLA, "groups": group_names(), "tasks": rows()}, indent=2, ensure_ascii=False)


def _languages_cell(row: dict[str, Any]) -> str:
    cell = str(len(row["languages"]))
    extra = row["extra_languages"]
    if extra:
        more = " ".join(f"`{lang}`" for lang in extra) if len(extra) <= 3 else f"{len(extra)} more"
        cell += f" (+ {more} in `{row['extended_group']}`)"
    return cell


def markdown_table() -> str:
    """The README's task table (a test keeps the README equal to it)."""
    lines = ["| group | task | languages | request | metrics | task score |", "|---|---|---|---|---|---|"]
    for row in rows():
        lines.append(f"| `{row['group']}` | {row['title']} | {_languages_cell(row)} | {row['request']} | "
                     f"{', '.join(row['metrics'])} | {row['score']} |")
    return "\n".join(lines)


def plain_text(width: int | None = None) -> str:
    """Readable in any width: names on their own line start, languages wrapped below them."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    wrap = textwrap.TextWrapper(width=max(40, width), initial_indent="    ", subsequent_indent="    ",
                                break_long_words=False, break_on_hyphens=False)
    lines = [f"{UMBRELLA}  all nine task groups below (lm-eval prints each; the XTREME score comes "
             "from `xtreme-eval report`)", ""]
    for row in rows():
        lines.append(f"{row['group']}  {row['title']} | {row['category']} | {row['request']} | "
                     f"metrics: {', '.join(row['metrics'])} | score: {row['score']}")
        lines += wrap.wrap(f"{len(row['languages'])} languages ({row['leaf']}): {' '.join(row['languages'])}")
        if row["extra_languages"]:
            n_extra = len(row["extra_languages"])
            lines.append(f"{row['extended_group']}  {row['title']} with {n_extra} more "
                         f"language{'s' if n_extra > 1 else ''}, outside the XTREME score")
            lines += wrap.wrap(f"extra: {' '.join(row['extra_languages'])}")
        if row["notes"]:
            lines += wrap.wrap(f"note: {row['notes']}")
    return "\n".join(lines)
