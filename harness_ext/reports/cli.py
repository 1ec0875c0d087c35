"""``xtreme-eval report | efficacy | export | sweep``: thin typer shells over the report modules.

``harness_ext.cli`` calls :func:`register` when this module exists. Bad input raises
``ReportError`` / ``SweepError`` / ``SystemsError``, which the main CLI prints as one
line with exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

RESULTS_HELP = ("lm-eval results files or folders holding them (searched recursively); NAME=PATH labels the "
                "runs under PATH as system NAME")
BENCHMARK_HELP = ("xtreme or xtreme-r: score every run with this version's tasks, languages and categories "
                  "(default: each run under the version(s) whose groups it ran; bare leaves of shared tasks: xtreme)")


def _benchmark(value: Optional[str]) -> Optional[str]:
    """``--benchmark`` checked: one line naming the choices for an unknown version."""
    from harness_ext.reports.official import ReportError
    from xtreme_tasks.table import BENCHMARKS

    if value is not None and value not in BENCHMARKS:
        raise ReportError(f"--benchmark {value!r}: unknown benchmark version; use one of {', '.join(BENCHMARKS)}")
    return value


def _exit(code: int) -> None:
    """Exit with ``code`` as SystemExit: ``harness_ext.cli.main`` runs click with
    ``standalone_mode=False`` and drops the value a ``typer.Exit`` turns into, but returns
    a SystemExit's code, so a failed job still gives a non-zero exit status."""
    if code:
        raise SystemExit(code)


def _writable(out: Optional[Path]) -> None:
    """Check ``--out`` before reading or running anything."""
    if out is not None:
        from harness_ext.outputs import require_writable

        require_writable(out, "--out")


def _formats(value: str) -> list[str]:
    from harness_ext.reports.tables import FORMATS

    formats = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise typer.BadParameter(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    return formats


def report(
    results: List[str] = typer.Argument(..., help=RESULTS_HELP),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for index.html (the leaderboard page), "
                                       "leaderboard.*, languages_<task>.*, report.md/html"),
    label: Optional[str] = typer.Option(None, "--label", help="name every run as this one system"),
    formats: str = typer.Option("md,tex,csv,html", "--formats", help="comma-separated: md, tex, csv, html "
                                "(html also writes index.html, the leaderboard page)"),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", "-c", help="checkpoints.yaml: model sizes, and "
                                               "the efficacy view (gains over baselines by size) on the page"),
    resamples: int = typer.Option(1000, "--resamples", help="bootstrap resamples of the efficacy view"),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help=BENCHMARK_HELP),
) -> None:
    """Leaderboards (XTREME / XTREME-R score, categories, tasks) and per-language tables from lm-eval results,
    and with --out a static leaderboard page (index.html: opens from file:// or any static host)."""
    _writable(out)
    from harness_ext.reports.results import all_scores, collect
    from harness_ext.reports.tables import combined_markdown, report_tables, write_tables

    systems = collect(results, label)
    scores = all_scores(systems, _benchmark(benchmark))
    meta = {}
    if checkpoints is not None:
        from harness_ext.reports.efficacy import metadata_from_systems
        from harness_ext.systems import load_systems

        meta = metadata_from_systems(load_systems(checkpoints))
    sizes = {name: info.size for name, info in meta.items()}
    tables = report_tables(scores, systems, sizes)
    sys.stdout.write(combined_markdown(tables))
    if out is not None:
        chosen = _formats(formats)
        written = write_tables(tables, out, chosen)
        if "html" in chosen:
            written.append(_write_page(out, systems, scores, meta, resamples))
        typer.echo(f"wrote {len(written)} files to {out}" + (f"; open {out / 'index.html'}" if "html" in chosen else ""),
                   err=True)


def _write_page(out: Path, systems, scores, meta, resamples: int) -> Path:
    """``<out>/index.html``; with checkpoints.yaml metadata, the efficacy view too."""
    from harness_ext.reports.site import PAGE_NAME, build_page
    from harness_ext.reports.submission import atomic_write_text

    eff = None
    if meta:
        from harness_ext.reports.efficacy import compute_efficacy

        from harness_ext.reports.site import efficacy_rows

        eff = compute_efficacy(systems, efficacy_rows(scores), meta, n_resamples=resamples)
    path = out / PAGE_NAME
    atomic_write_text(path, build_page(scores, systems, {n: m.size for n, m in meta.items()}, eff))
    return path


def efficacy(
    results: List[str] = typer.Argument(..., help=RESULTS_HELP),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", "-c", help="checkpoints.yaml with family/size/intermediate task/seed (default: $XTREME_CHECKPOINTS or ./checkpoints.yaml)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for the tables and efficacy_scaling.png/.svg"),
    baseline: Optional[List[str]] = typer.Option(None, "--baseline", help="SYSTEM=BASELINE: compare SYSTEM with BASELINE (repeatable)"),
    resamples: int = typer.Option(1000, "--resamples", help="bootstrap resamples"),
    confidence: float = typer.Option(0.95, "--confidence", help="interval level"),
    seed: int = typer.Option(0, "--seed", help="bootstrap random seed"),
    formats: str = typer.Option("md,tex,csv,html", "--formats", help="comma-separated: md, tex, csv, html"),
    benchmark: str = typer.Option("xtreme", "--benchmark", "-b", help="xtreme or xtreme-r: the version whose scores are compared"),
) -> None:
    """Gain of intermediate-task training over each system's baseline, by size and seed, with paired bootstrap CIs."""
    _writable(out)
    from harness_ext.reports.efficacy import compute_efficacy, efficacy_tables, metadata_from_systems
    from harness_ext.reports.official import ReportError
    from harness_ext.reports.results import all_scores, collect
    from harness_ext.reports.tables import combined_markdown, write_tables
    from harness_ext.systems import load_systems

    explicit = {}
    for item in baseline or []:
        system, sep, base = item.partition("=")
        if not sep or not system or not base:
            raise ReportError(f"--baseline {item!r}: expected SYSTEM=BASELINE")
        explicit[system] = base
    systems = collect(results)
    meta = metadata_from_systems(load_systems(checkpoints))
    eff = compute_efficacy(systems, all_scores(systems, _benchmark(benchmark)), meta, explicit, resamples, seed, confidence)
    tables = efficacy_tables(eff)
    sys.stdout.write(combined_markdown(tables, "Intermediate-task efficacy"))
    if out is not None:
        plots = []
        if eff.groups:  # report.html shows the plot (the SVG) above the tables
            from harness_ext.reports.plots import plot_scaling

            plots = plot_scaling(eff, out / "efficacy_scaling")
        figures = [("Gain over baseline by model size (bars: CI of the mean gain, else seed std)" +
                    (f"; {eff.limit_note()}" if eff.limited else ""), plots[-1].read_bytes())] if plots else []
        written = write_tables(tables, out, _formats(formats), title="Intermediate-task efficacy", figures=figures) + plots
        if not eff.groups:
            typer.echo("no plot: no system with an intermediate task has a baseline system in these results", err=True)
        typer.echo(f"wrote {len(written)} files to {out}", err=True)


def export(
    results: List[str] = typer.Argument(..., help=RESULTS_HELP + " (with samples_*.jsonl from --log_samples)"),
    out: Path = typer.Option(..., "--out", "-o", help="submission folder: <task>/test-<lang>.{tsv,json}"),
    system: Optional[str] = typer.Option(None, "--system", help="which system, when the results hold several"),
    tasks: Optional[List[str]] = typer.Option(None, "--tasks", "-t", help="only these tasks"),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="also write languages evaluated with --limit"),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="xtreme or xtreme-r: the submission's "
                                            "version (default: the version of the system's runs)"),
) -> None:
    """Write predictions in the official XTREME / XTREME-R submission layout from lm-eval samples files."""
    _writable(out)
    from harness_ext.reports.export import export_predictions
    from harness_ext.reports.results import collect

    task_list = [t.strip() for entry in tasks or [] for t in entry.split(",") if t.strip()]
    done = export_predictions(collect(results), out, system, task_list or None, allow_partial, _benchmark(benchmark))
    for path in done.written:
        typer.echo(f"wrote {path}")
    for what, reason in done.not_exported:
        typer.echo(f"not exported: {what}: {reason}", err=True)
    # tasks named with --tasks must be written whole: less than asked is never exit 0
    short = sorted({t for t in task_list for what, _ in done.not_exported
                    if what.startswith(f"xtreme-{t}-") or what == t == "bucc2018"})
    if short:
        typer.echo(f"error: --tasks {','.join(task_list)}: not every language of {', '.join(short)} was exported "
                   "(reasons above)", err=True)
    if not done.written or short:
        _exit(1)


def sweep(
    checkpoints: Path = typer.Argument(..., help="checkpoints.yaml"),
    out: Path = typer.Option(..., "--out", "-o", help="results folder (rerun with the same folder to resume)"),
    tasks: Optional[List[str]] = typer.Option(None, "--tasks", "-t", help="tasks or groups (xnli,pawsx / xtreme_xnli / xtreme-r_xcopa / all); default all"),
    systems: Optional[List[str]] = typer.Option(None, "--systems", "-s", help="only these systems (default: all in the file)"),
    ray: Optional[str] = typer.Option(None, "--ray", help="run on Ray: auto, ADDRESS, or local"),
    ray_cpus: Optional[int] = typer.Option(None, "--ray-cpus", help="CPUs of a --ray local cluster"),
    limit: Optional[float] = typer.Option(None, "--limit", help="examples per language (smoke runs; not XTREME numbers)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    device: Optional[str] = typer.Option(None, "--device"),
    log_samples: bool = typer.Option(True, "--log-samples/--no-log-samples", help="keep per-example samples (needed by efficacy CIs and export)"),
    model_args: Optional[str] = typer.Option(None, "--model-args", help="more --model_args for every job, k=v,k=v (e.g. max_length=256)"),
    benchmark: str = typer.Option("xtreme", "--benchmark", "-b", help="xtreme or xtreme-r: whose tasks 'all' means and "
                                  "whose groups run (xtreme-r jobs write <system>/xtreme-r_<task>/)"),
) -> None:
    """Run every system x task of checkpoints.yaml; finished jobs are skipped, failures reported per job."""
    _writable(out)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness_ext.reports.results import parse_model_args
    from harness_ext.sweep import run_sweep, summary_table

    console = Console(stderr=True)
    split = lambda values: [v.strip() for entry in values or [] for v in entry.split(",") if v.strip()]  # noqa: E731
    progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=console, transient=True)
    state = {}

    def on_plan(jobs, not_applicable):
        state["bar"] = progress.add_task("", total=len(jobs))
        console.print(f"{len(jobs)} jobs ({len(not_applicable)} system x task pairs without a checkpoint)",
                      markup=False, highlight=False)

    from harness_ext.reports.escape import console_text

    def on_done(outcome):
        # names and failure details come from checkpoints.yaml and checkpoints: no control characters reach the terminal
        progress.update(state["bar"], advance=1, description=console_text(f"{outcome.id}: {outcome.status}"))
        line = f"{outcome.id}: {outcome.status}"
        if outcome.status == "done":
            line += f" ({outcome.seconds:.1f}s)"
        if outcome.status == "failed":
            line += f": {outcome.detail} (log: {outcome.log or 'none'})"
        console.print(console_text(line), markup=False, highlight=False, soft_wrap=True)

    with progress:
        summary = run_sweep(checkpoints, out, split(tasks) or None, split(systems) or None, ray=ray, ray_num_cpus=ray_cpus,
                            limit=limit, batch_size=batch_size, device=device, log_samples=log_samples,
                            model_args=parse_model_args(model_args), on_done=on_done, on_plan=on_plan,
                            benchmark=_benchmark(benchmark) or "xtreme")
    from harness_ext.reports.tables import to_markdown

    sys.stdout.write(to_markdown(summary_table(summary.outcomes)))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.counts().items()))
    if summary.write_error:
        console.print(console_text(f"{counts}; error: {summary.write_error}"), markup=False, highlight=False,
                      soft_wrap=True)
        _exit(1)
    console.print(console_text(f"{counts}; summary and tables in {out}"), markup=False, highlight=False)
    _exit(1 if summary.failed else 0)


def register(app: typer.Typer) -> None:
    """Add the report and sweep commands to ``xtreme-eval``."""
    app.command("report")(report)
    app.command("efficacy")(efficacy)
    app.command("export")(export)
    app.command("sweep")(sweep)
