"""jiant 2.x run outputs: ``runs/<task>/best_model.p`` (or ``last_model.p``,
``model__<step>.p``) beside ``args.json``, as ``jiant/proj/main/runscript.py`` writes them.

The ``.p`` file is the JiantModel's state dict: the shared encoder under ``encoder.``
(repeated under ``taskmodels_dict.<tm>.encoder.``) and one head per task model under
``taskmodels_dict.<tm>.head.``. jiant's heads map onto transformers as follows:

* tagging (``head.classifier``) -> ``*ForTokenClassification.classifier`` (same maths);
* SQuAD-style QA (``head.qa_outputs``) -> ``*ForQuestionAnswering.qa_outputs`` (same maths);
* classification (``head.dense``/``head.out_proj``) has no transformers twin: jiant feeds the
  encoder's *pooler* output through dense -> tanh -> out_proj, so it is rebuilt here as
  ``JiantSequenceClassifier`` (``_jiant_model.py``) to give jiant's logits exactly.

Config, tokenizer and labels come from the run's own records (``args.json`` ->
``model_config_path``, the exported ``tokenizer/`` folder, the run config's task map),
found again when the experiment folder has moved.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness_ext.backends._common import (
    apply_label_names,
    config_from,
    load_tokenizer,
    model_class,
    model_from_state_dict,
)
from harness_ext.backends._guards import inside, named_location, read_json
from harness_ext.backends._torchfile import torch_load
from harness_ext.backends.base import CheckpointError, register_backend

WEIGHT_NAMES = ("best_model.p", "last_model.p")
_STEP_FILE = re.compile(r"model__(\d+)\.p$")
_TASKMODEL = re.compile(r"^taskmodels_dict\.([^.]+)\.head\.(.+)$")

#: jiant task name -> (head, label names in jiant's order) for XTREME's tasks
JIANT_TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mnli": ("sequence-classification", ("contradiction", "entailment", "neutral")),
    "xnli": ("sequence-classification", ("contradiction", "entailment", "neutral")),
    "pawsx": ("sequence-classification", ("0", "1")),
    "udpos": ("token-classification", ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
                                       "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")),
    "panx": ("token-classification", ("B-LOC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O")),
    "squad_v1": ("question-answering", ()), "squad": ("question-answering", ()), "xquad": ("question-answering", ()),
    "mlqa": ("question-answering", ()), "tydiqa": ("question-answering", ()),
}
#: head submodule names that tell jiant's head types apart
_HEAD_KEYS = {"out_proj.weight": "sequence-classification", "classifier.weight": "token-classification",
              "qa_outputs.weight": "question-answering"}


def weights_file(path: Path, name: str | None = None) -> Path | None:
    """The run's weights: ``name``, else best_model.p, last_model.p, the latest model__N.p."""
    if path.is_file():
        return path if path.suffix == ".p" else None
    if not path.is_dir():
        return None
    if name:
        return path / name
    for candidate in WEIGHT_NAMES:
        if (path / candidate).is_file():
            return path / candidate
    steps = sorted((int(m.group(1)), p) for p in path.glob("model__*.p") if (m := _STEP_FILE.search(p.name)))
    return steps[-1][1] if steps else None


@register_backend("jiant", lambda p: weights_file(p) is not None, priority=20,
                  expects="jiant run folder: best_model.p / last_model.p / model__N.p (+ args.json)")
def load_jiant(source: str, head: str, *, tokenizer: str | None = None, config: str | None = None,
               task: str | None = None, weights: str | None = None) -> tuple[Any, Any]:
    path = Path(source)
    file = weights_file(path, weights)
    if file is None or not file.is_file():
        raise CheckpointError(f"{path}: no jiant weights (expected {', '.join(WEIGHT_NAMES)} or model__N.p)")
    run = RunRecords(file.parent)
    state = torch_load(file, "a jiant model state dict (torch.save of JiantModel.state_dict())")
    if not isinstance(state, dict) or not any(k.startswith("encoder.") for k in state):
        raise CheckpointError(f"{file}: not a jiant state dict (expected 'encoder.*' and 'taskmodels_dict.*' keys)")
    cfg = run.config(config, file)
    encoder_sd = {k: v for k, v in state.items() if k.startswith("encoder.")}
    if head == "encoder":
        model = model_from_state_dict(cfg, "encoder", {k[len("encoder."):]: v for k, v in encoder_sd.items()}, str(file))
    else:
        name = choose_taskmodel(state, head, task, file)
        head_sd = {m.group(2): v for k, v in state.items() if (m := _TASKMODEL.match(k)) and m.group(1) == name}
        cfg.num_labels = int(head_sd["out_proj.weight" if head == "sequence-classification" else
                                     "classifier.weight"].shape[0]) if head != "question-answering" else 2
        apply_label_names(cfg, head, run.labels(name, head), str(file))
        model = build_task_model(cfg, head, encoder_sd, head_sd, str(file))
    tok = load_tokenizer([run.tokenizer_dir(), file.parent, run.hf_name()], str(file), tokenizer)
    return model, tok


def choose_taskmodel(state: dict[str, Any], head: str, task: str | None, file: Path) -> str:
    """The task model whose head answers ``head`` (``task=`` picks one among several)."""
    kinds: dict[str, str] = {}
    for key in state:
        m = _TASKMODEL.match(key)
        if m and m.group(2) in _HEAD_KEYS:
            kinds[m.group(1)] = _HEAD_KEYS[m.group(2)]
    if task is not None:
        if task not in kinds:
            raise CheckpointError(f"{file}: no task model {task!r}; it has {sorted(kinds) or 'none'}")
        if kinds[task] != head:
            raise CheckpointError(f"{file}: task model {task!r} has a {kinds[task]} head; expected a {head} head")
        return task
    fitting = sorted(n for n, k in kinds.items() if k == head)
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        found = ", ".join(f"{n} ({k})" for n, k in sorted(kinds.items())) or "none"
        raise CheckpointError(f"{file}: no task model with a {head} head (found: {found})")
    raise CheckpointError(f"{file}: several {head} task models {fitting}; choose one with task=<name>")


def build_task_model(cfg: Any, head: str, encoder_sd: dict[str, Any], head_sd: dict[str, Any], where: str) -> Any:
    """A transformers model (or jiant's classifier) holding jiant's encoder and head weights."""
    if head == "sequence-classification":
        from harness_ext.backends._jiant_model import JiantSequenceClassifier

        return JiantSequenceClassifier.from_weights(cfg, encoder_sd, head_sd, where)
    base = model_class(cfg, head).base_model_prefix
    sd = {f"{base}.{k[len('encoder.'):]}": v for k, v in encoder_sd.items() if ".pooler." not in f".{k}"}
    sd.update(head_sd)
    return model_from_state_dict(cfg, head, sd, where)


class RunRecords:
    """What a jiant run wrote about itself (args.json, run config, exported model folder),
    with recorded absolute paths found again under the run's ancestors after a move."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        #: the experiment folder: recorded paths are followed only inside it
        self.root = ([run_dir, *run_dir.parents][:5])[-1]
        args_file = run_dir / "args.json"
        self.args: dict[str, Any] = read_json(args_file, "jiant's args.json (a JSON object)") if args_file.is_file() else {}
        if not isinstance(self.args, dict):
            raise CheckpointError(f"{args_file}: expected a JSON object of jiant's run arguments, got "
                                  f"{type(self.args).__name__}; delete it or pass config= and tokenizer=")

    def find(self, recorded: Any) -> Path | None:
        if not isinstance(recorded, str) or not recorded or "\0" in recorded:
            return None
        path = Path(recorded)
        if path.exists() and inside(path, self.root):
            return path
        parts = path.parts
        for k in range(1, len(parts) - 1):  # longest suffix first, at least two components
            suffix = Path(*parts[k:])
            for base in (self.run_dir, *list(self.run_dir.parents)[:4]):
                if (base / suffix).exists() and inside(base / suffix, self.root):
                    return base / suffix
        return None

    def hf_name(self) -> str | None:
        return named_location(self.args.get("hf_pretrained_model_name_or_path"), self.root)

    def config(self, option: str | None, file: Path) -> Any:
        tried = [option] if option else [self.find(self.args.get("model_config_path")), self.hf_name()]
        for cand in tried:
            if not cand:
                continue
            try:
                return config_from(str(cand))
            except Exception as exc:  # noqa: BLE001
                if option:
                    raise CheckpointError(f"{file}: cannot read config {option!r}: {exc}") from exc
        raise CheckpointError(
            f"{file}: no model config (args.json's model_config_path {self.args.get('model_config_path')!r} "
            f"and hf_pretrained_model_name_or_path {self.hf_name()!r} not found); pass config=<config.json or folder>"
        )

    def tokenizer_dir(self) -> Path | None:
        model_cfg = self.find(self.args.get("model_config_path"))
        return model_cfg.parent.parent / "tokenizer" if model_cfg else None

    def labels(self, taskmodel: str, head: str) -> tuple[str, ...] | None:
        """jiant's label order for the tasks trained into ``taskmodel``."""
        names = [taskmodel]
        container = self.find(self.args.get("jiant_task_container_config_path"))
        if container:
            run_config = _object(read_json(container, "jiant's task container config"))
            mapping = _object(_object(run_config.get("taskmodels_config")).get("task_to_taskmodel_map"))
            paths = _object(run_config.get("task_config_path_dict"))
            for task_name, model_name in mapping.items():
                if model_name != taskmodel:
                    continue
                task_cfg = self.find(paths.get(task_name))
                recorded = _object(read_json(task_cfg, "jiant's task config")).get("task") if task_cfg else None
                names.insert(0, recorded if isinstance(recorded, str) else str(task_name))
        for name in names:
            for key in (name, name.split("_")[0]):
                if key in JIANT_TASKS and JIANT_TASKS[key][0] == head and JIANT_TASKS[key][1]:
                    return JIANT_TASKS[key][1]
        return None


def _object(value: Any) -> dict[str, Any]:
    """A JSON object from a jiant record; anything else counts as absent."""
    return value if isinstance(value, dict) else {}
