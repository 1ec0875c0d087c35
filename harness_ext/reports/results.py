"""Read lm-eval results JSON (one run or many) and the per-example samples files.

lm-eval writes ``results_<date>.json`` (and with ``--log_samples`` one
``samples_<leaf>_<date>.jsonl`` per leaf task beside it). A leaderboard row is
usually spread over several runs -- one per task group in a sweep, or a rerun of
one task -- so runs are merged per *system*. The system is named, in order, by an
explicit label, by ``system=NAME`` in the run's ``model_args``, or by its
``pretrained=PATH``.

When two runs hold the same leaf task for the same system, the newer run (its
``date``) wins and a note says so: silently averaging or picking the first would
hide a rerun. Per-language numbers are taken from the leaf tasks, never from
lm-eval's group rows, because only the leaves let the report apply XTREME's rules
(official languages only, QA = (EM + F1) / 2) itself.

Benchmark version: a run belongs to the versions whose groups it ran (``xtreme`` /
``xtreme_<task>``, ``xtreme-r`` / ``xtreme-r_<task>``, from lm-eval's ``group_subtasks``);
a run of bare leaves belongs to the version that alone has one of its tasks (XCOPA, LAReQA,
Mewsli-X: XTREME-R; PAWS-X, BUCC: XTREME), else to XTREME. Each row is scored from the runs
of its own version only (:func:`all_scores`), unless a version is named explicitly.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness_ext.reports.official import ReportError
from harness_ext.reports.rules import SystemScores, score_system
from harness_ext.run_guard import PARTIAL_KEY
from xtreme_tasks.table import BENCHMARKS, DEFAULT_BENCHMARK, TABLE as TASKS, get_benchmark

PathLike = str | Path

_LEAF = re.compile(r"^xtreme-(?P<task>[a-z0-9]+)-(?P<lang>[A-Za-z_]+)$")
_SAMPLES = re.compile(r"^samples_(?P<leaf>.+?)(?:_(?P<date>\d{4}-\d\d-\d\dT[\d.\-]+))?\.jsonl$")


def parse_leaf(name: str) -> tuple[str, str] | None:
    """``xtreme-xnli-de`` -> ``("xnli", "de")``; ``None`` for anything else (groups, other tasks)."""
    match = _LEAF.match(name)
    if not match or match["task"] not in TASKS:
        return None
    return match["task"], match["lang"]


def parse_model_args(value: Any) -> dict[str, Any]:
    """lm-eval stores ``model_args`` as a dict (Python API) or ``k=v,k=v`` string (CLI)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        out: dict[str, Any] = {}
        for part in value.split(","):
            key, sep, val = part.partition("=")
            if sep:
                out[key.strip()] = val.strip()
        return out
    return {}


FINE_TUNED = "fine-tuned"
TEXT_TO_TEXT = "text-to-text"
_XTREME_MODELS = ("xtreme", "XtremeLM")


def run_protocol(data: Mapping[str, Any]) -> str:
    """How a run answered: ``fine-tuned`` (task heads, the XTREME protocol), ``text-to-text``
    (a fine-tuned seq2seq model writing its answers: its responses carry ``unparsable``),
    or ``prompted LLM, k-shot`` (any other lm-eval model; ``k`` from lm-eval's ``n-shot``,
    ``, chat`` when a chat template was applied). Retrieval leaves do not set ``k``."""
    config = data.get("config") or {}
    model = str(config.get("model") or "xtreme")
    entries = {leaf: e for leaf, e in (data.get("results") or {}).items() if parse_leaf(leaf) and isinstance(e, Mapping)}
    if model in _XTREME_MODELS:
        generated = any(key.startswith("unparsable,") for entry in entries.values() for key in entry)
        return TEXT_TO_TEXT if generated else FINE_TUNED
    shots = [int(k) for leaf, k in (data.get("n-shot") or {}).items()
             if leaf in entries and isinstance(k, int) and TASKS[parse_leaf(leaf)[0]].request_kind != "embed"]
    return f"prompted LLM, {max(shots, default=0)}-shot" + (", chat" if data.get("chat_template") else "")


def run_benchmarks(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The benchmark versions a results file belongs to (see the module docstring)."""
    names = set(data.get("group_subtasks") or {}) | set(data.get("results") or {})
    for members in (data.get("group_subtasks") or {}).values():
        if isinstance(members, list):
            names |= {m for m in members if isinstance(m, str)}
    named = tuple(b.name for b in BENCHMARKS.values()
                  if b.umbrella in names or any(b.task_group(t) in names for t in b.tasks))
    if named:
        return named
    tasks = {parsed[0] for parsed in map(parse_leaf, names) if parsed}
    own = tuple(b.name for b in BENCHMARKS.values()
                if any(t in b.tasks and all(t not in o.tasks for o in BENCHMARKS.values() if o is not b) for t in tasks))
    return own or (DEFAULT_BENCHMARK,)


def system_label(model_args: Mapping[str, Any]) -> str | None:
    """``system=NAME`` wins over ``pretrained=PATH`` (kept as written, so two checkpoints
    both called ``best`` in different folders stay apart)."""
    for key in ("system", "pretrained"):
        if model_args.get(key):
            return str(model_args[key])
    return None


@dataclass(frozen=True)
class Run:
    """One ``results_*.json``: who ran, what limit, and per-leaf metrics."""

    path: Path
    system: str
    model_args: dict[str, Any]
    date: float
    limit: Any
    #: ``{task: {lang: {metric: value}}}``; metric names without lm-eval's ``,none`` filter suffix
    metrics: dict[str, dict[str, dict[str, float]]]
    #: leaf -> number of documents scored / in the data set (``n-samples``)
    n_samples: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: see :func:`run_protocol`
    protocol: str = FINE_TUNED
    #: leaf -> why its test set is not XTREME's (``configs.<leaf>.metadata.test_set``, written by the task)
    nonstandard: dict[str, str] = field(default_factory=dict)
    #: the benchmark versions this run belongs to (:func:`run_benchmarks`)
    benchmarks: tuple[str, ...] = (DEFAULT_BENCHMARK,)
    #: leaf -> why it was left out of a partial run (no data): the results JSON's ``xtreme_partial.missing_tasks``
    #: (written by ``harness_ext.run_guard``; also ``configs.<leaf>.metadata.left_out``)
    missing_tasks: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """A run made with ``allow_missing``: selected tasks were left out for missing data."""
        return bool(self.missing_tasks)

    def leaves(self) -> list[str]:
        return [TASKS[t].leaf(lang) for t, langs in self.metrics.items() for lang in langs]

    def samples_file(self, leaf: str) -> Path | None:
        """The ``samples_<leaf>*.jsonl`` written by the same run (same date stamp), if any."""
        return _samples_files(self.path).get(leaf)


def _date_stamp(path: Path) -> str | None:
    match = re.match(r"^results_(.+)\.json$", path.name)
    return match.group(1) if match else None


def _samples_files(results_path: Path) -> dict[str, Path]:
    """Samples files beside a results file: those with its date stamp; or, for a results file
    without one (``results.json`` as written by ``xtreme-eval sweep``), the unstamped ones."""
    stamp = _date_stamp(results_path)
    out: dict[str, Path] = {}
    for candidate in sorted(results_path.parent.glob("samples_*.jsonl")):
        match = _SAMPLES.match(candidate.name)
        if not match:
            continue
        if (stamp or None) != (match["date"] or None):
            continue
        out[match["leaf"]] = candidate
    return out


def _metric_values(entry: Mapping[str, Any]) -> dict[str, float]:
    """``{"acc,none": 40.0, "acc_stderr,none": "N/A", "alias": ...}`` -> ``{"acc": 40.0}``."""
    out: dict[str, float] = {}
    for key, value in entry.items():
        name, sep, filt = key.partition(",")
        if not sep or filt != "none" or name.endswith("_stderr"):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
        elif value is None or (isinstance(value, str) and value.lower() == "nan"):
            out[name] = math.nan
    return out


def read_run(path: PathLike, label: str | None = None) -> Run:
    """Parse one lm-eval results JSON file; ``ReportError`` naming the file on bad input."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise ReportError(f"cannot read {file}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{file} is not valid JSON ({err.msg} at line {err.lineno}); is it an lm-eval results file?") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ReportError(f"{file} has no 'results' mapping; expected lm-eval's results_<date>.json")
    config = data.get("config") or {}
    model_args = parse_model_args(config.get("model_args"))
    protocol = run_protocol(data)
    name = label or system_label(model_args) or data.get("model_name")
    if name and not label and protocol not in (FINE_TUNED, TEXT_TO_TEXT):
        name = f"{name} [{protocol}]"  # 0-shot and 5-shot runs of one LLM are two rows, never one
    if not name:
        raise ReportError(
            f"{file}: cannot tell which system this run is (no system= or pretrained= in config.model_args); "
            "give it a label: NAME=PATH or --label NAME"
        )
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for leaf, entry in data["results"].items():
        parsed = parse_leaf(leaf)
        if parsed is None or not isinstance(entry, Mapping):
            continue
        task, lang = parsed
        values = _metric_values(entry)
        if values:
            metrics.setdefault(task, {})[lang] = values
    n_samples = {}
    for leaf, counts in (data.get("n-samples") or {}).items():
        if isinstance(counts, Mapping):
            n_samples[leaf] = (counts.get("effective"), counts.get("original"))
    nonstandard, missing = {}, {}
    for leaf, task_config in (data.get("configs") or {}).items():
        metadata = ((task_config or {}).get("metadata") or {}) if isinstance(task_config, Mapping) else {}
        test_set = metadata.get("test_set") if isinstance(metadata, Mapping) else None
        if isinstance(test_set, Mapping) and test_set.get("standard") is False:
            nonstandard[leaf] = str(test_set.get("note") or "test set differs from XTREME's")
        if isinstance(metadata, Mapping) and metadata.get("left_out"):
            missing[leaf] = str(metadata["left_out"])
    partial = data.get(PARTIAL_KEY)
    if isinstance(partial, Mapping) and isinstance(partial.get("missing_tasks"), Mapping):
        missing.update({str(k): str(v) for k, v in partial["missing_tasks"].items()})
    date = data.get("date")
    return Run(
        path=file, system=str(name), model_args=model_args,
        date=float(date) if isinstance(date, (int, float)) else file.stat().st_mtime,
        limit=config.get("limit"), metrics=metrics, n_samples=n_samples, raw=data, nonstandard=nonstandard,
        protocol=protocol, benchmarks=run_benchmarks(data), missing_tasks=missing,
    )


def find_result_files(path: PathLike) -> list[Path]:
    """A results file itself, or every ``results*.json`` under a folder (sorted)."""
    root = Path(path)
    if root.is_file():
        return [root]
    if root.is_dir():
        return sorted(p for p in root.rglob("results*.json") if p.is_file() and not p.name.startswith("."))
    raise ReportError(f"{root} does not exist; pass lm-eval results files or folders holding them")


def split_label(argument: str) -> tuple[str | None, str]:
    """``NAME=PATH`` -> (NAME, PATH) when PATH exists and NAME has no path separator; else (None, argument)."""
    name, sep, rest = argument.partition("=")
    if sep and name and "/" not in name and Path(rest).exists() and not Path(argument).exists():
        return name, rest
    return None, argument


@dataclass
class SystemRuns:
    """Every run of one system, merged leaf by leaf (newest run wins)."""

    name: str
    runs: list[Run] = field(default_factory=list)
    #: leaf -> the run whose numbers are used
    chosen: dict[str, Run] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.runs.append(run)
        for leaf in run.leaves():
            previous = self.chosen.get(leaf)
            if previous is None or run.date >= previous.date:
                self.chosen[leaf] = run
            if previous is not None:
                kept = self.chosen[leaf]
                self.notes.append(f"{self.name}: {leaf} is in {previous.path} and {run.path}; using the newer {kept.path}")

    def metrics(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for leaf, run in self.chosen.items():
            task, lang = parse_leaf(leaf)  # type: ignore[misc]
            out.setdefault(task, {})[lang] = dict(run.metrics[task][lang])
        return out

    def limited(self) -> list[Path]:
        """Runs made with ``--limit``: their numbers are not XTREME results."""
        return sorted({run.path for run in self.chosen.values() if run.limit not in (None, 0)})

    def protocols(self) -> tuple[str, ...]:
        """The protocols of the runs whose numbers the row uses (more than one: not comparable)."""
        return tuple(sorted({run.protocol for run in self.chosen.values()}))

    def nonstandard(self) -> list[str]:
        """Leaves whose numbers come from a test set that is not XTREME's (see xtreme_tasks/fingerprints.py)."""
        return sorted(leaf for leaf, run in self.chosen.items() if leaf in run.nonstandard)

    def benchmarks(self) -> tuple[str, ...]:
        """The versions any of its runs belongs to, in table order."""
        return tuple(b for b in BENCHMARKS if any(b in run.benchmarks for run in self.runs))

    def of_benchmark(self, benchmark: str) -> "SystemRuns":
        """The same system with only the runs of ``benchmark`` (merged again, newest run per leaf)."""
        view = SystemRuns(self.name)
        for run in self.runs:
            if benchmark in run.benchmarks:
                view.add(run)
        return view

    def scores(self, benchmark: str = DEFAULT_BENCHMARK) -> SystemScores:
        """The row of ``benchmark`` from every run (use :meth:`of_benchmark` first to keep one version's runs)."""
        get_benchmark(benchmark)
        notes = list(self.notes)
        protocols = self.protocols()
        if len(protocols) > 1:
            notes.append(f"{self.name}: its tasks were run under different protocols ({'; '.join(protocols)}); "
                         "no XTREME score is given for a mix")
        limited = self.limited()
        if limited:
            notes.append(f"{self.name}: run(s) with --limit (not comparable to XTREME results): "
                         + ", ".join(str(p) for p in limited))
        for leaf in self.nonstandard():
            notes.append(f"{self.name}: {leaf} was scored on a test set that is not XTREME's (not comparable to "
                         f"XTREME results): {self.chosen[leaf].nonstandard[leaf]}")
        return score_system(self.name, self.metrics(), notes, protocols=protocols, benchmark=benchmark)


def collect(arguments: Sequence[PathLike], label: str | None = None) -> dict[str, SystemRuns]:
    """Read every results file named or found under ``arguments`` and merge them per system.

    ``label`` names the system of every run (one system given as several files);
    an argument ``NAME=PATH`` labels the runs under PATH only.
    """
    systems: dict[str, SystemRuns] = {}
    found_any = False
    for argument in arguments:
        own_label, path = split_label(str(argument))
        files = find_result_files(path)
        if not files:
            raise ReportError(f"{path}: no results*.json found (run lm_eval with --output_path, or xtreme-eval sweep)")
        for file in files:
            run = read_run(file, own_label or label)
            if not run.metrics:
                continue
            found_any = True
            systems.setdefault(run.system, SystemRuns(run.system)).add(run)
    if not found_any:
        raise ReportError(f"no XTREME leaf tasks (xtreme-<task>-<lang>) in the results under {', '.join(map(str, arguments))}")
    return systems


# ----------------------------------------------------------------------------- samples


def read_samples(path: PathLike) -> list[dict[str, Any]]:
    """One ``samples_*.jsonl`` file, ordered by ``doc_id`` (lm-eval does not promise an order)."""
    file = Path(path)
    rows = []
    with open(file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ReportError(f"{file}:{number}: not a JSON line ({err.msg}); a truncated samples file?") from None
    rows.sort(key=lambda row: row.get("doc_id", 0))
    return rows


def example_id(row: Mapping[str, Any]) -> str:
    """The document's own id when it has one (stable across runs and --limit), else lm-eval's doc_id."""
    doc = row.get("doc") or {}
    if isinstance(doc, Mapping) and doc.get("id") is not None:
        return str(doc["id"])
    return f"doc{row.get('doc_id')}"


def row_key(name: str, benchmark: str) -> str:
    """Key of a row in :func:`all_scores`: the system name for XTREME, ``NAME@xtreme-r`` for XTREME-R."""
    return name if benchmark == DEFAULT_BENCHMARK else f"{name}@{benchmark}"


def all_scores(systems: Mapping[str, SystemRuns], benchmark: str | None = None) -> dict[str, SystemScores]:
    """Every system's rows, scored with the official rules of their version (``SystemScores.benchmark``).

    ``benchmark`` given: one row per system, that version's, from all its runs (keys: system names).
    ``None``: one row per system and version its runs belong to, each from that version's runs only
    (keys: :func:`row_key`), so that a row never mixes the two versions.
    """
    if benchmark is not None:
        get_benchmark(benchmark)
        return {name: runs.scores(benchmark) for name, runs in systems.items()}
    out: dict[str, SystemScores] = {}
    for version in BENCHMARKS:
        for name, runs in systems.items():
            if version in runs.benchmarks():
                out[row_key(name, version)] = runs.of_benchmark(version).scores(version)
    return out
