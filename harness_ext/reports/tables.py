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

from harness_ext.reports.board import BENCHMARK_TITLES, PARTIAL_MARK, build_rows, short_names, size_text
from harness_ext.reports.escape import console_text, csv_cell, markdown_text, natural_key
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

    esc = markdown_text  # names and notes come from other people's files: no HTML, links or cell breaks

    def cell(c: Cell) -> str:
        return c.text if _is_number(c.value) else esc(c.text)  # our own number formatting stays readable

    lines = [f"### {esc(table.title)}", ""]
    lines.append("| " + " | ".join(esc(h) for h in table.header) + " |")
    numeric = _numeric_columns(table)
    lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    if table.notes:
        lines.append("")
        lines.extend(f"- {esc(note)}" for note in table.notes)
    return "\n".join(lines) + "\n"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numeric_columns(table: Table) -> list[bool]:
    """Right-align a column when every filled cell holds a number, or none is filled (a score column
    of incomplete rows); the first column never."""
    out = []
    for i in range(len(table.header)):
        values = [row[i].value for row in table.rows if row[i].value not in (None, "")]
        out.append(i > 0 and all(_is_number(v) for v in values))
    return out


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", PARTIAL_MARK: r"\textdagger{}",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in console_text(text))


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
    """Header row, then raw values (full precision; empty for missing). Notes are not written.
    Text that a spreadsheet would run as a formula is prefixed with ``'`` (see :mod:`.escape`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in table.header])
    for row in table.rows:
        writer.writerow(["" if c.value is None else (repr(c.value) if isinstance(c.value, float) else csv_cell(c.value))
                         for c in row])
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


def svg_image(svg: str | bytes, alt: str) -> str:
    """An SVG as an ``<img>`` with a data: URL: shown inline, works from ``file://``, and an
    SVG shown as an image never runs scripts or loads anything (whatever its labels hold)."""
    import base64

    data = svg.encode("utf-8") if isinstance(svg, str) else svg
    return (f'<img class="figure" alt="{html.escape(alt)}" style="max-width:100%;height:auto" '
            f'src="data:image/svg+xml;base64,{base64.b64encode(data).decode("ascii")}">')


def write_tables(tables: Sequence[Table], out: Path, formats: Sequence[str] = FORMATS, title: str = "XTREME report",
                 figures: Sequence[tuple[str, bytes]] = ()) -> list[Path]:
    """Write each table as ``<out>/<name>.<fmt>`` and all of them as ``report.md`` / ``report.html``.

    ``figures``: (caption, SVG bytes) shown at the top of ``report.html``. Files are replaced
    atomically, so a report folder read while being rewritten is never half a table.
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
        shown = [f"<figure>{svg_image(svg, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
                 for caption, svg in figures]
        atomic_write_text(path, html_page(title, "\n".join(shown + [to_html(t, standalone=False) for t in tables])))
        written.append(path)
    return written


def combined_markdown(tables: Sequence[Table], title: str = "XTREME report") -> str:
    return f"# {markdown_text(title)}\n\n" + "\n".join(to_markdown(t) for t in tables)


def read_csv(text: str) -> list[dict[str, str]]:
    """Parse a table written by :func:`to_csv` (for tests and downstream scripts)."""
    return list(csv.DictReader(io.StringIO(text)))


# ----------------------------------------------------------------------------- report tables

def partial_note(title: str = "XTREME") -> str:
    """What ``†`` means, for a benchmark version's title (the page leaves out the CSV half)."""
    return (f"{PARTIAL_MARK} = partial: the mean over the languages (or tasks) the row has, not an {title} score "
            f"({title} never averages over fewer); CSV holds official scores only.")


#: under every XTREME-R leaderboard (tables and page): how its categories differ from XTREME's
XTREME_R_CATEGORY_NOTE = ("Categories as the official evaluate.py --xtreme_version xtreme-r: XCOPA counts in "
                          "Classification and Multi-choice, LAReQA in the overall score only.")

def _suffix(benchmark: str) -> str:
    """File-name suffix of a version's tables: none for XTREME (the names it always had)."""
    return "" if benchmark == DEFAULT_BENCHMARK else f"_{benchmark}"


def _name_notes(keys: Sequence[str], names: Mapping[str, str]) -> list[str]:
    return [f"{names[k]} = {k}" for k in sorted(keys, key=natural_key) if names[k] != k]


def leaderboard_table(scores: Mapping[str, SystemScores], systems: Mapping[str, Any] | None = None,
                      sizes: Mapping[str, int] | None = None, benchmark: str = DEFAULT_BENCHMARK) -> Table:
    """Systems x (overall score, category scores, task scores, size, protocol, benchmark, status) of one
    benchmark version; complete rows first, best first (see :func:`harness_ext.reports.board.build_rows`).
    Rows of another version are refused (a row never mixes them).

    A row's name is its short name (the full one in CSV and a footnote); a partial row shows the
    numbers it has, marked partial; its status is one short badge (the full status in CSV and a note)."""
    version = get_benchmark(benchmark)
    other = sorted({getattr(s, "benchmark", DEFAULT_BENCHMARK) for s in scores.values()} - {version.name})
    if other:
        raise ValueError(f"leaderboard_table({benchmark!r}) got rows of {', '.join(other)}; one table per version")
    categories = list(category_tasks(benchmark))
    header = (["System", version.title] + [CATEGORY_TITLES.get(c, c) for c in categories]
              + [version.spec(t).title for t in version.tasks] + ["Size", "Protocol", "Benchmark", "Status"])
    table = Table(f"leaderboard{_suffix(benchmark)}",
                  f"{version.title} leaderboard (task score = mean over official languages; QA = (EM+F1)/2)", header)
    rows = build_rows(scores, systems, sizes)
    for row in rows:
        def number(v):
            return Cell(v.official, v.text())

        table.add([Cell(row.key, row.name), number(row.xtreme)] + [number(row.categories[c]) for c in categories]
                  + [number(row.tasks[t]) for t in version.tasks]
                  + [Cell(row.size, size_text(row.size)), row.protocol, BENCHMARK_TITLES.get(row.benchmark, row.benchmark),
                     Cell(scores[row.key].status(), row.badge or "complete")])
    if any(v.partial for row in rows for v in [row.xtreme, *row.categories.values(), *row.tasks.values()]):
        table.notes.append(partial_note(version.title))
    table.notes.extend(f"{row.name}: {row.status}" for row in rows if not row.complete)
    full = {scores[r.key].name: r.name for r in rows}  # system name -> shown name (keys may carry @xtreme-r)
    table.notes.extend(_name_notes(list(full), full))
    if any("prompted" in p for s in scores.values() for p in s.protocols):
        table.notes.append("Prompted-LLM rows (in-context, no fine-tuning) are not the fine-tuned XTREME protocol: "
                           "compare them with each other at the same number of shots, not with fine-tuned rows.")
    if any(not s.complete for s in scores.values()):
        table.notes.append(f"An incomplete row has no {version.title} score: it is the mean of all {len(version.tasks)} "
                           "task scores, never of fewer; a category needs all its tasks.")
    if benchmark == "xtreme-r":
        table.notes.append(XTREME_R_CATEGORY_NOTE)
    return table


def language_tables(scores: Mapping[str, SystemScores], benchmark: str = DEFAULT_BENCHMARK) -> list[Table]:
    """Per task: rows (system, metric), columns average + every official language (+ extra ones seen)."""
    version = get_benchmark(benchmark)
    tables = []
    names = short_names(sorted({s.name for s in scores.values()}))  # by system name (XTREME-R rows: NAME@xtreme-r keys)
    for task in version.tasks:
        rows = [s for s in scores.values() if task in s.tasks]
        if not rows:
            continue
        spec = version.spec(task)
        extra = [l for l in spec.extra_languages if any(l in s.tasks[task].per_language for s in rows)]
        metrics = list(spec.score_metrics) + [m for m in spec.metrics if m not in spec.score_metrics]
        title = f"{spec.title}: per-language results" + (f" ({version.title})" if benchmark != DEFAULT_BENCHMARK else "")
        table = Table(f"languages{_suffix(benchmark)}_{task}", title, ["System", "Metric", "Avg"] + list(spec.languages) + extra)
        for system in sorted(rows, key=lambda s: natural_key(names[s.name])):
            result = system.tasks[task]
            present = [m for m in metrics if any(m in v for v in result.per_language.values())]
            for metric in present:
                table.add([Cell(system.name, names[system.name]), METRIC_TITLES.get(metric, metric),
                           Cell.number(result.averages.get(metric))]
                          + [Cell.number(result.per_language.get(l, {}).get(metric)) for l in list(spec.languages) + extra])
            if result.missing_languages:
                table.notes.append(f"{names[system.name]}: no result for {', '.join(result.missing_languages)}, "
                                   f"so no {spec.title} average")
        if extra:
            table.notes.append(f"{', '.join(extra)}: outside the {version.title} score, not in the average")
        table.notes.extend(_name_notes([s.name for s in rows], names))
        tables.append(table)
    return tables


def by_benchmark(scores: Mapping[str, SystemScores]) -> dict[str, dict[str, SystemScores]]:
    """Rows split by their version (``SystemScores.benchmark``), in table order."""
    out: dict[str, dict[str, SystemScores]] = {}
    for key, row in scores.items():
        out.setdefault(getattr(row, "benchmark", DEFAULT_BENCHMARK), {})[key] = row
    return {name: out[name] for name in BENCHMARKS if name in out}


def report_tables(scores: Mapping[str, SystemScores], systems: Mapping[str, Any] | None = None,
                  sizes: Mapping[str, int] | None = None) -> list[Table]:
    """Per benchmark version found (XTREME first): its leaderboard, then one language table per
    task found; run notes go under the leaderboard."""
    tables: list[Table] = []
    for benchmark, rows in by_benchmark(scores).items():
        board = leaderboard_table(rows, systems, sizes, benchmark)
        for system in sorted(rows.values(), key=lambda s: natural_key(s.name)):
            board.notes.extend(system.notes)
        tables += [board, *language_tables(rows, benchmark)]
    return tables
