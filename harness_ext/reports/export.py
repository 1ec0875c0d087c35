"""Predictions in the official XTREME submission layout, from ``--log_samples`` output.

The layout is the one :mod:`harness_ext.reports.official` scores and the leaderboard
takes (``<out>/<task>/test-<lang>.{tsv,json}``):

* XNLI, PAWS-X: one predicted label per line, in test-file order;
* UD-POS, PAN-X: one predicted tag per line, a blank line after each sentence;
* XQuAD, MLQA, TyDiQA: ``{"question id": "answer"}`` (via :mod:`harness_ext.reports.submission`);
* XCOPA (XTREME-R): ``xcopa/test-<lang>.jsonl``, one ``{"label": 0 or 1}`` per line, as
  ``run_xcopa.py`` writes it (an answer that is neither choice, e.g. unparsable mT5 output, is -1: wrong).

The benchmark version (``xtreme`` / ``xtreme-r``) decides which tasks and languages a
submission holds: XTREME-R's is its ten tasks with its added languages (UD-POS lt pl uk wo
ro, PAN-X qu pl uk az lt pa gu ro, XQuAD ro, ...). Without one, it is the version of the
system's runs (an error when they hold both).

Predictions are read from each sample's metric item -- the value that was scored --
and ordered by ``doc_id`` (= test-file order, which the line-based files rely on).
A run made with ``--limit`` covers part of a test set: the official scorer would
reject (or mis-score) it, so such a language is refused unless ``allow_partial``; so is a
language whose results JSON records a test set that is not XTREME's (docs/data.md).
Retrieval: Tatoeba's samples log, per pair, the index its English query retrieved
(``acc``; set by the aggregation over the whole corpus), written one per line as the
official layout wants. BUCC pairs are mined over the whole corpus and are not in the
samples: the task writes its submission file itself when ``$XTREME_BUCC_PREDICTIONS_DIR``
is set; LAReQA and Mewsli-X have none here. They are reported as not exported, with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness_ext.reports.official import ReportError, file_suffix
from harness_ext.reports.results import SystemRuns, example_id, read_samples
from harness_ext.reports.submission import atomic_write_text, prediction_path, write_qa_predictions
from xtreme_tasks.table import BENCHMARKS, DEFAULT_BENCHMARK, TaskSpec, get_benchmark


@dataclass
class ExportReport:
    written: list[Path] = field(default_factory=list)
    #: (leaf or task, reason)
    not_exported: list[tuple[str, str]] = field(default_factory=list)


def _labels_text(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(f"{row['acc'][0]}\n" for row in rows)


def _tags_text(rows: Sequence[Mapping[str, Any]]) -> str:
    sentences = []
    for row in rows:
        tags = row["f1"][1]
        sentences.append("".join(f"{tag}\n" for tag in tags) + "\n")
    return "".join(sentences)


def _retrieved_text(rows: Sequence[Mapping[str, Any]]) -> str:
    from harness_ext.tasks.retrieval import TATOEBA_LOGGED

    lines = []
    for row in rows:
        match = TATOEBA_LOGGED.match(str(row["acc"]))
        if match is None or match["retrieved"] == "None":
            raise KeyError(f"no retrieved index in doc {row.get('doc_id')} (samples logged by an older version?)")
        lines.append(match["retrieved"] + "\n")
    return "".join(lines)


def _choices_text(spec: TaskSpec, rows: Sequence[Mapping[str, Any]]) -> str:
    index = {label: i for i, label in enumerate(spec.labels)}
    return "".join(f'{{"label": {index.get(str(row["acc"][0]), -1)}}}\n' for row in rows)


def _qa_map(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    return {str(row["em"][0]): row["em"][1] for row in rows}


def _write_language(spec: TaskSpec, lang: str, rows: list[dict[str, Any]], out: Path) -> Path:
    if spec.request_kind == "extract_span":
        return write_qa_predictions(out, spec.name, lang, _qa_map(rows))
    path = prediction_path(out, spec.name, lang, file_suffix(spec))
    if spec.request_kind == "choose":
        text = _choices_text(spec, rows)
    else:
        writers = {"classify": _labels_text, "tag": _tags_text, "embed": _retrieved_text}
        text = writers[spec.request_kind](rows)
    atomic_write_text(path, text)
    return path


def export_system(system: SystemRuns, out: Path, tasks: Sequence[str] | None = None, allow_partial: bool = False,
                  benchmark: str = DEFAULT_BENCHMARK) -> ExportReport:
    """Write every official language of ``benchmark`` found in ``system``'s runs under ``out``."""
    report = ExportReport()
    version = get_benchmark(benchmark)
    specs = version.specs()
    wanted = list(tasks) if tasks else [t for t in version.tasks
                                        if any(specs[t].leaf(l) in system.chosen for l in specs[t].all_languages)]
    unknown = [t for t in wanted if t not in specs]
    if unknown:
        raise ReportError(f"unknown task(s) {', '.join(unknown)}; the {version.title} tasks are {', '.join(version.tasks)}")
    for task in wanted:
        spec = specs[task]
        if spec.request_kind == "embed" and task != "tatoeba":
            reason = ("BUCC predictions are mined over the whole corpus; the task writes test-<lang>.tsv itself "
                      "when $XTREME_BUCC_PREDICTIONS_DIR is set" if task == "bucc2018"
                      else f"{spec.title} predictions are made over the whole corpus and are not in the samples")
            report.not_exported.append((task, reason))
            continue
        for lang in spec.languages:
            leaf = spec.leaf(lang)
            run = system.chosen.get(leaf)
            if run is None:
                report.not_exported.append((leaf, "not in the results (the task's official score needs every language)"))
                continue
            path = run.samples_file(leaf)
            if path is None:
                report.not_exported.append((leaf, f"no samples file beside {run.path} (run lm_eval with --log_samples)"))
                continue
            if leaf in run.nonstandard and not allow_partial:
                report.not_exported.append((leaf, f"scored on a test set that is not XTREME's ({run.nonstandard[leaf]}); "
                                                  "a submission needs the official one (--allow-partial to write anyway)"))
                continue
            rows = read_samples(path)
            effective, original = run.n_samples.get(leaf, (None, None))
            if original is not None and len(rows) < original and not allow_partial:
                report.not_exported.append((leaf, f"{len(rows)} of {original} test examples (a --limit run); "
                                                  "the official scorer needs all of them (--allow-partial to write anyway)"))
                continue
            ids = [example_id(row) for row in rows]
            if len(set(ids)) != len(ids):
                report.not_exported.append((leaf, f"{path}: duplicate example ids"))
                continue
            try:
                report.written.append(_write_language(spec, lang, rows, out))
            except (KeyError, IndexError, TypeError) as err:
                report.not_exported.append((leaf, f"{path}: samples rows lack the metric items ({err!r})"))
        extra = [l for l in spec.extra_languages if spec.leaf(l) in system.chosen]
        if extra:
            report.not_exported.append((task, f"{', '.join(extra)}: outside {version.title}'s official languages, not exported"))
    return report


def export_predictions(systems: Mapping[str, SystemRuns], out: Path, system: str | None = None,
                       tasks: Sequence[str] | None = None, allow_partial: bool = False,
                       benchmark: str | None = None) -> ExportReport:
    """Export one system's predictions (``system`` must be given when the results hold several) in the
    layout of ``benchmark`` (``None``: the version of its runs, from those runs only)."""
    if system is None:
        if len(systems) != 1:
            raise ReportError(f"the results hold {len(systems)} systems ({', '.join(sorted(systems))}); choose one with --system")
        system = next(iter(systems))
    if system not in systems:
        raise ReportError(f"no results for system {system!r}; present: {', '.join(sorted(systems))}")
    runs = systems[system]
    if benchmark is None:
        found = runs.benchmarks()
        if len(found) > 1:
            raise ReportError(f"the results of {system} hold runs of {' and '.join(BENCHMARKS[b].title for b in found)}; "
                              "choose the submission's version with --benchmark xtreme or --benchmark xtreme-r")
        benchmark = found[0] if found else DEFAULT_BENCHMARK
        runs = runs.of_benchmark(benchmark)
    return export_system(runs, Path(out), tasks, allow_partial, benchmark)
