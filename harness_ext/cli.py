"""``xtreme-eval``: the command line of xtreme-harness.

Each command is a thin shell over a function that does the work, so the same
thing is reachable from Python (see ``harness_ext.api``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="xtreme-eval",
    help="XTREME zero-shot cross-lingual transfer on lm-evaluation-harness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
checkpoints_app = typer.Typer(help="Check and list the systems in checkpoints.yaml.", no_args_is_help=True)
app.add_typer(checkpoints_app, name="checkpoints")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    help="Run lm_eval with the XTREME tasks and the `xtreme` model registered, whatever the "
    "start-up hook's state. All arguments go to lm_eval, e.g.: "
    "xtreme-eval run --tasks xtreme_xnli --model xtreme --model_args pretrained=PATH",
)
def run(ctx: typer.Context) -> None:
    from harness_ext.api import run_lm_eval_cli

    raise typer.Exit(run_lm_eval_cli(list(ctx.args)))


@app.command(help="Score a folder of predictions in the official XTREME / XTREME-R layout "
             "(<task>/test-<lang>.{tsv,json,jsonl}, e.g. from `xtreme-eval export`) with the official rules, "
             "against a folder of labels in that layout (--labels) or the local test data (--data-dir).")
def score(
    predictions: Path = typer.Option(..., "--predictions", "-p", help="predictions folder"),
    labels: Optional[Path] = typer.Option(None, "--labels", "-l", help="labels folder (submission layout)"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", "-d", help="the XTREME test data (any layout "
                                            "XTREME_DATA_DIR takes) to read the labels from, instead of --labels"),
    tasks: Optional[List[str]] = typer.Option(None, "--tasks", "-t", help="only these tasks"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    benchmark: Optional[str] = typer.Option(
        None, "--benchmark", "-b", help="xtreme or xtreme-r (evaluate.py's --xtreme_version); default: xtreme-r when "
        "the folder has xcopa/, lareqa/ or mewslix/ and no pawsx/ or bucc2018/, else xtreme"),
) -> None:
    from harness_ext.reports.cli import _benchmark
    from harness_ext.reports.official import score_command

    raise typer.Exit(score_command(predictions, labels, tasks or None, as_json, _benchmark(benchmark), data_dir=data_dir))


@app.command(help="Built-in offline demo: builds a tiny checkpoint, runs real XTREME tasks end to end "
             "through lm_eval on data found on this machine, and prints the tables. Its scores are "
             "NOT XTREME results.")
def demo(
    out: Path = typer.Option(Path("xtreme_demo_out"), "--out", help="where results and tables go"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="XTREME data folder (default: ../shared/data if present)"),
    limit: int = typer.Option(40, "--limit", help="examples per language"),
    only: Optional[List[str]] = typer.Option(None, "--only", help="run only these tasks (xnli, udpos, xquad, tatoeba)"),
) -> None:
    from harness_ext.demo import run_demo

    raise typer.Exit(run_demo(out, data_dir=data_dir, limit=limit, only=only or None))


@app.command(name="tasks", help="List the XTREME groups and tasks, their languages and metrics (from the one "
             "table). Names are printed whole at any width and when piped.")
def list_tasks(
    as_json: bool = typer.Option(False, "--json", help="print JSON (groups, then one record per task)"),
    markdown: bool = typer.Option(False, "--markdown", help="print the README's task tables (XTREME, then XTREME-R)"),
) -> None:
    from harness_ext import task_list

    tables = "\n\n".join(task_list.markdown_table(name) for name in task_list.BENCHMARKS)
    typer.echo(task_list.as_json() if as_json else tables if markdown else task_list.plain_text())


@checkpoints_app.command("validate", help="Validate a checkpoints.yaml: schema, paths, heads, label sets.")
def checkpoints_validate(path: Optional[Path] = typer.Argument(None, help="default: $XTREME_CHECKPOINTS or ./checkpoints.yaml")) -> None:
    from harness_ext.systems import validate_command

    raise typer.Exit(validate_command(path))


def _register_optional_commands() -> None:
    """Commands that live with their feature (reports, sweeps) register themselves here."""
    import importlib

    for module in ("harness_ext.reports.cli",):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            continue
        mod.register(app)


def main(argv: list[str] | None = None) -> int:
    _register_optional_commands()
    args = list(argv if argv is not None else sys.argv[1:])
    # `xtreme-eval --verbose <command> ...` (or XTREME_VERBOSE=1): tracebacks for bad input too
    verbose = bool(args and args[0] == "--verbose") or os.environ.get("XTREME_VERBOSE", "") not in ("", "0")
    if args and args[0] == "--verbose":
        args = args[1:]
    try:
        # standalone_mode=False hands back the exit code of typer.Exit instead of exiting
        return int(app(args=args, standalone_mode=False) or 0)
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except SystemExit as done:  # click exits this way on --help / usage errors
        return int(done.code or 0)
    except Exception as err:  # clear one-line errors for bad input, not tracebacks
        from harness_ext.errors import is_user_error

        if not is_user_error(err):
            raise
        if verbose:
            import traceback

            traceback.print_exc()
        from harness_ext.reports.escape import console_text

        # names in errors come from other people's files: no terminal escapes (a list of problems keeps its lines)
        typer.secho(f"error: {console_text(str(err), one_line=False)}", err=True, fg="red")
        return 2


if __name__ == "__main__":
    sys.exit(main())
