"""Tables: one small in-memory shape, four writers (Markdown, LaTeX, CSV, HTML).

Why one shape: the leaderboard, the per-task language breakdowns and the efficacy
tables all go to the same four formats, so a table is built once (header, rows of
cells, footnotes) and each writer only knows its syntax. Cells keep the raw value
(CSV gets full precision, so a CSV round trip gives back the numbers) and the
displayed text (two decimals, ``-`` for missing, ``+1.20`` for gains).
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from harness_ext.reports.rules import SystemScores, category_tasks, is_number
from harness_ext.reports.submission import atomic_write_text
from xtreme_tasks.table import BENCHMARKS, DEFAULT_BENCHMARK, get_benchmark

FORMATS = ("md", "tex", "csv", "html")
MISSING = "-"
CATEGORY_TITLES = {
    "classification": "Classification", "structured_prediction": "Struct. pred.", "qa": "QA", "retrieval": "Retrieval",
    "multi_choice": "Multi-choice",
}
METRIC_TITLES = {"acc": "Acc", "f1": "F1", "em": "EM", "precision": "P", "recall": "R",
                 "token_acc": "Token acc", "acc_reverse": "Acc (xx->en)", "map@20": "mAP@20"}


@dataclass(frozen=True)
class Cell:
    """A value and how it is shown; ``value`` is what CSV writes (None -> empty)."""

    value: Any
    text: str

    @classmethod
    def number(cls, value: float | None, digits: int = 2, signed: bool = False) -> "Cell":
        if not is_number(value):
            return cls(None, MISSING)
        return cls(float(value), f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}")  # type: ignore[arg-type]

    @classmethod
    def of(cls, value: Any) -> "Cell":
        if isinstance(value, Cell):
            return value
        if isinstance(value, float):
            return cls.number(value)
        return cls(value, "" if value is None else str(value))


@dataclass
class Table:
    """Header + rows of cells + footnotes; ``name`` is the file stem."""

    name: str
    title: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, values: Iterable[Any]) -> None:
        row = [Cell.of(v) for v in values]
        if len(row) != len(self.header):
            raise ValueError(f"table {self.name}: row has {len(row)} cells for {len(self.header)} columns")
        self.rows.append(row)


# ----------------------------------------------------------------------------- writers


def to_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown: ``###`` title, pipe table (first column left, others right)."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"### {table.title}", ""]
    lines.append("| " + " | ".join(esc(h) for h in table.header) + " |")
    numeric = _numeric_columns(table)
    lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(esc(c.text) for c in row) + " |")
    if table.notes:
        lines.append("")
        lines.extend(f"- {esc(note)}" for note in table.notes)
    return "\n".join(lines) + "\n"


def _numeric_columns(table: Table) -> list[bool]:
    """Right-align a column when every filled cell holds a number, or none is filled (a score column
    of incomplete rows); the first column never."""
    out = []
    for i in range(len(table.header)):
        values = [row[i].value for row in table.rows if row[i].value not in (None, "")]
        out.append(i > 0 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values))
    return out


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: Table) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``)."""
    spec = "".join("r" if n else "l" for n in _numeric_columns(table))
    lines = [
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
        " & ".join(latex_escape(h) for h in table.header) + r" \\", r"\midrule",
    ]
    for row in table.rows:
        lines.append(" & ".join(latex_escape(c.text) for c in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = table.title + (". " + " ".join(table.notes) if table.notes else "")
    lines += [rf"\caption{{{latex_escape(caption)}}}", rf"\label{{tab:{latex_escape(table.name)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """Header row, then raw values (full precision; empty for missing). Notes are not written."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(["" if c.value is None else (repr(c.value) if isinstance(c.value, float) else c.value) for c in row])
    return out.getvalue()


def to_html(table: Table, standalone: bool = True) -> str:
    """An HTML ``<table>`` (with a minimal page around it when ``standalone``)."""
    parts = [f"<h3>{html.escape(table.title)}</h3>", f'<table class="xtreme" id="{html.escape(table.name)}">',
             "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header) + "</tr></thead>", "<tbody>"]
    for row in table.rows:
        cells = "".join(
            (f'<td class="num">' if isinstance(c.value, (int, float)) else "<td>") + f"{html.escape(c.text)}</td>" for c in row
        )
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</tbody></table>")
    if table.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes) + "</ul>")
    body = "\n".join(parts)
    return html_page(table.title, body) if standalone else body


def html_page(title: str, body: str) -> str:
    style = ("body{font-family:sans-serif}table.xtreme{border-collapse:collapse;margin-bottom:1em}"
             "table.xtreme td,table.xtreme th{border:1px solid #ccc;padding:2px 6px}td.num{text-align:right}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}\n</body></html>\n")


WRITERS: dict[str, Callable[[Table], str]] = {"md": to_markdown, "tex": to_latex, "csv": to_csv, "html": to_html}


def write_tables(tables: Sequence[Table], out: Path, formats: Sequence[str] = FORMATS, title: str = "XTREME report") -> list[Path]:
    """Write each table as ``<out>/<name>.<fmt>`` and all of them as ``report.md`` / ``report.html``.

    Files are replaced atomically, so a report folder read while being rewritten is never half a table.
    """
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ValueError(f"unknown table format(s) {unknown}; choose from {', '.join(FORMATS)}")
    written: list[Path] = []
    for table in tables:
        for fmt in formats:
            path = out / f"{table.name}.{fmt}"
            atomic_write_text(path, WRITERS[fmt](table))
            written.append(path)
    if "md" in formats:
        path = out / "report.md"
        atomic_write_text(path, combined_markdown(tables, title))
        written.append(path)
    if "html" in formats:
        path = out / "report.html"
        atomic_write_text(path, html_page(title, "\n".join(to_html(t, standalone=False) for t in tables)))
        written.append(path)
    return written


def combined_markdown(tables: Sequence[Table], title: str = "XTREME report") -> str:
    return f"# {title}\n\n" + "\n".join(to_markdown(t) for t in tables)


def read_csv(text: str) -> list[dict[str, str]]:
    """Parse a table written by :func:`to_csv` (for tests and downstream scripts)."""
    return list(csv.DictReader(io.StringIO(text)))


# ----------------------------------------------------------------------------- report tables


def _suffix(benchmark: str) -> str:
    """File-name suffix of a version's tables: none for XTREME (the names it always had)."""
    return "" if benchmark == DEFAULT_BENCHMARK else f"_{benchmark}"


def leaderboard_table(scores: Mapping[str, SystemScores], benchmark: str = DEFAULT_BENCHMARK) -> Table:
    """Systems x (overall score, category scores, task scores, status) of one benchmark version;
    complete rows first, best first. Rows of another version are refused (a row never mixes them)."""
    version = get_benchmark(benchmark)
    other = sorted({s.benchmark for s in scores.values()} - {version.name})
    if other:
        raise ValueError(f"leaderboard_table({benchmark!r}) got rows of {', '.join(other)}; one table per version")
    categories = list(category_tasks(benchmark))
    header = (["System", version.title] + [CATEGORY_TITLES.get(c, c) for c in categories]
              + [version.spec(t).title for t in version.tasks] + ["Protocol", "Status"])
    table = Table(f"leaderboard{_suffix(benchmark)}",
                  f"{version.title} leaderboard (task score = mean over official languages; QA = (EM+F1)/2)", header)

    def order(item: SystemScores) -> tuple:
        return (item.xtreme is None, -(item.xtreme or 0.0), item.name)

    for row in sorted(scores.values(), key=order):
        cats = row.categories
        table.add([row.name, Cell.number(row.xtreme)] + [Cell.number(cats[c]) for c in categories]
                  + [Cell.number(row.task_scores[t]) for t in version.tasks] + [" + ".join(row.protocols), row.status()])
    if any("prompted" in p for s in scores.values() for p in s.protocols):
        table.notes.append("Prompted-LLM rows (in-context, no fine-tuning) are not the fine-tuned XTREME protocol: "
                           "compare them with each other at the same number of shots, not with fine-tuned rows.")
    if any(not s.complete for s in scores.values()):
        table.notes.append(f"An incomplete row has no {version.title} score: it is the mean of all {len(version.tasks)} "
                           "task scores, never of fewer; a category needs all its tasks.")
    if benchmark == "xtreme-r":
        table.notes.append("Categories as the official evaluate.py --xtreme_version xtreme-r: XCOPA counts in "
                           "Classification and Multi-choice, LAReQA in the overall score only.")
    return table


def language_tables(scores: Mapping[str, SystemScores], benchmark: str = DEFAULT_BENCHMARK) -> list[Table]:
    """Per task: rows (system, metric), columns average + every official language (+ extra ones seen)."""
    version = get_benchmark(benchmark)
    tables = []
    for task in version.tasks:
        rows = [s for s in scores.values() if task in s.tasks]
        if not rows:
            continue
        spec = version.spec(task)
        extra = [l for l in spec.extra_languages if any(l in s.tasks[task].per_language for s in rows)]
        metrics = list(spec.score_metrics) + [m for m in spec.metrics if m not in spec.score_metrics]
        title = f"{spec.title}: per-language results" + (f" ({version.title})" if benchmark != DEFAULT_BENCHMARK else "")
        table = Table(f"languages{_suffix(benchmark)}_{task}", title, ["System", "Metric", "Avg"] + list(spec.languages) + extra)
        for system in sorted(rows, key=lambda s: s.name):
            result = system.tasks[task]
            present = [m for m in metrics if any(m in v for v in result.per_language.values())]
            for metric in present:
                table.add([system.name, METRIC_TITLES.get(metric, metric), Cell.number(result.averages.get(metric))]
                          + [Cell.number(result.per_language.get(l, {}).get(metric)) for l in list(spec.languages) + extra])
            if result.missing_languages:
                table.notes.append(f"{system.name}: no result for {', '.join(result.missing_languages)}, so no {spec.title} average")
        if extra:
            table.notes.append(f"{', '.join(extra)}: outside the {version.title} score, not in the average")
        tables.append(table)
    return tables


def by_benchmark(scores: Mapping[str, SystemScores]) -> dict[str, dict[str, SystemScores]]:
    """Rows split by their version (``SystemScores.benchmark``), in table order."""
    out: dict[str, dict[str, SystemScores]] = {}
    for key, row in scores.items():
        out.setdefault(getattr(row, "benchmark", DEFAULT_BENCHMARK), {})[key] = row
    return {name: out[name] for name in BENCHMARKS if name in out}


def report_tables(scores: Mapping[str, SystemScores]) -> list[Table]:
    """Per benchmark version found (XTREME first): its leaderboard, then one language table per
    task found; run notes go under the leaderboard."""
    tables: list[Table] = []
    for benchmark, rows in by_benchmark(scores).items():
        board = leaderboard_table(rows, benchmark)
        for system in rows.values():
            board.notes.extend(system.notes)
        tables += [board, *language_tables(rows, benchmark)]
    return tables
