"""``xtreme-eval sweep``: every system x task of a ``checkpoints.yaml``, resumable.

One job = one lm-eval run of one system on one task group (``xtreme_<task>``), so
a failure costs one task of one system and a rerun redoes only what is missing.
Layout under ``--out``::

    <out>/<system>/<task>/results.json          lm-eval's results (written last: the "done" mark)
    <out>/<system>/<task>/job.json              what produced them: checkpoint, limit, model args
    <out>/<system>/<task>/samples_<leaf>.jsonl  per-example samples (--log-samples, on by default)
    <out>/<system>/<task>/error.log             traceback of the last failed attempt (removed on success)
    <out>/sweep_summary.{md,csv,json}           one row per job: done / skipped / failed / not run / n/a
    <out>/tables/                               the leaderboard of everything finished (xtreme-eval report)
    <out>/index.html                            the same as a static leaderboard page (docs/reports.md)

Crash safety: lm-eval writes into a staging folder inside the job's folder; the
files are then moved into place with ``os.replace`` (atomic on one file system),
samples first and ``results.json`` last. A process killed at any point leaves
either a finished job (``results.json`` present and valid) or an unfinished one
(rerun), never a half-written result that a rerun would trust.

A finished job is skipped only while its ``job.json`` matches the job as planned now
(same checkpoint source/backend/options, ``--limit`` and model arguments): pointing a
system at a new checkpoint reruns its jobs instead of reporting stale numbers.

Runs on this machine, one job after another, by default; ``ray=`` runs the jobs on
a Ray cluster instead (:mod:`harness_ext.sweep_ray`).

Fault injection for tests: ``XTREME_SWEEP_HANG_ON=<system>/<task>`` makes the
process hang when that job starts (after writing ``<out>/.hanging``), so a test can
kill a sweep at a known point.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from harness_ext.progress import bar
from harness_ext.reports.official import ReportError
from harness_ext.reports.submission import atomic_write_text
from harness_ext.run_guard import is_disk_full
from xtreme_tasks.table import DEFAULT_BENCHMARK, TABLE, get_benchmark

HANG_ENV = "XTREME_SWEEP_HANG_ON"
RESULTS_FILE = "results.json"
JOB_FILE = "job.json"
ERROR_FILE = "error.log"
STAGING_PREFIX = ".staging-"
DISK_FULL = "the disk is full"


class SweepError(ReportError):
    """Bad sweep input (unknown task or system); a ``ReportError`` so the CLI shows one line, exit 2."""


def safe_name(name: str) -> str:
    """A folder name for a system (keeps letters, digits, ``.-_``); a long name is cut to
    80 characters plus a digest of the whole, as file systems allow 255 bytes per name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "system"
    if len(cleaned) > 96:
        cleaned = f"{cleaned[:80]}-{hashlib.sha1(name.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"
    return cleaned


def check_folder_names(systems: Sequence[str], source: Path | str) -> None:
    """Two systems must never share an output folder (``team/xlmr`` and ``team_xlmr`` both
    clean to ``team_xlmr``; ``XLMR`` and ``xlmr`` are one folder on case-insensitive disks)."""
    seen: dict[str, str] = {}
    for name in systems:
        folder = safe_name(name)
        other = seen.setdefault(folder.casefold(), name)
        if other != name:
            raise SweepError(f"{source}: systems {other!r} and {name!r} would share the output folder "
                             f"{folder!r}; rename one of them (folder names keep only letters, digits, '.-_')")


@dataclass(frozen=True)
class Job:
    """One system on one task group."""

    system: str
    task: str
    #: the checkpoint reference this job evaluates (``CheckpointRef`` as sorted JSON)
    checkpoint: str = "{}"
    #: the benchmark version whose group of the task is run (``xtreme_xnli`` / ``xtreme-r_xnli``)
    benchmark: str = DEFAULT_BENCHMARK

    @property
    def group(self) -> str:
        return get_benchmark(self.benchmark).task_group(self.task)

    @property
    def key(self) -> str:
        """The task for XTREME jobs (the folder names sweeps always had), the group for other versions."""
        return self.task if self.benchmark == DEFAULT_BENCHMARK else self.group

    @property
    def id(self) -> str:
        return f"{self.system}/{self.key}"

    def folder(self, out: Path) -> Path:
        return Path(out) / safe_name(self.system) / self.key


@dataclass(frozen=True)
class SweepOptions:
    """Everything a job needs besides its (system, task); plain data so it travels to Ray workers."""

    checkpoints: str
    out: str
    limit: float | None = None
    batch_size: int | None = None
    device: str | None = None
    log_samples: bool = True
    model_args: dict[str, Any] = field(default_factory=dict)
    benchmark: str = DEFAULT_BENCHMARK


@dataclass
class JobOutcome:
    """What happened to one job; ``status`` is done, skipped (finished before), failed or n/a."""

    system: str
    task: str
    status: str
    seconds: float = 0.0
    detail: str = ""
    log: str = ""
    host: str = ""

    @property
    def id(self) -> str:
        return f"{self.system}/{self.task}"


# ----------------------------------------------------------------------------- planning


def parse_tasks(values: Sequence[str] | None, benchmark: str = DEFAULT_BENCHMARK) -> list[str]:
    """``xnli,pawsx`` / ``xtreme_xnli`` (``xtreme-r_xnli``) / ``all`` (or nothing) -> task names of
    ``benchmark`` in its order."""
    version = get_benchmark(benchmark)
    prefix = version.task_group("")
    names: list[str] = []
    for value in values or ["all"]:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if part in ("all", version.umbrella, prefix + "*"):
                names.extend(version.tasks)
                continue
            name = part.removeprefix(prefix)
            if name not in version.tasks:
                raise SweepError(f"unknown task {part!r} of {version.title}; use task names ({', '.join(version.tasks)}), "
                                 f"their groups ({prefix}xnli, ...) or all")
            names.append(name)
    return [t for t in version.tasks if t in names]


def plan(checkpoints: Path, tasks: Sequence[str], systems: Sequence[str] | None = None,
         benchmark: str = DEFAULT_BENCHMARK) -> tuple[list[Job], list[JobOutcome]]:
    """Jobs to run, and ``n/a`` outcomes for system x task pairs without a checkpoint."""
    from harness_ext.systems import load_systems

    known = load_systems(checkpoints)
    check_folder_names(known, checkpoints)
    chosen = list(known)
    if systems:
        unknown = [s for s in systems if s not in known]
        if unknown:
            raise SweepError(f"system(s) {', '.join(unknown)} not in {checkpoints}; known: {', '.join(known)}")
        chosen = [s for s in known if s in systems]
    if not chosen:
        raise SweepError(f"{checkpoints} defines no systems")
    jobs, not_applicable = [], []
    for name in chosen:
        has = set(known[name].tasks())
        for task in tasks:
            if task in has:
                ref = asdict(known[name].checkpoint_for(task))
                jobs.append(Job(name, task, json.dumps(ref, sort_keys=True, default=str), benchmark))
            else:
                not_applicable.append(JobOutcome(name, task, "n/a", detail=f"{name} has no checkpoint for {task}"))
    return jobs, not_applicable


def _plain(value: Any) -> Any:
    """JSON-stable form of a checkpoint field (tuples -> lists, mappings sorted)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def job_spec(job: Job, options: "SweepOptions") -> dict[str, Any]:
    """What determines a job's numbers; stored as ``job.json`` and compared on resume."""
    spec = {"system": job.system, "task": job.task, "checkpoint": json.loads(job.checkpoint),
            "limit": options.limit, "model_args": _plain(options.model_args)}
    if job.benchmark != DEFAULT_BENCHMARK:  # XTREME jobs keep the job.json they always had (resume)
        spec["benchmark"] = job.benchmark
    return spec


def has_results(folder: Path) -> bool:
    """``results.json`` parses and holds results (a truncated file does not count)."""
    try:
        data = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(data.get("results"))


def is_finished(job: Job, options: "SweepOptions") -> bool:
    """Finished = valid results, produced by the job as planned now (same ``job.json``)."""
    folder = job.folder(Path(options.out))
    if not has_results(folder):
        return False
    try:
        recorded = json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == job_spec(job, options)


# ----------------------------------------------------------------------------- one job


_TASK_MANAGER: Any = None


def xtreme_task_manager() -> Any:
    """One TaskManager per process that indexes only the XTREME tasks.

    Indexing lm-eval's thousands of built-in YAML files takes tens of seconds on a busy
    machine; a sweep needs only ours, and builds it once per process, not once per job.
    """
    global _TASK_MANAGER
    if _TASK_MANAGER is None:
        from harness_ext.api import ensure_registered

        ensure_registered()
        from lm_eval.tasks import TaskManager

        from xtreme_tasks import TASK_DIR

        _TASK_MANAGER = TaskManager(include_defaults=False, include_path=str(TASK_DIR))
    return _TASK_MANAGER


def _evaluate(job: Job, options: SweepOptions, staging: Path) -> None:
    """Run lm-eval for the job and let its own EvaluationTracker write results + samples to ``staging``."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    model_args = {**options.model_args, "system": job.system, "checkpoints": options.checkpoints}
    if options.batch_size is not None:
        model_args["batch_size"] = options.batch_size
    tracker = EvaluationTracker(output_path=str(staging))
    results = lm_eval.simple_evaluate(
        model="xtreme", model_args=model_args, tasks=[job.group], limit=options.limit,
        device=options.device, log_samples=options.log_samples, evaluation_tracker=tracker,
        task_manager=xtreme_task_manager(),
    )
    if results is None:
        raise RuntimeError("lm-eval returned no results (not rank 0?)")
    samples = results.pop("samples", None)
    tracker.save_results_aggregated(results=results, samples=samples)
    if options.log_samples and samples:
        for leaf in results["configs"]:
            tracker.save_results_samples(task_name=leaf, samples=samples[leaf])


def _publish(staging: Path, folder: Path, log_samples: bool, spec: dict[str, Any]) -> None:
    """Move staged files into the job folder, ``results.json`` last (the done mark).

    Order matters for a kill at any point: an old ``results.json`` goes first (so old
    results never sit beside new samples), then samples, then ``job.json``, then results.
    """
    results = sorted(staging.rglob("results_*.json"))
    if len(results) != 1:
        raise RuntimeError(f"lm-eval wrote {len(results)} results files into {staging}; expected one")
    data = json.loads(results[0].read_text(encoding="utf-8"))
    if not data.get("results"):
        raise RuntimeError(f"{results[0]} holds no results")
    staged_samples = sorted(staging.rglob("samples_*.jsonl"))
    if log_samples and not staged_samples:
        raise RuntimeError("lm-eval wrote no samples files although --log-samples was on")
    (folder / RESULTS_FILE).unlink(missing_ok=True)
    for stale in folder.glob("samples_*.jsonl"):  # from an earlier attempt; must not mix with this run
        stale.unlink()
    for sample in staged_samples:
        leaf = re.sub(r"_\d{4}-\d\d-\d\dT[\d.\-]+$", "", sample.stem.removeprefix("samples_"))
        os.replace(sample, folder / f"samples_{leaf}.jsonl")
    atomic_write_text(folder / JOB_FILE, json.dumps(spec, indent=2, sort_keys=True) + "\n")
    os.replace(results[0], folder / RESULTS_FILE)


def _maybe_hang(job: Job, out: Path) -> None:
    if os.environ.get(HANG_ENV) == job.id:
        atomic_write_text(out / ".hanging", job.id + "\n")
        while True:  # killed from outside by the test
            time.sleep(3600)


def run_job(job: Job, options: SweepOptions) -> JobOutcome:
    """Run one job unless finished; never raises for a job's own failure (returns ``failed``)."""
    out = Path(options.out)
    folder = job.folder(out)
    host = socket.gethostname()
    if is_finished(job, options):
        return JobOutcome(job.system, job.task, "skipped", log=str(folder / RESULTS_FILE), host=host)
    rerun = has_results(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(STAGING_PREFIX + "*"):  # left by a killed attempt
        shutil.rmtree(stale, ignore_errors=True)
    _maybe_hang(job, out)
    staging = folder / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    start = time.monotonic()
    try:
        _evaluate(job, options, staging)
        _publish(staging, folder, options.log_samples, job_spec(job, options))
    except Exception as err:  # a job's failure is reported, the sweep goes on
        text = f"{job.id} failed on {host} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n\n{traceback.format_exc()}"
        log = str(folder / ERROR_FILE)
        try:
            atomic_write_text(folder / ERROR_FILE, text)
        except OSError:  # a full disk: the outcome (and the summary) still say what happened
            log = ""
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0][:300]
        if is_disk_full(err):
            message = f"{DISK_FULL}: {message}"
        return JobOutcome(job.system, job.task, "failed", time.monotonic() - start, message, log, host)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (folder / ERROR_FILE).unlink(missing_ok=True)
    note = "rerun: the checkpoint or settings changed since the last result" if rerun else ""
    return JobOutcome(job.system, job.task, "done", time.monotonic() - start, note, str(folder / RESULTS_FILE), host)


# ----------------------------------------------------------------------------- the sweep


def stop_reason(outcome: JobOutcome) -> str:
    """Why the sweep stops after ``outcome`` ("" to go on): a job that failed on a full disk, since
    every job after it would compute for hours and fail the same way."""
    if outcome.status == "failed" and outcome.detail.startswith(DISK_FULL):
        return f"stopped after {outcome.id}: {DISK_FULL}; free space and rerun with the same --out"
    return ""


def run_local(jobs: Sequence[Job], options: SweepOptions, on_done: Callable[[JobOutcome], None]) -> list[JobOutcome]:
    """Jobs one after another in this process (models stay on this machine's device). A job
    that failed on a full disk stops the sweep: the jobs after it are ``not run`` (each would
    compute for hours and fail the same way); a rerun with the same ``--out`` resumes."""
    outcomes = []
    stopped = ""
    for job in jobs:
        if stopped:
            outcome = JobOutcome(job.system, job.task, "not run", detail=stopped)
        else:
            outcome = run_job(job, options)
            stopped = stop_reason(outcome)
        outcomes.append(outcome)
        on_done(outcome)
    return outcomes


@dataclass
class SweepSummary:
    outcomes: list[JobOutcome]
    out: Path
    files: list[Path] = field(default_factory=list)
    #: why the summary files could not be written (the CLI still prints the table), else ""
    write_error: str = ""

    @property
    def failed(self) -> list[JobOutcome]:
        """Jobs that did not produce their numbers (failed, or not run after a full disk)."""
        return [o for o in self.outcomes if o.status in ("failed", "not run")]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            out[o.status] = out.get(o.status, 0) + 1
        return out


def summary_table(outcomes: Iterable[JobOutcome]):
    from harness_ext.reports.tables import Cell, Table

    table = Table("sweep_summary", "Sweep: one row per system x task", ["System", "Task", "Status", "Seconds", "Detail"])
    from harness_ext.reports.escape import natural_key

    order = list(TABLE)
    for o in sorted(outcomes, key=lambda o: (natural_key(o.system), order.index(o.task))):
        detail = o.detail + (f" (log: {o.log})" if o.status == "failed" else "")
        table.add([o.system, o.task, o.status, Cell(round(o.seconds, 1), f"{o.seconds:.1f}"), detail])
    return table


def sweep_title(scores: Mapping[str, Any]) -> str:
    """"XTREME sweep", "XTREME-R sweep" or "XTREME / XTREME-R sweep": the versions the finished jobs ran."""
    from harness_ext.reports.board import BENCHMARK_TITLES
    from harness_ext.reports.tables import by_benchmark

    versions = by_benchmark(scores) or {DEFAULT_BENCHMARK: {}}
    return " / ".join(BENCHMARK_TITLES.get(v, v) for v in versions) + " sweep"


def write_summary(summary: SweepSummary, sizes: dict[str, int] | None = None) -> list[Path]:
    """``sweep_summary.{md,csv,json}``, the leaderboard of all finished jobs under ``<out>/tables``
    and the leaderboard page ``<out>/index.html`` (``sizes``: parameters by system, for its Size column)."""
    from harness_ext.reports.tables import to_csv, to_markdown

    table = summary_table(summary.outcomes)
    out = summary.out
    files = [out / "sweep_summary.md", out / "sweep_summary.csv", out / "sweep_summary.json"]
    atomic_write_text(files[0], to_markdown(table))
    atomic_write_text(files[1], to_csv(table))
    atomic_write_text(files[2], json.dumps([asdict(o) for o in summary.outcomes], indent=2) + "\n")
    if any(has_results(p.parent) for p in out.glob(f"*/*/{RESULTS_FILE}")):
        from harness_ext.reports.results import all_scores, collect
        from harness_ext.reports.tables import report_tables, write_tables

        from harness_ext.reports.site import PAGE_NAME, build_page

        systems = collect([out])
        scores = all_scores(systems)
        title = sweep_title(scores)
        files += write_tables(report_tables(scores), out / "tables", title=title)
        atomic_write_text(out / PAGE_NAME, build_page(scores, systems, sizes, title=title))
        files.append(out / PAGE_NAME)
    return files


def run_sweep(
    checkpoints: str | Path, out: str | Path, tasks: Sequence[str] | None = None, systems: Sequence[str] | None = None,
    ray: str | None = None, ray_num_cpus: int | None = None, limit: float | None = None, batch_size: int | None = None,
    device: str | None = None, log_samples: bool = True, model_args: dict[str, Any] | None = None,
    on_done: Callable[[JobOutcome], None] | None = None, on_plan: Callable[[list[Job], list[JobOutcome]], None] | None = None,
    benchmark: str = DEFAULT_BENCHMARK,
) -> SweepSummary:
    """Plan, skip finished jobs, run the rest (locally or on Ray), write the summary and tables."""
    checkpoints = Path(checkpoints).expanduser().resolve()
    out = Path(out).expanduser().resolve()
    jobs, not_applicable = plan(checkpoints, parse_tasks(tasks, benchmark), systems, benchmark)
    out.mkdir(parents=True, exist_ok=True)
    (out / ".hanging").unlink(missing_ok=True)
    options = SweepOptions(str(checkpoints), str(out), limit, batch_size, device, log_samples, dict(model_args or {}),
                           benchmark)
    if on_plan:
        on_plan(jobs, not_applicable)
    callback = on_done or (lambda outcome: None)
    finished = [j for j in jobs if is_finished(j, options)]
    pending = [j for j in jobs if j not in finished]
    outcomes = [JobOutcome(j.system, j.task, "skipped", log=str(j.folder(out) / RESULTS_FILE)) for j in finished]
    for outcome in outcomes:
        callback(outcome)
    if pending:
        with bar(len(pending), "sweep jobs", unit="job", min_total=1) as shown:
            def counted(outcome: JobOutcome) -> None:
                callback(outcome)
                shown.update(1)

            if ray:
                from harness_ext.sweep_ray import run_on_ray

                outcomes += run_on_ray(pending, options, ray, counted, num_cpus=ray_num_cpus)
            else:
                outcomes += run_local(pending, options, counted)
    summary = SweepSummary(outcomes + not_applicable, out)
    from harness_ext.systems import load_systems

    try:
        summary.files = write_summary(summary, {name: system.size for name, system in load_systems(checkpoints).items()})
    except OSError as err:
        summary.write_error = f"the summary files could not be written under {out}: {err.strerror or err}"
    return summary
