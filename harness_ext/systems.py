"""``checkpoints.yaml``: which checkpoint each task of a leaderboard row uses.

XTREME fine-tunes one model per target task and uses the plain encoder for BUCC and
Tatoeba, so a *system* (one leaderboard row) is a set of checkpoints plus the facts
that make rows comparable: model family, size, intermediate task, seed. The file is
validated with pydantic; every error names the file, the system and the field.

    systems:
      my-xlmr-base:
        family: xlm-r
        size: 278000000
        seed: 1
        encoder: xlm-roberta-base          # retrieval tasks (bucc2018, tatoeba, lareqa, mewslix) unless given per task
        retrieval: {layer: 7, pooling: mean}
        checkpoints:
          xnli: ./runs/xnli/best           # relative to this file's folder
          mewslix: {source: ./runs/mewslix-dual-encoder, layer: -1, pooling: cls}   # a retrieval task's own layer
          panx: {source: ./runs/panx.ckpt, backend: lightning, tokenizer: xlm-roberta-base}

A source starting with ``/``, ``./``, ``../`` or ``~``, or naming something that exists
beside the YAML file, is a path; anything else is a hub id.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness_ext.errors import yaml_error_line
from xtreme_tasks.table import TABLE as TASKS  # every task of either benchmark (XTREME-R's too)

Head = Literal["sequence-classification", "token-classification", "question-answering", "multiple-choice",
               "encoder", "seq2seq"]
Scalar = Union[str, int, float, bool]
#: request kind of a task -> the head its fine-tuned checkpoint carries (as harness_ext.requests.HEAD_FOR_KIND,
#: kept here so that reading checkpoints.yaml does not import lm-eval)
HEAD_FOR_KIND = {"classify": "sequence-classification", "tag": "token-classification",
                 "extract_span": "question-answering", "embed": "encoder", "choose": "multiple-choice"}
RETRIEVAL_TASKS = tuple(name for name, spec in TASKS.items() if spec.request_kind == "embed")
ENV_VAR = "XTREME_CHECKPOINTS"
FILE_NAME = "checkpoints.yaml"


class SystemsError(ValueError):
    """checkpoints.yaml is missing, unreadable or invalid, or lacks what was asked."""


def task_head(task: str) -> str:
    """The head a fine-tuned checkpoint for ``task`` carries (``encoder`` for retrieval)."""
    kind = TASKS[task].request_kind
    if kind not in HEAD_FOR_KIND:
        raise ValueError(f"{task}: no checkpoint head is known for its request kind {kind!r}")
    return HEAD_FOR_KIND[kind]


# --------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckpointSpec(_Strict):
    """One checkpoint as written in the file (a bare string is its ``source``)."""

    source: str = Field(min_length=1, description="folder/file path or hub id")
    head: Head | None = Field(None, description="default: the task's head; seq2seq for mT5-style text-to-text")
    backend: str | None = Field(None, description="default: detected from the files")
    tokenizer: str | None = Field(None, description="folder or hub id, for formats that store none")
    labels: tuple[str, ...] | None = Field(None, description="label names in the head's output order")
    templates: str | None = Field(None, description="text-to-text templates (seq2seq checkpoints)")
    revision: str | None = None
    options: dict[str, Scalar] = Field(default_factory=dict, description="more backend options")
    layer: int | None = Field(None, description="retrieval tasks: this checkpoint's layer (else the system's)")
    pooling: str | None = Field(None, description="retrieval tasks: this checkpoint's pooling (else the system's)")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"source": value} if isinstance(value, str) else value

    @field_validator("pooling")
    @classmethod
    def _known_pooling(cls, value: str | None) -> str | None:
        known = _poolings()
        if value is not None and known and value not in known:
            raise ValueError(f"unknown pooling {value!r}; expected one of {', '.join(known)}")
        return value

    @field_validator("options")
    @classmethod
    def _no_remote_code(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        from harness_ext.backends._guards import REMOTE_CODE_FIX

        if str(value.get("trust_remote_code", False)).strip().lower() not in {"false", "0", "no", "off", ""}:
            raise ValueError(f"trust_remote_code is refused (it would import Python files from the checkpoint); "
                             f"{REMOTE_CODE_FIX}")
        return {k: v for k, v in value.items() if k != "trust_remote_code"}


class Retrieval(_Strict):
    """How sentence vectors are taken (see harness_ext.adapters.encoder.embed for the conventions)."""

    layer: int | None = None
    pooling: str = "mean"

    @field_validator("pooling")
    @classmethod
    def _known_pooling(cls, value: str) -> str:
        known = _poolings()
        if known and value not in known:
            raise ValueError(f"unknown pooling {value!r}; expected one of {', '.join(known)}")
        return value


class Baseline(_Strict):
    """Published numbers to compare a row against (0-100 scale)."""

    source: str = Field(description="citation or URL")
    scores: dict[str, float] = Field(default_factory=dict, description="per task, and/or 'xtreme'")

    @field_validator("scores")
    @classmethod
    def _known_tasks(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(TASKS) - {"xtreme"})
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; expected xtreme or one of {', '.join(TASKS)}")
        return value


class SystemSpec(_Strict):
    """One leaderboard row as written in the file."""

    family: str = Field(min_length=1, description="e.g. xlm-r, mbert, mt5")
    size: int = Field(gt=0, description="parameters")
    intermediate_task: str | None = None
    seed: int | None = None
    description: str | None = None
    encoder: CheckpointSpec | None = Field(None, description="retrieval tasks' checkpoint unless given per task")
    retrieval: Retrieval = Field(default_factory=Retrieval)
    checkpoints: dict[str, CheckpointSpec] = Field(default_factory=dict)
    baseline: Baseline | None = None

    @field_validator("checkpoints")
    @classmethod
    def _known_tasks(cls, value: dict[str, CheckpointSpec]) -> dict[str, CheckpointSpec]:
        unknown = sorted(set(value) - set(TASKS))
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; expected some of {', '.join(TASKS)}")
        for task, spec in value.items():
            if (spec.layer is not None or spec.pooling is not None) and task not in RETRIEVAL_TASKS:
                raise ValueError(f"{task}: layer/pooling apply to retrieval tasks ({', '.join(RETRIEVAL_TASKS)}) only")
            allowed = {task_head(task), "seq2seq"}
            if spec.head is not None and spec.head not in allowed:
                raise ValueError(f"{task}: head {spec.head!r} cannot answer {task}; expected one of {sorted(allowed)}")
        return value

    @model_validator(mode="after")
    def _has_something(self) -> "SystemSpec":
        if not self.checkpoints and self.encoder is None:
            raise ValueError("no checkpoints: give 'checkpoints' per task and/or an 'encoder'")
        return self


class FileSpec(_Strict):
    version: Literal[1] = 1
    systems: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- resolved objects
@dataclass(frozen=True)
class CheckpointRef:
    """What the model adapter needs to load one task's checkpoint.

    ``options`` go to ``harness_ext.backends.load_checkpoint``; ``settings`` override
    ``AdapterSettings`` fields (retrieval layer/pooling). Both are hashable tuples-of-items
    friendly: values are scalars or tuples.
    """

    source: str
    head: str
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    templates: str | None = None
    task: str = ""
    system: str = ""


@dataclass(frozen=True)
class System:
    """One validated leaderboard row, paths resolved against its file's folder."""

    name: str
    spec: SystemSpec
    file: Path

    @property
    def family(self) -> str:
        return self.spec.family

    @property
    def size(self) -> int:
        return self.spec.size

    @property
    def intermediate_task(self) -> str | None:
        return self.spec.intermediate_task

    @property
    def seed(self) -> int | None:
        return self.spec.seed

    @property
    def baseline(self) -> Baseline | None:
        return self.spec.baseline

    def tasks(self) -> list[str]:
        """Tasks this system has a checkpoint for, in table order."""
        return [t for t in TASKS if self._spec_for(t) is not None]

    def _spec_for(self, task: str) -> CheckpointSpec | None:
        if task in self.spec.checkpoints:
            return self.spec.checkpoints[task]
        if task in RETRIEVAL_TASKS:
            return self.spec.encoder
        return None

    def checkpoint_for(self, task: str) -> CheckpointRef:
        """The checkpoint that answers ``task`` (a table name like ``xnli``)."""
        if task not in TASKS:
            raise SystemsError(f"{self.file}: unknown task {task!r}; expected one of {', '.join(TASKS)}")
        spec = self._spec_for(task)
        if spec is None:
            raise SystemsError(
                f"{self.file}: system {self.name!r} has no checkpoint for {task}; "
                f"it has: {', '.join(self.tasks()) or 'none'}"
            )
        base = self.file.parent
        options: dict[str, Any] = {k: _resolve_option(k, v, base) for k, v in sorted(spec.options.items())}
        if spec.tokenizer:
            options["tokenizer"] = resolve_source(spec.tokenizer, base)
        if spec.labels:
            options["labels"] = tuple(spec.labels)
        if spec.revision:
            options["revision"] = spec.revision
        head = spec.head or task_head(task)
        settings: dict[str, Any] = {}
        if task in RETRIEVAL_TASKS:
            settings = {
                "layer": spec.layer if spec.layer is not None else self.spec.retrieval.layer,
                "pooling": spec.pooling or self.spec.retrieval.pooling,
            }
        return CheckpointRef(
            source=resolve_source(spec.source, base), head=head, backend=spec.backend, options=options,
            settings=settings, templates=resolve_source(spec.templates, base) if spec.templates else None,
            task=task, system=self.name,
        )


#: option names whose values are paths (resolved like sources)
_PATH_OPTIONS = {"tokenizer", "base_model", "config"}


def _resolve_option(key: str, value: Scalar, base: Path) -> Scalar:
    return resolve_source(value, base) if key in _PATH_OPTIONS and isinstance(value, str) else value


def is_path_like(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~"))


def resolve_source(source: str, base: Path) -> str:
    """A path (explicit, or existing beside the YAML file) made absolute; a hub id unchanged."""
    if source.startswith("~"):
        return str(Path(source).expanduser())
    if is_path_like(source) or (base / source).exists():
        return str((base / source).resolve())
    return source


# --------------------------------------------------------------------------- loading
def default_path() -> Path:
    """$XTREME_CHECKPOINTS, else ./checkpoints.yaml, else the copy shipped with the package."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    local = Path.cwd() / FILE_NAME
    if local.exists():
        return local
    here = Path(__file__).resolve().parent
    for cand in (here / FILE_NAME, here.parent / FILE_NAME):  # wheel copy, then source checkout
        if cand.exists():
            return cand
    return local


def load_systems(path: str | Path | None = None) -> dict[str, System]:
    """Every system in the file, validated; raises SystemsError naming file/system/field."""
    systems, problems = parse_systems(path)
    if problems:
        raise SystemsError("\n".join(problems))
    return systems


def parse_systems(path: str | Path | None = None) -> tuple[dict[str, System], list[str]]:
    """The valid systems of the file and one line per problem of the others (SystemsError
    when the file as a whole is unusable), so that one bad system hides no other."""
    file = Path(path).expanduser() if path else default_path()
    raw = _read_yaml(file)
    try:
        top = FileSpec.model_validate(raw)
    except ValidationError as exc:
        raise SystemsError(_format_errors(file, None, exc)) from None
    if not top.systems:
        raise SystemsError(f"{file}: defines no systems (expected 'systems:' with at least one system; "
                           "see the shipped checkpoints.yaml)")
    systems: dict[str, System] = {}
    problems: list[str] = []
    for name, body in top.systems.items():
        try:
            systems[str(name)] = System(str(name), SystemSpec.model_validate(body), file.resolve())
        except ValidationError as exc:
            problems.extend(_format_errors(file, str(name), exc).splitlines())
    return systems, problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML says keys are unique;
    PyYAML would silently keep the last, hiding a system)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.setdefault(key, key_node.start_mark.line + 1)
        except TypeError:  # unhashable key: let PyYAML report it
            continue
        if first != key_node.start_mark.line + 1:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first}; a key may appear once)", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _read_yaml(file: Path) -> Any:
    if not file.exists():
        raise SystemsError(f"{file}: no such file (expected a checkpoints.yaml; set ${ENV_VAR} or pass a path)")
    if not file.is_file():
        raise SystemsError(f"{file}: is a folder, not a file (pass the path of checkpoints.yaml itself)")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SystemsError(f"{file}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None
    except OSError as exc:
        raise SystemsError(f"{file}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SystemsError(f"{file}: not valid YAML: {yaml_error_line(exc)}") from None
    except RecursionError:
        raise SystemsError(f"{file}: nested too deeply to be a checkpoints file; fix its structure") from None
    if data is None:
        raise SystemsError(f"{file}: is empty (expected 'systems:' with at least one system; "
                           "see the shipped checkpoints.yaml)")
    if not isinstance(data, dict):
        raise SystemsError(f"{file}: expected a mapping with a 'systems' key, got {type(data).__name__}")
    return data


def _format_errors(file: Path, system: str | None, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        where = f"system {system!r}: " if system else ""
        lines.append(f"{file}: {where}{loc or '(top level)'}: {err['msg']}")
    return "\n".join(lines)


def _poolings() -> tuple[str, ...]:
    try:
        from harness_ext.adapters.encoder.embed import POOLINGS
    except ImportError:
        return ()
    return tuple(POOLINGS)


# --------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class Problem:
    """One thing wrong in a checkpoints file; ``warning`` ones do not fail validation."""

    file: str
    system: str | None
    field: str | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        parts = [self.file]
        if self.system:
            parts.append(f"system {self.system!r}")
        if self.field:
            parts.append(self.field)
        return f"{': '.join(parts)}: {self.severity}: {self.message}"


def validate_file(path: str | Path | None = None, check_heads: bool = True) -> list[Problem]:
    """Schema, then per checkpoint: the path exists and, with ``check_heads``, the
    checkpoint carries the task's head with the task's labels (loads what it must)."""
    file = Path(path).expanduser() if path else default_path()
    try:
        systems, invalid = parse_systems(file)
    except SystemsError as exc:
        return [Problem(str(file), None, None, line.removeprefix(f"{file}: ")) for line in str(exc).splitlines()]
    problems = [Problem(str(file), None, None, line.removeprefix(f"{file}: ")) for line in invalid]
    seen: set[tuple] = set()
    if check_heads:
        _offline_unless_hub_answers(systems)
    for name, system in systems.items():
        for task in system.tasks():
            ref = system.checkpoint_for(task)
            where = f"checkpoints.{task}" if task in system.spec.checkpoints else "encoder"
            found = check_checkpoint(ref, task, check_heads) + check_templates(ref)
            for severity, message in found:
                # a checkpoint shared by several tasks (BUCC and Tatoeba), or a hub id by several systems: said once
                key = (message,) if severity == "warning" else (name, where, message)
                if key not in seen:
                    seen.add(key)
                    problems.append(Problem(str(file), name, where, message, severity))
    return problems


def _offline_unless_hub_answers(systems: dict[str, "System"]) -> None:
    """With hub ids to check and the hub not answering one quick probe, check them offline
    (from the local cache, else one warning each) instead of through minutes of retries."""
    from harness_ext.backends._common import offline_unless_hub_answers

    if any(not Path(system.checkpoint_for(task).source).exists() for system in systems.values() for task in system.tasks()):
        offline_unless_hub_answers()


def check_templates(ref: CheckpointRef) -> list[tuple[str, str]]:
    """A ``templates:`` file is read and checked as the run will read it."""
    if not ref.templates:
        return []
    from harness_ext.adapters.text2text.templates import load_templates

    try:
        load_templates(ref.templates)
    except ValueError as exc:
        return [("error", " ".join(str(exc).split()))]
    return []


def check_checkpoint(ref: CheckpointRef, task: str, check_heads: bool) -> list[tuple[str, str]]:
    """(severity, message) pairs for one task's checkpoint: path, head, labels."""
    from harness_ext.backends import CheckpointError
    from harness_ext.backends.describe import NotChecked, describe

    out: list[tuple[str, str]] = []
    for what, value in (("source", ref.source), ("tokenizer", ref.options.get("tokenizer"))):
        if isinstance(value, str) and is_path_like(value) and not Path(value).exists():
            out.append(("error", f"{what} {value} does not exist"))
    if out:
        return out
    layer_problem = check_layer(ref)
    if layer_problem:
        out.append(("error", layer_problem))
    if not check_heads:
        return out
    try:
        info = describe(ref.source, ref.head, backend=ref.backend, **ref.options)
    except NotChecked as exc:
        return [("warning", f"{ref.source}: not checked: {exc}")]
    except CheckpointError as exc:
        return out + [("error", " ".join(str(exc).split()))]
    except OSError as exc:  # a file that cannot be read (permissions, a folder where a file belongs)
        return out + [("error", f"{ref.source}: cannot be read: {exc.strerror or exc} ({getattr(exc, 'filename', '')})")]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - one bad checkpoint never stops the others being checked
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        return out + [("error", f"{ref.source}: cannot be checked: {type(exc).__name__}: {first[:300]}")]
    if ref.head != "encoder" and info.saved_head not in (None, ref.head):
        return [("error", f"{ref.source}: carries a {info.saved_head} head; {task} needs {ref.head}")]
    labels = TASKS[task].labels
    if ref.head in ("sequence-classification", "token-classification") and labels:
        problem = label_problem(info, ref, labels)
        if problem:
            out.append(("error", problem))
    return out


def check_layer(ref: CheckpointRef) -> str | None:
    """``layer:`` outside the encoder's blocks, read from config.json alone (no weights)."""
    layer = (getattr(ref, "settings", None) or {}).get("layer")
    if layer is None:
        return None
    candidates = [ref.options.get("config"), ref.source] if isinstance(ref.options.get("config"), str) else [ref.source]
    for folder in candidates:
        config = Path(str(folder)) / "config.json"
        if not config.is_file():
            continue
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as exc:
            return f"{config}: unreadable config ({type(exc).__name__}); cannot check layer={layer}"
        blocks = next((data.get(k) for k in ("num_hidden_layers", "num_layers", "n_layers", "encoder_layers")
                       if isinstance(data.get(k), int) and data.get(k) > 0), None) if isinstance(data, dict) else None
        if blocks is None:
            return None
        from harness_ext.adapters.encoder.embed import hidden_state_index

        try:
            hidden_state_index(int(layer), blocks)
        except ValueError as exc:
            return f"{ref.source}: retrieval {exc}"
        return None
    return None


def label_problem(info: Any, ref: CheckpointRef, labels: tuple[str, ...]) -> str | None:
    """Why the head's id2label cannot be mapped onto the task's labels (None when it can).

    Uses the adapters' own mapping, so validation accepts exactly what evaluation accepts.
    """
    from types import SimpleNamespace

    id2label = dict(info.id2label)
    if ref.options.get("labels"):
        names = list(ref.options["labels"])
        if info.num_labels is not None and len(names) != info.num_labels:
            return f"{ref.source}: labels={names} names {len(names)} outputs but the head has {info.num_labels}"
        id2label = dict(enumerate(names))
    config = SimpleNamespace(id2label=id2label, num_labels=info.num_labels or len(id2label))
    loaded = SimpleNamespace(model=SimpleNamespace(config=config), source=ref.source)
    try:
        if ref.head == "sequence-classification":
            from harness_ext.adapters.encoder.classify import head_to_task_labels as mapping
        else:
            from harness_ext.adapters.encoder.tag import head_to_tagset as mapping
    except ImportError:
        mapping = None
    if mapping is not None:
        try:
            mapping(loaded, labels)
        except ValueError as exc:
            return str(exc)
        return None
    if {str(v) for v in id2label.values()} != set(labels):
        return f"{ref.source}: head labels {sorted(id2label.values())} do not match the task's {list(labels)}"
    return None


def validate_command(path: str | Path | None = None, check_heads: bool = True) -> int:
    """``xtreme-eval checkpoints validate``: print problems; 0 when there are no errors."""
    file = Path(path).expanduser() if path else default_path()
    problems = validate_file(file, check_heads=check_heads)
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems)
    if not errors:
        try:
            count = len(load_systems(file))
        except SystemsError:
            count = 0
        print(f"{file}: OK ({count} systems{f', {len(problems)} warnings' if problems else ''})")
    return 1 if errors else 0
