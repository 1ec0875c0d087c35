"""The lm-eval model ``xtreme``: answers XTREME request kinds with encoder or mT5 checkpoints.

    lm_eval --model xtreme --model_args pretrained=PATH_OR_HUB_ID[,layer=8,pooling=mean]
    lm_eval --model xtreme --model_args system=NAME[,checkpoints=checkpoints.yaml]

Requests are grouped by task; each task's checkpoint is resolved (one ``pretrained``
for every task, or the system's per-task entry), loaded once through
``harness_ext.backends`` and handed to the adapter module of the request kind.
Loading weights stays in the backends; answering stays in the adapters.
``strict_test_sets=true`` refuses to answer a task whose test set was not XTREME's
(see ``xtreme_tasks/fingerprints.py`` and docs/data.md).
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import re
import sys
from pathlib import Path
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Any

from lm_eval.api.instance import Instance
from lm_eval.api.model import LM

from harness_ext.adapters.runtime.distributed import Collectives, launched_world_size
from harness_ext.adapters.runtime.settings import (
    ANSWER_TEXT_MODES,
    EXTRA_KEYS,
    EXTRA_PREFIXES,
    TAG_OUTPUT_MODES,
    TAG_SPLIT_MODES,
    AdapterSettings,
)
from harness_ext.errors import ModelArgsError  # noqa: F401  (raised here; its home is errors.py)
from harness_ext.requests import HEAD_FOR_KIND
from harness_ext.tasks.base import parse_leaf_name

log = logging.getLogger(__name__)

#: request kind -> adapter module for encoder checkpoints
ADAPTER_MODULES = {
    "classify": "harness_ext.adapters.encoder.classify",
    "tag": "harness_ext.adapters.encoder.tag",
    "extract_span": "harness_ext.adapters.encoder.span",
    "embed": "harness_ext.adapters.encoder.embed",
    "choose": "harness_ext.adapters.encoder.choose",
}
TEXT2TEXT_MODULE = "harness_ext.adapters.text2text.adapter"


class PreflightError(ValueError):
    """Checkpoints that cannot answer their tasks, found before any forward pass."""


class UnsupportedRequest(RuntimeError):
    """An lm-eval request kind this model does not answer (e.g. a prompt-style task)."""


@dataclass(frozen=True)
class CheckpointChoice:
    """Which weights answer one task's requests, and how to load them."""

    source: str
    head: str
    backend: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    #: adapter overrides for this checkpoint (e.g. retrieval layer/pooling from a system)
    settings: tuple[tuple[str, Any], ...] = field(default=())


def _bare_architecture(source: str) -> str | None:
    """``no task head (BertModel)`` when a local config names only architectures without one."""
    try:
        archs = json.loads((Path(source) / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return None
    return f"no task head ({', '.join(archs)})" if archs else None


def left_out_summary(missing: dict[str, str] | None = None) -> str:
    """One entry per task group left out for missing data (default: every task left out in
    this process), with its first reason."""
    from harness_ext.tasks.base import UNAVAILABLE

    missing = UNAVAILABLE if missing is None else missing
    groups: dict[str, list[str]] = {}
    for task in missing:
        groups.setdefault(_group([task]).split(" (")[0], []).append(task)
    return "; ".join(f"{_group(tasks)}: {missing[tasks[0]]}" for tasks in groups.values())


def _group(tasks: list[str]) -> str:
    """``xtreme-xquad-en, xtreme-xquad-de`` -> ``xtreme_xquad (2 languages)``."""
    groups: dict[str, int] = {}
    for task in tasks:
        try:
            name = "xtreme_" + parse_leaf_name(task)[0]
        except ValueError:
            name = task
        groups[name] = groups.get(name, 0) + 1
    return ", ".join(f"{g} ({n} language{'s' if n > 1 else ''})" for g, n in groups.items())


def _as_int(value: Any, name: str) -> int | None:
    if value is None or value == "" or value == "auto":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ModelArgsError(f"--model_args {name}={value!r}: expected an integer") from None


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    if str(value) not in choices:
        raise ModelArgsError(f"--model_args {name}={value!r}: use one of {', '.join(choices)}")
    return str(value)


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


#: what lm-eval's command line passes as the device when ``--device`` is not given
LM_EVAL_DEFAULT_DEVICE = "cuda:0"


def is_lm_eval_default_device(device: Any, argv: list[str] | None = None) -> bool:
    """``device`` is lm-eval's command-line default, not the user's: we run under the
    ``lm_eval`` command (or ``python -m lm_eval``, ``xtreme-eval run``) without ``--device``."""
    argv = sys.argv if argv is None else argv
    program = str(argv[0]) if argv else ""
    under_cli = Path(program).name in ("lm_eval", "lm-eval") or program.replace("\\", "/").endswith("lm_eval/__main__.py")
    flag = any(arg == "--device" or arg.startswith("--device=") for arg in argv[1:])
    return under_cli and not flag and str(device) == LM_EVAL_DEFAULT_DEVICE


def _usable_device(device: str | None) -> str:
    """``device`` if this machine has it; lm-eval's default ``cuda`` falls back to the CPU."""
    if not device:
        return _default_device()
    if str(device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            log.warning("xtreme: device %s requested but torch sees no CUDA GPU; running on the CPU", device)
            return "cpu"
    return str(device)


def _cuda_capabilities(device: str) -> list[tuple[int, int]]:
    """Compute capability of ``device`` (``cuda:N``), or of every visible GPU for plain ``cuda``
    (a ``device_map`` may spread the model over all of them)."""
    import torch

    if not (device.startswith("cuda") and torch.cuda.is_available()):
        return []
    index = torch.device(device).index
    ids = [index] if index is not None else list(range(torch.cuda.device_count()))
    return [tuple(torch.cuda.get_device_capability(i)) for i in ids]  # type: ignore[misc]


def auto_dtype(device: str, capabilities=_cuda_capabilities) -> str:
    """``dtype=auto``: bfloat16 where every GPU used has it in hardware (compute capability
    >= 8.0: A100, A10, L4, H100 ...), else float32.

    Not ``torch.cuda.is_bf16_supported()``: it counts emulation and says True on V100/T4,
    where bf16 runs several times slower than fp32. float16 is not chosen for the user
    (T5-family models overflow in it); ask for ``dtype=float16`` on V100/T4 encoders.
    """
    caps = capabilities(device)
    return "bfloat16" if caps and all(tuple(c) >= (8, 0) for c in caps) else "float32"


def _resolve_dtype(dtype: str | None, device: str) -> str:
    if dtype in (None, "", "auto"):
        return auto_dtype(device)
    aliases = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
    dtype = aliases.get(str(dtype), str(dtype))
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ModelArgsError(f"--model_args dtype={dtype!r}: use float32, float16, bfloat16 or auto")
    return dtype


def parse_max_memory(value: str) -> tuple[tuple[int | str, str], ...]:
    """``"0:70GiB;1:70GiB;cpu:200GiB"`` -> ``((0, "70GiB"), (1, "70GiB"), ("cpu", "200GiB"))``."""
    pairs = []
    for part in str(value).replace(",", ";").split(";"):
        if not part.strip():
            continue
        device, _, amount = part.partition(":")
        if not amount:
            raise ModelArgsError(f"--model_args max_memory={value!r}: expected DEVICE:AMOUNT pairs like 0:70GiB;1:70GiB")
        device = device.strip()
        pairs.append((int(device) if device.isdigit() else device, amount.strip()))
    return tuple(pairs)


@functools.lru_cache(maxsize=None)
def is_text_to_text(source: str) -> bool:
    """Whether ``source`` is an encoder-decoder LM (T5/mT5/mT0/BART-like) rather than an encoder."""
    config_file = Path(source) / "config.json"
    try:
        if config_file.is_file():
            config = json.loads(config_file.read_text(encoding="utf-8"))
        elif Path(source).exists():
            return False
        else:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(source, trust_remote_code=False).to_dict()
    except Exception:  # unreadable here: let the backend decide and report
        return False
    architectures = " ".join(config.get("architectures") or [])
    return bool(config.get("is_encoder_decoder")) and (
        "ConditionalGeneration" in architectures or not architectures
    )


def model_arg_names() -> list[str]:
    """Every ``--model_args`` key ``--model xtreme`` reads: its arguments and the adapters' ``EXTRA_KEYS``."""
    import inspect

    params = inspect.signature(XtremeLM.__init__).parameters
    named = [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
    return named + list(EXTRA_KEYS)


def check_model_arg_keys(keys) -> None:
    """An unknown key is an error naming the closest valid one (a typo must not run with defaults)."""
    from harness_ext.run_guard import check_keys

    check_keys([k for k in keys if not str(k).startswith(EXTRA_PREFIXES)], model_arg_names(), "--model xtreme --model_args")


class XtremeLM(LM):
    """lm-eval model for XTREME's request kinds (classify, tag, extract_span, embed)."""

    def __init__(
        self,
        pretrained: str | None = None,
        system: str | None = None,
        checkpoints: str | None = None,
        backend: str | None = None,
        tokenizer: str | None = None,
        device: str | None = None,
        dtype: str | None = "auto",
        batch_size: int | str | None = "auto",
        max_batch_size: int | str | None = 512,
        max_length: int | str | None = None,
        stride: int | str = 128,
        layer: int | str | None = None,
        pooling: str = "mean",
        max_answer_length: int | str = 30,
        answer_text: str = "official",
        tag_split: str = "official",
        tag_outputs: str = "official",
        cache_dir: str | None = None,
        use_cache: bool | str = True,
        keep_loaded: int | str = 2,
        head: str | None = None,
        templates: str | None = None,
        device_map: str | None = None,
        max_memory: str | None = None,
        trust_remote_code: bool | str = False,
        strict_test_sets: bool | str = False,
        allow_missing: bool | str = False,
        **extra: Any,
    ) -> None:
        super().__init__()
        check_model_arg_keys(extra)
        #: run the selected tasks that have data when others have none (marked in the results JSON)
        self.allow_missing = _as_bool(allow_missing)
        if bool(pretrained) == bool(system):
            raise ModelArgsError(
                "--model xtreme needs exactly one of pretrained=<checkpoint folder or hub id> "
                "or system=<name in checkpoints.yaml>"
            )
        self.pretrained = pretrained
        #: refuse requests of a task whose test set is not XTREME's (see xtreme_tasks/fingerprints.py)
        self.strict_test_sets = _as_bool(strict_test_sets)
        self.system_name = system
        self.backend = backend
        self.head_override = head
        from harness_ext.backends._guards import refuse_remote_code

        refuse_remote_code(trust_remote_code, "--model_args")  # checkpoints never run their own code
        self.load_options: dict[str, Any] = {}
        if tokenizer:
            self.load_options["tokenizer"] = tokenizer
        if device_map:  # large models: accelerate places the layers over all GPUs (e.g. device_map=auto)
            self.load_options["device_map"] = device_map
        if max_memory:  # "0:70GiB;1:70GiB" -> hashable tuple, dict for transformers in the backend
            self.load_options["max_memory"] = parse_max_memory(max_memory)
        self._collectives = None
        if launched_world_size() > 1:
            self._collectives = Collectives(cpu=str(device or "").startswith("cpu"))
            self._rank = self._collectives.rank
            self._world_size = self._collectives.world_size
            device = self._collectives.device
            log.warning("xtreme: data parallel, rank %d of %d on %s", self._rank, self._world_size, device)
        device = _usable_device(device)
        batch = None if str(batch_size).startswith("auto") else _as_int(batch_size, "batch_size")
        self.settings = AdapterSettings(
            device=device,
            dtype=_resolve_dtype(dtype, device),
            batch_size=batch,
            max_batch_size=_as_int(max_batch_size, "max_batch_size") or 512,
            max_length=_as_int(max_length, "max_length"),
            stride=_as_int(stride, "stride") or 128,
            layer=_as_int(layer, "layer"),
            pooling=str(pooling),
            max_answer_length=_as_int(max_answer_length, "max_answer_length") or 30,
            answer_text=_choice(answer_text, "answer_text", ANSWER_TEXT_MODES),
            tag_split=_choice(tag_split, "tag_split", TAG_SPLIT_MODES),
            tag_outputs=_choice(tag_outputs, "tag_outputs", TAG_OUTPUT_MODES),
            cache_dir=cache_dir,
            use_cache=_as_bool(use_cache),
            templates=templates,
            extra=dict(extra),
        )
        self._system = None
        if system:
            from harness_ext.systems import load_systems

            systems = load_systems(checkpoints)
            if system not in systems:
                raise ModelArgsError(
                    f"system {system!r} is not in {checkpoints or 'checkpoints.yaml'}; "
                    f"known systems: {', '.join(sorted(systems)) or '(none)'}"
                )
            self._system = systems[system]
        self._check_outputs()
        from harness_ext.tasks.base import PENDING, UNAVAILABLE

        # lm-eval builds the model before the tasks: what earlier runs in this process left
        # behind (a sweep runs many jobs in one process) must not be checked or reported here
        PENDING.clear()
        UNAVAILABLE.clear()
        self._keep_loaded = max(1, _as_int(keep_loaded, "keep_loaded") or 1)
        self._loaded: OrderedDict[CheckpointChoice, Any] = OrderedDict()

    # ------------------------------------------------------------ construction from lm-eval
    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> "XtremeLM":
        """``--model_args`` win over lm-eval's own ``--batch_size``/``--device`` (which
        lm-eval always passes, batch size 1 by default) instead of clashing with them."""
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None and k not in arg_dict}
        if "device" in extra and is_lm_eval_default_device(extra["device"]):
            # lm-eval's command line fills in cuda:0 when no --device is given: not the user's
            # choice, so the best device here is taken without a warning about it
            extra.pop("device")
        if str(extra.get("batch_size")) == "1":
            # lm-eval's CLI passes batch_size=1 whenever --batch_size is not given; for
            # encoders that is ~10x slower than the automatic plan, so it means "auto" here
            # (batch_size=1 in --model_args is honoured as given).
            log.info("xtreme: lm-eval's batch size 1 -> automatic batch size (set batch_size= in --model_args to force one)")
            extra["batch_size"] = "auto"
        return cls(**arg_dict, **extra)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> "XtremeLM":
        from lm_eval.utils import simple_parse_args_string

        args = simple_parse_args_string(arg_string)
        # older lm-eval releases read "-1" as the float -1.0; a signed integer stays an integer
        for key, raw in (part.split("=", 1) for part in (arg_string or "").split(",") if "=" in part):
            if re.fullmatch(r"[+-]?\d+", raw.strip()) and isinstance(args.get(key.strip()), float):
                args[key.strip()] = int(raw)
        return cls.create_from_arg_obj(args, additional_config)

    # ------------------------------------------------------------ checkpoints
    def checkpoint_for(self, task_name: str, kind: str) -> CheckpointChoice:
        """The checkpoint that answers ``kind`` requests of leaf task ``task_name``."""
        xtreme_task, _lang = parse_leaf_name(task_name)
        if self._system is None:
            return CheckpointChoice(
                source=str(self.pretrained), head=self._head_for(str(self.pretrained), kind, self.head_override),
                backend=self.backend, options=tuple(sorted(self.load_options.items())),
            )
        ref = self._system.checkpoint_for(xtreme_task)
        options = {**self.load_options, **dict(getattr(ref, "options", {}) or {})}
        settings = dict(getattr(ref, "settings", {}) or {})
        if getattr(ref, "templates", None):
            settings["templates"] = str(ref.templates)
        return CheckpointChoice(
            source=str(ref.source),
            head=self._head_for(str(ref.source), kind, getattr(ref, "head", None)),
            backend=getattr(ref, "backend", None) or self.backend,
            options=tuple(sorted(options.items())),
            settings=tuple(sorted(settings.items())),
        )

    def _head_for(self, source: str, kind: str, declared: str | None) -> str:
        """The head to load: as declared, else ``seq2seq`` for encoder-decoder checkpoints
        (mT5 answers every kind by text; retrieval pools its encoder), else the kind's head."""
        if declared and declared not in ("auto",):
            if declared == "seq2seq" and kind == "embed":
                return "encoder"
            return declared
        if is_text_to_text(source):
            return "encoder" if kind == "embed" else "seq2seq"
        return HEAD_FOR_KIND[kind]

    def load(self, choice: CheckpointChoice):
        """Load (or reuse) a checkpoint; keeps the ``keep_loaded`` most recent ones in memory."""
        if choice in self._loaded:
            self._loaded.move_to_end(choice)
            return self._loaded[choice]
        from harness_ext.backends import load_checkpoint

        while len(self._loaded) >= self._keep_loaded:
            self._loaded.popitem(last=False)
        log.info("loading %s (%s head) on %s/%s", choice.source, choice.head, self.settings.device, self.settings.dtype)
        loaded = load_checkpoint(
            choice.source, choice.head, device=self.settings.device, dtype=self.settings.dtype,
            backend=choice.backend, **dict(choice.options),
        )
        self._loaded[choice] = loaded
        return loaded

    def settings_for(self, choice: CheckpointChoice) -> AdapterSettings:
        if not choice.settings:
            return self.settings
        from dataclasses import replace

        return replace(self.settings, **dict(choice.settings))

    def _check_outputs(self) -> None:
        """Before any task is built: lm-eval's ``--output_path`` must be writable (lm-eval
        itself only warns at the end, having saved nothing); an unwritable embedding cache
        warns once and the run goes on uncached."""
        from harness_ext.outputs import output_path_from_argv, require_writable

        if Path(str(sys.argv[0] if sys.argv else "")).name in ("lm_eval", "lm-eval", "xtreme-eval", "__main__.py"):
            target = output_path_from_argv(sys.argv[1:])
            if target:
                folder = Path(target)
                require_writable(folder.parent if folder.suffix == ".json" else folder, "--output_path")
        if self.settings.use_cache:
            from harness_ext.retrieval.cache import default_cache_dir, warn_unwritable
            from harness_ext.outputs import writable_dir

            root = default_cache_dir(self.settings.cache_dir)
            problem = writable_dir(root)
            if problem:
                warn_unwritable(root, problem)

    # ------------------------------------------------------------ preflight
    def preflight(self) -> None:
        """Check the checkpoint of every task whose requests lm-eval has built, before the
        first forward pass: a wrong head or unreadable checkpoint for any selected task
        stops the run here, one line per problem, instead of after hours of other tasks.
        Tasks without data were dealt with before (``harness_ext.run_guard.check_data``)."""
        from harness_ext.tasks.base import PENDING

        pending = dict(PENDING)
        PENDING.clear()
        choices: dict[CheckpointChoice, list[str]] = {}
        for task, kind in pending.items():
            try:
                choices.setdefault(self.checkpoint_for(task, kind), []).append(task)
            except Exception as exc:  # noqa: BLE001 - a system without this task, bad options
                choices.setdefault(CheckpointChoice(source=f"<{exc}>", head="?"), []).append(task)
        problems = []
        for choice, tasks in choices.items():
            problem = self._check(choice)
            if problem:
                problems.append(f"{_group(tasks)}: {problem}")
        if problems:
            for line in problems:
                log.error("xtreme: %s", line)
            raise PreflightError(f"{len(problems)} checkpoint problem(s) found before any evaluation, nothing was "
                                 "computed: " + " | ".join(problems))

    def _check(self, choice: CheckpointChoice) -> str | None:
        """Why ``choice`` cannot answer its tasks (None when it can). Hugging Face folders
        are checked from their config (head named in ``architectures``), other formats by
        loading them (kept loaded for the run)."""
        from harness_ext.backends import CheckpointError, detect_backend
        from harness_ext.backends.describe import NotChecked, describe

        if choice.source.startswith("<"):
            return choice.source[1:-1]
        try:
            try:
                backend = choice.backend or detect_backend(choice.source)
            except CheckpointError:
                backend = None  # let the loader itself say what it cannot read
            if backend != "hf":
                self.load(choice)
                return None
            info = describe(choice.source, choice.head, backend=backend, **dict(choice.options))
        except NotChecked:
            return None
        except CheckpointError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a hostile or damaged file may fail deep inside a library
            log.debug("xtreme: checking %s failed", choice.source, exc_info=True)
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            return f"{choice.source}: cannot be loaded: {type(exc).__name__}: {first[:300]}"
        if choice.head not in ("sequence-classification", "token-classification", "question-answering", "multiple-choice"):
            return None
        from harness_ext.backends._common import head_fix

        saved = info.saved_head or _bare_architecture(choice.source)
        if saved not in (None, choice.head, "seq2seq"):
            what = saved if saved.startswith("no task head") else f"a {saved} head"
            return f"{choice.source}: carries {what}, expected a {choice.head} head{head_fix(choice.head)}"
        return None

    # ------------------------------------------------------------ dispatch
    def _answer(self, kind: str, requests: list[Instance]) -> list:
        from harness_ext.tasks.prompting import prompt_context_of

        shots = max(((prompt_context_of(r) or {}).get("num_fewshot", 0) for r in requests), default=0)
        if shots:
            raise UnsupportedRequest(
                f"--model xtreme evaluates fine-tuned checkpoints zero-shot (the XTREME protocol) and takes no "
                f"demonstrations; --num_fewshot {shots} is for prompted LLMs (--model hf, vllm, local-completions, ...)"
            )
        self.preflight()
        by_task: dict[str, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            by_task[request.task_name].append(i)
        responses: list = [None] * len(requests)
        if self.strict_test_sets:
            from xtreme_tasks.fingerprints import refuse_if_nonstandard

            for task_name in by_task:
                refuse_if_nonstandard(*parse_leaf_name(task_name))
        from harness_ext.progress import phase

        with phase(len(by_task), kind, unit="task") as shown:  # one line with an ETA over all languages
            for task_name, indices in by_task.items():
                shown.set_postfix_str(task_name, refresh=False)
                choice = self.checkpoint_for(task_name, kind)
                loaded = self.load(choice)
                if getattr(loaded, "head", choice.head) == "seq2seq":
                    module = importlib.import_module(TEXT2TEXT_MODULE)
                    answers = module.answer(kind, loaded, [requests[i] for i in indices], self.settings_for(choice))
                else:
                    module = importlib.import_module(ADAPTER_MODULES[kind])
                    answers = module.answer(loaded, [requests[i] for i in indices], self.settings_for(choice))
                if len(answers) != len(indices):
                    raise RuntimeError(f"{module.__name__} answered {len(answers)} of {len(indices)} {kind} requests")
                for i, answer in zip(indices, answers):
                    responses[i] = answer
                shown.update(1)
        return responses

    def classify(self, requests: list[Instance]) -> list[str]:
        return self._answer("classify", requests)

    def tag(self, requests: list[Instance]) -> list[list[str]]:
        return self._answer("tag", requests)

    def extract_span(self, requests: list[Instance]) -> list[str]:
        return self._answer("extract_span", requests)

    def embed(self, requests: list[Instance]) -> list:
        return self._answer("embed", requests)

    def choose(self, requests: list[Instance]) -> list[str]:
        return self._answer("choose", requests)

    # ------------------------------------------------------------ data parallel (lm-eval's collectives)
    @property
    def device(self) -> str:
        return self.settings.device

    def all_gather(self, tensor):
        return tensor if self._collectives is None else self._collectives.all_gather(tensor)

    def gather_object(self, obj, dst: int = 0):
        return [obj] if self._collectives is None else self._collectives.gather_object(obj, dst)

    def barrier(self) -> None:
        if self._collectives is not None:
            self._collectives.barrier()

    # ------------------------------------------------------------ lm-eval's prompt kinds
    def _unsupported(self, kind: str):
        raise UnsupportedRequest(
            f"the xtreme model answers XTREME's request kinds (classify, tag, extract_span, embed, choose), "
            f"not '{kind}': run prompt-style tasks with --model hf"
        )

    def loglikelihood(self, requests):
        self._unsupported("loglikelihood")

    def loglikelihood_rolling(self, requests):
        self._unsupported("loglikelihood_rolling")

    def generate_until(self, requests):
        self._unsupported("generate_until")

    @property
    def tokenizer_name(self) -> str:
        return str(self.pretrained or self.system_name)
