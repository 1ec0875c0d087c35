"""Score a predictions folder in the official XTREME layout, with the official rules.

Layout (the one XTREME's evaluate.py and the leaderboard read)::

    <folder>/<task>/test-<lang>.tsv    xnli pawsx tatoeba: one value per line
                                       udpos panx: one tag per line, blank line between sentences
                                       bucc2018: one "<xx-id>\\t<en-id>" pair per line
    <folder>/<task>/test-<lang>.json   xquad mlqa tydiqa: predictions {"id": "answer"},
                                       labels SQuAD v1.1 JSON
    <folder>/xcopa/test-<lang>.jsonl   XTREME-R's XCOPA: one {"label": 0 or 1} per line

Benchmark version (``benchmark``, as evaluate.py's ``--xtreme_version``): ``xtreme`` (the
default) or ``xtreme-r`` decides the tasks, each task's languages and the categories;
without one, a folder holding an XTREME-R-only task (xcopa, lareqa, mewslix) and no
XTREME-only one (pawsx, bucc2018) is scored as XTREME-R.

Rules: every language of a task is scored (a task folder with a language missing is
an error, as in the official script); a task's score is the plain mean over its
languages of its score metrics, so (EM + F1) / 2 for QA; the XTREME score is the
mean of all task scores and is only given when every task was scored -- with a task
missing the report says which and marks the score incomplete rather than averaging
fewer tasks. Tasks and languages come from ``xtreme_tasks.table``; only the official
languages count (extra ones such as XQuAD ``ro`` are ignored with a note).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from harness_ext.metrics.classification import accuracy
from harness_ext.metrics.mlqa import mlqa_scores
from harness_ext.metrics.retrieval import bucc_prf, mean_reciprocal_rank_at_k, tatoeba_accuracy
from harness_ext.metrics.squad import squad_scores
from harness_ext.metrics.tagging import span_prf, token_accuracy
from harness_ext.reports import rules
from xtreme_tasks.table import BENCHMARKS, DEFAULT_BENCHMARK, TABLE, TaskSpec, get_benchmark

PathLike = str | Path

_METRIC_NAMES = {
    "acc": "Acc", "f1": "F1", "em": "EM", "precision": "P", "recall": "R", "token_acc": "token acc",
    "map@20": "mAP@20",
}


class ReportError(ValueError):
    """Input the official scorer cannot score; the message names the file and the fix."""


# ---------------------------------------------------------------- reading files


def _open_lines(path: Path) -> list[str]:
    """Raw lines of a UTF-8 text file (universal newlines, like the official ``open``)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return list(handle)
    except UnicodeDecodeError as err:
        raise ReportError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise ReportError(f"cannot read {path}: {err.strerror}") from None


def read_lines(path: Path) -> list[str]:
    """One stripped value per line, blank lines included (the official ``read_label``)."""
    return [line.strip() for line in _open_lines(path)]


def read_tags(path: Path) -> list[list[str]]:
    """Sentences of tags, one tag per line, split at blank lines (the official ``read_tag``).

    As in the official reader, two blank lines in a row make an empty sentence; only
    empty sentences at the very end are dropped, which changes no span and no count of
    correct tags, but spares a mismatch over trailing blank lines.
    """
    sentences: list[list[str]] = []
    current: list[str] = []
    for raw in _open_lines(path):
        line = raw.strip()
        if line:
            current.append(line)
        else:
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    while sentences and not sentences[-1]:
        sentences.pop()
    return sentences


def read_json(path: Path) -> Any:
    """Parsed JSON, or a ``ReportError`` that points at the broken spot."""
    text = "".join(_open_lines(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportError(
            f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}; "
            "fix the file (QA predictions are one JSON object {\"question id\": \"answer text\"})"
        ) from None


def squad_golds(dataset: Any, path: Path) -> dict[str, list[str]]:
    """``{question id: [gold answer texts]}`` from SQuAD v1.1 JSON (with or without the ``data`` key)."""
    articles = dataset["data"] if isinstance(dataset, dict) and "data" in dataset else dataset
    shape = "SQuAD v1.1 JSON: {\"data\": [{\"paragraphs\": [{\"qas\": [{\"id\": ..., \"answers\": [{\"text\": ...}]}]}]}]}"
    golds: dict[str, list[str]] = {}
    try:
        for article in articles:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    qid = qa["id"]
                    answers = [answer["text"] for answer in qa["answers"]]
                    if qid in golds:
                        raise ReportError(f"{path}: question id {qid!r} appears twice; ids must be unique")
                    if not answers:
                        raise ReportError(f"{path}: question {qid!r} has no gold answers; every test question needs one")
                    golds[qid] = answers
    except (KeyError, TypeError) as err:
        raise ReportError(f"{path} is not a labels file in {shape} (problem: {err!r})") from None
    if not golds:
        raise ReportError(f"{path} holds no questions; expected {shape}")
    return golds


def qa_predictions(data: Any, path: Path) -> dict[str, str]:
    """``{question id: answer}``, checked: a JSON object whose values are all strings."""
    if not isinstance(data, dict):
        raise ReportError(
            f"{path} must hold one JSON object {{\"question id\": \"answer text\"}}, "
            f"not a {type(data).__name__}"
        )
    for qid, answer in data.items():
        if not isinstance(answer, str):
            raise ReportError(
                f"{path}: the prediction for question {qid!r} is a {type(answer).__name__}, "
                "not a string; write the answer text"
            )
    return data


# ---------------------------------------------------------------- per-language scorers

#: metrics of one language on the 0-100 scale, and notes for the report
Scored = tuple[dict[str, float], list[str]]
#: (spec, lang, predictions file, labels file) -> Scored
Scorer = Callable[[TaskSpec, str, Path, Path], Scored]


def _same_length(pred_path: Path, label_path: Path, n_pred: int, n_gold: int, unit: str, fix: str) -> None:
    if n_pred != n_gold:
        raise ReportError(f"{pred_path} has {n_pred} {unit} but {label_path} has {n_gold}; {fix}")


def _score_accuracy(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    preds, golds = read_lines(pred_path), read_lines(label_path)
    _same_length(pred_path, label_path, len(preds), len(golds), "lines",
                 "write one predicted label per line of the labels file, in the same order")
    return {"acc": accuracy(preds, golds)}, []


def _score_tags(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    preds, golds = read_tags(pred_path), read_tags(label_path)
    _same_length(pred_path, label_path, len(preds), len(golds), "sentences",
                 "write one tag per line and a blank line after each sentence, sentences in the labels' order")
    try:
        scores = span_prf(golds, preds)
        if "token_acc" in spec.metrics:
            scores["token_acc"] = token_accuracy(golds, preds)
    except ValueError as err:
        raise ReportError(
            f"{pred_path} does not line up with {label_path}: {err} "
            "(sentences counted from 0, separated by blank lines)"
        ) from None
    return scores, []


def _qa_inputs(pred_path: Path, label_path: Path) -> tuple[dict[str, str], dict[str, list[str]], list[str]]:
    preds = qa_predictions(read_json(pred_path), pred_path)
    golds = squad_golds(read_json(label_path), label_path)
    unanswered = sum(qid not in preds for qid in golds)
    notes = []
    if unanswered:
        notes.append(
            f"{pred_path}: {unanswered} of {len(golds)} questions have no prediction "
            "and score 0 (as in the official script)"
        )
    return preds, golds, notes


def _score_squad(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    preds, golds, notes = _qa_inputs(pred_path, label_path)
    return squad_scores(preds, golds), notes


def _score_mlqa(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    preds, golds, notes = _qa_inputs(pred_path, label_path)
    return mlqa_scores(preds, golds, lang), notes


def _score_bucc(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    preds = [line.split("\t") for line in read_lines(pred_path)]
    golds = [line.split("\t") for line in read_lines(label_path)]
    return bucc_prf(preds, golds), []


def _score_tatoeba(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    preds, golds = read_lines(pred_path), read_lines(label_path)
    _same_length(pred_path, label_path, len(preds), len(golds), "lines",
                 "write the retrieved index for each query on its own line, in query order")
    return {"acc": tatoeba_accuracy(preds, golds)}, []


def _id_lists(data: Any, path: Path, what: str) -> dict[str, list[str]]:
    """``{example id: [entity ids]}``, checked (Mewsli-X predictions and labels files)."""
    if not isinstance(data, dict) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in data.values()
    ):
        raise ReportError(f"{path} must hold one JSON object {{\"example id\": [{what}]}} (Mewsli-X layout); fix the file")
    return data


def _score_mewslix(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    """``utils_mewslix.evaluate(k=20)``: reciprocal rank of the gold QID among the first 20 predicted."""
    preds = _id_lists(read_json(pred_path), pred_path, "predicted entity ids, best first")
    golds = _id_lists(read_json(label_path), label_path, "the gold entity id")
    if any(not ids or not ids[0].strip() for ids in golds.values()):
        raise ReportError(f"{label_path}: some examples have no gold entity id (XTREME's preprocessing blanks the test "
                          "labels); score against the withheld gold")
    notes = []
    unanswered = sum(example not in preds for example in golds)
    if unanswered:
        notes.append(f"{pred_path}: {unanswered} of {len(golds)} mentions have no prediction and score 0 "
                     "(as in the official script)")
    return {"map@20": mean_reciprocal_rank_at_k(golds, preds, k=20)}, notes


def read_xcopa_labels(path: Path) -> list[Any]:
    """The ``label`` of every JSON line (the official ``read_xcopa``); blank lines are skipped."""
    labels = []
    for number, line in enumerate(_open_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ReportError(f"{path}:{number}: not a JSON line ({err.msg}); write one {{\"label\": 0 or 1}} per line") from None
        if not isinstance(row, dict) or "label" not in row:
            raise ReportError(f"{path}:{number}: no \"label\" field; write one {{\"label\": 0 or 1}} per line")
        labels.append(row["label"])
    return labels


def _score_xcopa(spec: TaskSpec, lang: str, pred_path: Path, label_path: Path) -> Scored:
    preds, golds = read_xcopa_labels(pred_path), read_xcopa_labels(label_path)
    _same_length(pred_path, label_path, len(preds), len(golds), "lines",
                 "write one {\"label\": 0 or 1} line per example of the labels file, in the same order")
    return {"acc": accuracy(preds, golds)}, []


#: The scorer of a task: by request kind, with the tasks whose official metric differs.
_SCORER_BY_KIND: dict[str, Scorer] = {
    "classify": _score_accuracy, "tag": _score_tags, "extract_span": _score_squad, "choose": _score_xcopa,
}
_SCORER_BY_TASK: dict[str, Scorer] = {
    "mlqa": _score_mlqa, "bucc2018": _score_bucc, "tatoeba": _score_tatoeba, "mewslix": _score_mewslix,
}


def scorer_for(spec: TaskSpec) -> Scorer:
    """The per-language scorer that implements ``spec``'s official metric."""
    scorer = _SCORER_BY_TASK.get(spec.name) or _SCORER_BY_KIND.get(spec.request_kind)
    if scorer is None:
        raise ReportError(f"no official scorer for task {spec.name!r}; add one in {__name__}")
    return scorer


def file_suffix(spec: TaskSpec) -> str:
    """As evaluate.py's ``get_suffix``: ``json`` for QA and Mewsli-X, ``jsonl`` for the multiple-choice
    task (XCOPA), ``tsv`` for every other task."""
    if spec.request_kind == "extract_span" or spec.name == "mewslix":
        return "json"
    return "jsonl" if spec.request_kind == "choose" else "tsv"


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class TaskScore:
    """One task: per-language metrics, their plain means, and the task's XTREME score."""

    name: str
    title: str
    category: str
    languages: tuple[str, ...]
    per_language: dict[str, dict[str, float]]
    averages: dict[str, float]
    score_metrics: tuple[str, ...]
    score: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title, "category": self.category, "languages": list(self.languages),
            "score": self.score, "score_metrics": list(self.score_metrics),
            "averages": dict(self.averages), "per_language": {k: dict(v) for k, v in self.per_language.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ScoreReport:
    """All scored tasks, the tasks of the benchmark's score that were not scored, and notes."""

    tasks: dict[str, TaskScore]
    missing: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    benchmark: str = DEFAULT_BENCHMARK

    @property
    def complete(self) -> bool:
        return not self.missing

    def _task_scores(self) -> dict[str, float]:
        return {name: task.score for name, task in self.tasks.items()}

    @property
    def xtreme_score(self) -> float | None:
        """Mean of all task scores of the benchmark (XTREME: 9, XTREME-R: 10); ``None`` unless every one was scored."""
        return rules.xtreme_score(self._task_scores(), self.benchmark)

    @property
    def categories(self) -> dict[str, float]:
        """Mean task score per category, for the categories whose tasks were all scored."""
        scores = rules.category_scores(self._task_scores(), self.benchmark)
        return {category: value for category, value in scores.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "xtreme_score": self.xtreme_score,
            "complete": self.complete,
            "missing_tasks": list(self.missing),
            "categories": self.categories,
            "tasks": {name: task.to_dict() for name, task in self.tasks.items()},
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- scoring a folder


def _check_folder(path: Path, role: str) -> None:
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a folder"
        raise ReportError(
            f"{role} folder {path} {what}; pass the folder that holds one subfolder per task "
            f"({', '.join(t + '/' for t in TABLE)})"
        )


def infer_benchmark(pred_root: Path) -> str:
    """``xtreme-r`` for a folder with an XTREME-R-only task folder and no XTREME-only one, else ``xtreme``."""
    found = {p.name for p in pred_root.iterdir() if p.is_dir()}
    only = {name: set(b.tasks) - {t for o in BENCHMARKS.values() if o is not b for t in o.tasks}
            for name, b in BENCHMARKS.items()}
    return "xtreme-r" if found & only["xtreme-r"] and not found & only["xtreme"] else DEFAULT_BENCHMARK


def _select(tasks: Iterable[str] | None, benchmark: str = DEFAULT_BENCHMARK) -> list[str] | None:
    """Task names in benchmark order; accepts ``xnli,pawsx`` in one entry. ``None``: all."""
    if not tasks:
        return None
    order = get_benchmark(benchmark).tasks
    wanted = [name.strip() for entry in tasks for name in entry.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in order]
    if unknown:
        raise ReportError(f"unknown task(s) {', '.join(unknown)}; the {get_benchmark(benchmark).title} tasks are "
                          f"{', '.join(order)}")
    return [name for name in order if name in wanted]


def score_task(spec: TaskSpec, pred_dir: Path, label_dir: Path) -> TaskScore:
    """Score every official language of one task from its two folders."""
    suffix = file_suffix(spec)
    scorer = scorer_for(spec)
    pred_files = {lang: pred_dir / f"test-{lang}.{suffix}" for lang in spec.languages}
    label_files = {lang: label_dir / f"test-{lang}.{suffix}" for lang in spec.languages}
    no_labels = [lang for lang in spec.languages if pred_files[lang].is_file() and not label_files[lang].is_file()]
    if no_labels:
        raise ReportError(
            f"predictions without labels for {spec.name}: "
            f"{', '.join(str(label_files[lang]) for lang in no_labels)} not found; "
            "point --labels at the folder that holds these test labels"
        )
    no_preds = [lang for lang in spec.languages if not pred_files[lang].is_file()]
    if no_preds:
        raise ReportError(
            f"{spec.name} has no predictions for {len(no_preds)} of its {len(spec.languages)} languages "
            f"({', '.join(no_preds)}): e.g. {pred_files[no_preds[0]]} not found; its score averages all "
            f"languages, so write them all, or leave the task out (--tasks)"
        )
    notes: list[str] = []
    official = {f"test-{lang}.{suffix}" for lang in spec.languages}
    ignored = sorted(p.name for p in pred_dir.iterdir() if p.is_file() and p.name not in official)
    if ignored:
        notes.append(f"{pred_dir}: ignored {', '.join(ignored)} (not an official {spec.title} test file)")
    per_language: dict[str, dict[str, float]] = {}
    for lang in spec.languages:
        scores, lang_notes = scorer(spec, lang, pred_files[lang], label_files[lang])
        per_language[lang] = scores
        notes.extend(lang_notes)
    first = per_language[spec.languages[0]]
    metrics = [m for m in spec.score_metrics if m in first] + [m for m in first if m not in spec.score_metrics]
    averages = {m: sum(per_language[lang][m] for lang in spec.languages) / len(spec.languages) for m in metrics}
    score = sum(averages[m] for m in spec.score_metrics) / len(spec.score_metrics)
    return TaskScore(
        name=spec.name, title=spec.title, category=spec.category, languages=spec.languages,
        per_language=per_language, averages=averages, score_metrics=spec.score_metrics,
        score=score, notes=tuple(notes),
    )


def score_folder(
    predictions_dir: PathLike, labels_dir: PathLike, tasks: Sequence[str] | None = None,
    benchmark: str | None = None,
) -> ScoreReport:
    """Score ``predictions_dir`` against ``labels_dir`` with the official rules of ``benchmark``
    (``xtreme`` / ``xtreme-r``; ``None``: :func:`infer_benchmark`).

    ``tasks``: score only these (the XTREME score is then incomplete unless all are
    given); each named task must have a predictions folder. With ``tasks=None`` every
    task folder found is scored and the others are reported as missing.
    Raises :class:`ReportError` on input that cannot be scored.
    """
    pred_root, label_root = Path(predictions_dir), Path(labels_dir)
    _check_folder(pred_root, "predictions")
    _check_folder(label_root, "labels")
    benchmark = benchmark or infer_benchmark(pred_root)
    version = get_benchmark(benchmark)
    selected = _select(tasks, benchmark)
    notes: list[str] = []
    if selected is None:
        candidates = list(version.tasks)
        others = sorted(p.name for p in pred_root.iterdir() if p.is_dir() and p.name not in version.tasks)
        if others:
            elsewhere = {b.title: [o for o in others if o in b.tasks] for b in BENCHMARKS.values() if b is not version}
            hint = "".join(f"; {', '.join(names)}: {title} (--benchmark {title.lower()})"
                           for title, names in elsewhere.items() if names)
            notes.append(f"{pred_root}: ignored folder(s) {', '.join(others)} (not {version.title} tasks{hint})")
    else:
        candidates = selected
        absent = [name for name in selected if not (pred_root / name).is_dir()]
        if absent:
            raise ReportError(
                f"no predictions for {', '.join(absent)}: {pred_root / absent[0]} is not a folder; "
                "write the task's predictions there, or drop it from --tasks"
            )
    results: dict[str, TaskScore] = {}
    for name in candidates:
        pred_dir, label_dir = pred_root / name, label_root / name
        if not pred_dir.is_dir():
            continue
        if not label_dir.is_dir():
            raise ReportError(
                f"predictions for {name} but no labels: {label_dir} is not a folder; "
                f"point --labels at a folder with {name}/, or leave {name} out (--tasks)"
            )
        results[name] = score_task(version.spec(name), pred_dir, label_dir)
    if not results:
        raise ReportError(
            f"{pred_root} holds no task folders of {version.title}; expected one or more of "
            f"{', '.join(t + '/' for t in version.tasks)}"
        )
    missing = tuple(name for name in version.tasks if name not in results)
    for task in results.values():
        notes.extend(task.notes)
    return ScoreReport(tasks=results, missing=missing, notes=tuple(notes), benchmark=benchmark)


# ---------------------------------------------------------------- command


def _metrics_cell(task: TaskScore) -> str:
    return " · ".join(f"{_METRIC_NAMES.get(m, m)} {v:.2f}" for m, v in task.averages.items())


def render_table(report: ScoreReport, console: Any) -> None:
    """Print one row per task (languages, metric means, score), category means and the XTREME score."""
    from rich.table import Table

    version = get_benchmark(report.benchmark)
    title, n_tasks = version.title, len(version.tasks)
    table = Table(title=f"{title} (official scoring)")
    for column, justify in (("task", "left"), ("languages", "right"), ("metrics (mean over languages)", "left"),
                            ("score", "right")):
        table.add_column(column, justify=justify)
    for name in version.tasks:
        spec = version.spec(name)
        if name in report.tasks:
            task = report.tasks[name]
            table.add_row(task.title, str(len(task.languages)), _metrics_cell(task), f"{task.score:.2f}")
        else:
            table.add_row(spec.title, str(len(spec.languages)), "not scored", "-")
    console.print(table)
    for category, value in report.categories.items():
        console.print(f"{category}: {value:.2f}", markup=False, highlight=False, soft_wrap=True)
    if report.complete:
        console.print(f"{title} score: {report.xtreme_score:.2f}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(
            f"{title} score: incomplete, {len(report.missing)} of {n_tasks} tasks not scored "
            f"({', '.join(report.missing)}); it is the mean of all {n_tasks} task scores",
            markup=False, highlight=False, soft_wrap=True,
        )
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def score_command(
    predictions: Path, labels: Path | None, tasks: list[str] | None = None, as_json: bool = False,
    benchmark: str | None = None, data_dir: Path | None = None,
) -> int:
    """``xtreme-eval score``: print the report (table or JSON); 0 when scored, 2 on bad input.

    Labels come from ``labels`` (the submission layout) or are rendered from the test data
    in ``data_dir`` (:mod:`harness_ext.reports.labels`). An incomplete XTREME score still
    exits 0: the table (or ``"complete": false`` in the JSON) says which tasks are missing.
    """
    import tempfile

    try:
        if (labels is None) == (data_dir is None):
            raise ReportError("give the gold labels as --labels FOLDER (submission layout) or --data-dir FOLDER "
                              "(the XTREME test data the run read), one of the two")
        with tempfile.TemporaryDirectory(prefix="xtreme-labels-") as rendered:
            if data_dir is not None:
                from harness_ext.reports.labels import write_labels

                _check_folder(Path(predictions), "predictions")
                write_labels(data_dir, predictions, rendered)
                labels = Path(rendered)
            report = score_folder(predictions, labels, tasks, benchmark)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        render_table(report, Console())
    return 0
