"""Synthetic lm-eval runs in the layout ``xtreme-eval sweep`` writes (results.json + samples),
with numbers worked out here, for the report, efficacy and page tests."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Sequence

from xtreme_tasks.table import TASKS


def write_run(folder: Path, system: str, task: str, rows_by_lang: dict[str, list[dict]], metrics_by_lang: dict[str, dict],
              date: float = 1.0, limit=None, original: dict[str, int] | None = None, extra: dict | None = None) -> Path:
    """A run in the layout ``xtreme-eval sweep`` writes: results.json + samples_<leaf>.jsonl
    (``extra``: more top-level keys, e.g. ``configs`` or ``lm_eval_version``)."""
    folder.mkdir(parents=True, exist_ok=True)
    spec = TASKS[task]
    results = {spec.leaf(l): {f"{m},none": v for m, v in metrics.items()} for l, metrics in metrics_by_lang.items()}
    for lang, rows in rows_by_lang.items():
        with open(folder / f"samples_{spec.leaf(lang)}.jsonl", "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    n_samples = {spec.leaf(l): {"effective": len(r), "original": (original or {}).get(l, len(r))} for l, r in rows_by_lang.items()}
    data = {"results": results, "config": {"model": "xtreme", "model_args": {"system": system}, "limit": limit},
            "n-samples": n_samples, "date": date, **(extra or {})}
    path = folder / "results.json"
    path.write_text(json.dumps(data))
    return path


def write_complete_system(root: Path, system: str, skill: float, n: int = 8, folder: str | None = None,
                          tasks: Sequence[str] | None = None, limit=None,
                          drop: Sequence[str] = ()) -> dict[str, float]:
    """All nine tasks: samples for the seven with per-example items, results only for retrieval.

    Returns the task scores (official rules) for a hand check of the XTREME gain. ``folder``: the
    system's folder name under ``root`` (default: the system name); ``tasks``: only these;
    ``drop``: leaves left out (a partial run)."""
    from harness_ext.metrics.tagging import span_prf, token_accuracy
    from harness_ext.reports.rules import score_task
    from xtreme_tasks.table import TASK_ORDER

    rng = random.Random(system)
    scores = {}
    for task in tasks or TASK_ORDER:
        spec = TASKS[task]
        rows_by_lang, metrics = {}, {}
        for lang in spec.languages:
            rows = []
            if spec.request_kind == "classify":
                for i in range(n):
                    gold = spec.labels[i % len(spec.labels)]
                    pred = gold if rng.random() < skill else spec.labels[(i + 1) % len(spec.labels)]
                    rows.append({"doc_id": i, "doc": {"id": f"{lang}-{i}"}, "acc": [pred, gold]})
                metrics[lang] = {"acc": 100.0 * sum(r["acc"][0] == r["acc"][1] for r in rows) / n}
            elif spec.request_kind == "tag":
                golds = [[rng.choice(spec.labels) for _ in range(4)] for _ in range(n)]
                preds = [[t if rng.random() < skill else rng.choice(spec.labels) for t in g] for g in golds]
                rows = [{"doc_id": i, "doc": {"id": f"{lang}-{i}"}, "f1": [g, p]} for i, (g, p) in enumerate(zip(golds, preds))]
                metrics[lang] = {"f1": span_prf(golds, preds)["f1"], "token_acc": token_accuracy(golds, preds)}
            elif spec.request_kind == "extract_span":
                for i in range(n):
                    em = 100.0 if rng.random() < skill else 0.0
                    f1 = 100.0 if em else 100.0 * rng.random() * skill
                    rows.append({"doc_id": i, "doc": {"id": f"{lang}-{i}"}, "em": [f"{lang}-{i}", "a", em], "f1": f1})
                metrics[lang] = {"em": sum(r["em"][2] for r in rows) / n, "f1": sum(r["f1"] for r in rows) / n}
            else:
                metrics[lang] = {spec.score_metrics[0]: 100.0 * skill}
            if rows:
                rows_by_lang[lang] = rows
        for leaf in drop:
            lang = leaf.rsplit("-", 1)[1]
            if leaf == spec.leaf(lang):
                rows_by_lang.pop(lang, None)
                metrics.pop(lang, None)
        configs = {spec.leaf(l): {"metadata": {"version": 1.0, "plugin_version": "0.1.0"}} for l in metrics}
        if task == "udpos":  # a test set that is not XTREME's: the report must mark it
            configs[spec.leaf("en")]["metadata"]["test_set"] = {"standard": False, "note": "EWT only, not the pooled test set"}
        write_run(root / (folder or system) / task, system, task, rows_by_lang, metrics, limit=limit,
                  date=1767261600.0, extra={"configs": configs, "lm_eval_version": "0.4.13"})
        scores[task] = score_task(task, metrics).score
    return scores


#: names that would run script if a page or Markdown viewer parsed them as HTML
HOSTILE_NAMES = ('<img src=x onerror="window.__pwned=1">', '"><script>window.__pwned=2</script>[x](javascript:alert(1))')
HOSTILE_FAMILY = "$x^{2}$ </script><b>fam"


def write_sweep(root: Path) -> tuple[Path, Path]:
    """A sweep of several systems: three sizes (tiny32 / tiny128 / tiny512, named so that text
    order differs from size order), baseline and intermediate-task (mnli) rows, two seeds at one
    size, a partial row (two tasks, XNLI without ``de``), a row run with ``--limit``, and two rows
    with hostile names in a family whose name is mathtext. Returns (results folder, checkpoints.yaml)."""
    runs = root / "runs"
    entries = []
    systems = []  # (name, folder, family, size, intermediate, seed, skill)
    for size, skill in ((32, 0.35), (128, 0.5), (512, 0.65)):
        systems.append((f"tiny{size}", f"tiny{size}", "tiny", size * 1_000_000, None, 1, skill))
        systems.append((f"tiny{size}-mnli", f"tiny{size}-mnli", "tiny", size * 1_000_000, "mnli", 1, skill + 0.1))
    systems.append(("tiny32-s2", "tiny32-s2", "tiny", 32_000_000, None, 2, 0.33))
    systems.append(("tiny32-mnli-s2", "tiny32-mnli-s2", "tiny", 32_000_000, "mnli", 2, 0.42))
    systems.append((HOSTILE_NAMES[0], "hostile-base", HOSTILE_FAMILY, 7_000_000, None, 1, 0.3))
    systems.append((HOSTILE_NAMES[1], "hostile-mnli", HOSTILE_FAMILY, 7_000_000, "mnli", 1, 0.45))
    for name, folder, family, size, intermediate, seed, skill in systems:
        write_complete_system(runs, name, skill, folder=folder)
        entries.append((name, family, size, intermediate, seed))
    write_complete_system(runs, "tiny8-partial", 0.3, folder="tiny8-partial", tasks=("xnli", "pawsx"), drop=("xtreme-xnli-de",))
    write_complete_system(runs, "tiny64-limit", 0.5, folder="tiny64-limit", limit=8)
    entries += [("tiny8-partial", "tiny", 8_000_000, None, 1), ("tiny64-limit", "tiny", 64_000_000, None, 1)]
    lines = ["version: 1", "systems:"]
    for name, family, size, intermediate, seed in entries:
        lines.append(f"  {json.dumps(name)}:")
        lines.append(f"    family: {json.dumps(family)}")
        lines.append(f"    size: {size}")
        lines.append(f"    seed: {seed}")
        if intermediate:
            lines.append(f"    intermediate_task: {intermediate}")
        lines.append("    checkpoints: {xnli: org/model}")
    checkpoints = root / "checkpoints.yaml"
    checkpoints.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return runs, checkpoints


def write_xtreme_r_system(root: Path, system: str, skill: float, folder: str | None = None,
                          tasks: Sequence[str] | None = None, drop: Sequence[str] = ()) -> Path:
    """One XTREME-R run of ``system`` (results only, tagged by lm-eval's ``group_subtasks`` as the
    ``xtreme-r`` umbrella ran it) under ``root/<folder>/xtreme-r``: every task of XTREME-R (or
    ``tasks``) in every language it scores, numbers around ``100 * skill`` varying by language;
    ``drop``: leaves left out (a partial run). Score it with ``all_scores`` for hand checks."""
    from xtreme_tasks.table import BENCHMARKS

    version = BENCHMARKS["xtreme-r"]
    rng = random.Random(f"{system}@xtreme-r")
    results, configs = {}, {}
    subtasks: dict[str, list[str]] = {version.umbrella: []}
    for task in tasks or version.tasks:
        spec = version.spec(task)
        group = version.task_group(task)
        subtasks[version.umbrella].append(group)
        subtasks[group] = []
        for lang in spec.languages:
            leaf = spec.leaf(lang)
            if leaf in drop:
                continue
            value = max(0.0, min(100.0, 100.0 * skill + rng.uniform(-15.0, 15.0)))
            metrics = {m: value - (10.0 if m == "em" else 0.0) for m in spec.score_metrics}
            results[leaf] = {"alias": leaf, **{f"{m},none": v for m, v in metrics.items()}}
            configs[leaf] = {"metadata": {"version": 1.0, "plugin_version": "0.1.0"}}
            subtasks[group].append(leaf)
    out = root / (folder or system) / "xtreme-r"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps({
        "results": results, "group_subtasks": subtasks, "groups": {}, "configs": configs,
        "config": {"model": "xtreme", "model_args": {"system": system}, "limit": None},
        "date": 1767500000.0, "lm_eval_version": "0.4.13"}))
    return path
