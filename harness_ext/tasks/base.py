"""Base class for every XTREME leaf task (one task x one language).

It is a ``ConfigurableTask`` so lm-eval's evaluator, groups, ``--limit``,
``--log_samples`` and caching all work, but documents come from
``xtreme_tasks.data.load_docs`` and requests are one of our kinds (see
``harness_ext.requests``). Subclasses set ``REQUEST_KIND`` and implement
``request_arguments``, ``process_results`` and ``metric_aggregations``.
"""

from __future__ import annotations

import abc
import logging
from typing import Any, Callable

from lm_eval.api.task import ConfigurableTask

from harness_ext.requests import make_instance
from harness_ext.tasks.prompting import PromptContext, check_fewshot
from xtreme_tasks.data import DataError, load_checked
from xtreme_tasks.table import TaskSpec, get_task

log = logging.getLogger(__name__)

#: diagnostic metrics where less is better (generated outputs that could not be read, answers not in the context)
LOWER_IS_BETTER = frozenset({"unparsable", "not_in_context"})


#: leaf task -> why its documents could not be read, for tasks built in this process and
#: left out of the run (see ``XtremeTask.download``); read by the preflight and the CLI.
UNAVAILABLE: dict[str, str] = {}
#: leaf task -> request kind, for tasks whose requests were built and not yet answered:
#: the model checks all their checkpoints before its first forward pass (preflight).
PENDING: dict[str, str] = {}


def parse_leaf_name(name: str) -> tuple[str, str]:
    """``xtreme-xnli-de`` -> ``("xnli", "de")``."""
    parts = name.split("-", 2)
    if len(parts) != 3 or parts[0] != "xtreme":
        raise ValueError(f"{name!r} is not an XTREME leaf task name (xtreme-<task>-<lang>)")
    return parts[1], parts[2]


class DocList(list):
    """Plain-dict documents with the ``.features`` lm-eval peeks at (keys of the first doc).

    Keeps documents as Python objects instead of forcing them through ``datasets``.
    """

    @property
    def features(self) -> dict[str, None]:
        return dict.fromkeys(self[0]) if self else {}


class NoDocs(DocList):
    """The documents of a task left out for missing data: none, but lm-eval's constructor
    peeks at document 0, so that one index answers an empty placeholder."""

    def __getitem__(self, index):
        if index == 0 and not len(self):
            return {"label": "", "index": 0, "gold": [], "answers": {"text": []}, "tags": []}
        return super().__getitem__(index)


class NoInstances(list):
    """The (no) requests of a task left out: lm-eval's evaluator reads the filter names
    from instance 0, so that index answers a request with no filtered responses."""

    def __getitem__(self, index):
        if index == 0 and not len(self):
            from types import SimpleNamespace

            return SimpleNamespace(filtered_resps={}, resps=[], doc_id=0, idx=0)
        return super().__getitem__(index)


def _unused_process_results(doc, results):  # placeholder so lm-eval skips metric-name lookups
    raise AssertionError("XtremeTask.process_results is overridden")


class XtremeTask(ConfigurableTask):
    """One XTREME task in one language."""

    REQUEST_KIND: str = ""
    VERSION = 1.0

    def __init__(self, config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k not in ("class", "tag", "group")}
        metadata = dict(config.get("metadata") or {})
        task_name = config.get("task")
        if "xtreme_task" not in metadata or "language" not in metadata:
            if not task_name:
                raise ValueError("an XTREME task config needs metadata.xtreme_task and metadata.language")
            metadata["xtreme_task"], metadata["language"] = parse_leaf_name(task_name)
        self.spec: TaskSpec = get_task(metadata["xtreme_task"])
        self.language: str = metadata["language"]
        self.split: str = metadata.get("split") or self.spec.split
        self.data_dir: str | None = metadata.get("data_dir")
        from harness_ext import __version__

        metadata["plugin_version"] = __version__  # in the results JSON (configs.<leaf>.metadata): the report shows it
        config["metadata"] = metadata
        config.setdefault("test_split", self.split)
        config["output_type"] = None
        config["process_results"] = _unused_process_results
        config["metric_list"] = [
            {"metric": name, "aggregation": agg, "higher_is_better": name not in LOWER_IS_BETTER}
            for name, agg in self.metric_aggregations().items()
        ]
        super().__init__(config=config)
        self.OUTPUT_TYPE = self.REQUEST_KIND  # used by lm-eval for multi-rank padding
        if self._config.generation_kwargs is None:  # filled by --gen_kwargs (see get_config)
            self._config.generation_kwargs = {}

    # ----------------------------------------------------------------- data
    def download(self, dataset_kwargs: dict[str, Any] | None = None, **kwargs) -> None:
        """Read the documents. A task whose data cannot be read is left out of the run
        (no documents, recorded in ``UNAVAILABLE``) instead of stopping lm-eval while it
        builds the other tasks: ``--tasks 'xtreme_*'`` runs what has data. The model's
        preflight reports every such task before the first forward pass."""
        data_dir = (dataset_kwargs or {}).get("data_dir") or self.data_dir
        try:
            docs = DocList(self.read_docs(data_dir))
            UNAVAILABLE.pop(self.config.task, None)
        except DataError as err:
            docs = NoDocs()
            UNAVAILABLE[self.config.task] = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.info("xtreme: %s left out (no data): %s", self.config.task, UNAVAILABLE[self.config.task])
        self.dataset = {self.split: docs}

    def build_all_requests(self, *args: Any, **kwargs: Any) -> None:
        if self.config.task in UNAVAILABLE:  # left out: no requests, no metrics
            self._instances = NoInstances()
            metadata = self.config.metadata if isinstance(self.config.metadata, dict) else {}
            metadata["left_out"] = UNAVAILABLE[self.config.task]  # shows in the results JSON's configs
            return None
        PENDING[self.config.task] = self.REQUEST_KIND
        return super().build_all_requests(*args, **kwargs)

    def apply_filters(self) -> Any:
        if self.config.task in UNAVAILABLE:
            return None
        return super().apply_filters()

    def read_docs(self, data_dir: str | None) -> list[dict]:
        docs, check = load_checked(self.spec.name, self.language, self.split, data_dir=data_dir)
        # recorded in the results JSON (configs.<leaf>.metadata.test_set); the report reads it
        self.config.metadata["test_set"] = check.as_metadata()
        return docs

    def has_training_docs(self) -> bool:
        return False

    def has_validation_docs(self) -> bool:
        return False

    def has_test_docs(self) -> bool:
        return True

    def test_docs(self):
        return self.dataset[self.split]

    def fewshot_docs(self):
        return None

    def doc_to_text(self, doc, doc_to_text=None) -> str:
        return ""

    def doc_to_target(self, doc, doc_to_target=None):
        return ""

    def fewshot_context(self, doc, num_fewshot, system_instruction=None, apply_chat_template=False,
                        fewshot_as_multiturn=False, chat_template=None, gen_prefix=None, **kwargs) -> str:
        """Keep lm-eval's prompt options for :meth:`construct_requests`; the prompt itself is
        rendered by the model's adapter (``--model xtreme`` needs none and refuses shots)."""
        num_fewshot = int(num_fewshot or 0)
        if num_fewshot and self.REQUEST_KIND == "embed":
            if not getattr(self, "_warned_shots", False):
                log.warning("%s: retrieval compares sentence embeddings; --num_fewshot %d does not apply and is ignored",
                            self.config.task, num_fewshot)
                self._warned_shots = True
            num_fewshot = 0
        check_fewshot(self.spec.name, num_fewshot, self.config.task)
        self._prompt_options = {
            "num_fewshot": num_fewshot, "system_instruction": system_instruction,
            "apply_chat_template": bool(apply_chat_template), "fewshot_as_multiturn": bool(fewshot_as_multiturn),
        }
        return ""

    def set_fewshot_seed(self, seed: int | None = None) -> None:
        self._fewshot_seed = seed
        super().set_fewshot_seed(seed)

    def get_config(self, key: str) -> Any:
        """Our kinds may be answered by generation (prompted LLMs, mT5), so lm-eval's evaluator
        must hand ``--gen_kwargs`` to these tasks as it does to ``generate_until`` tasks."""
        if key == "output_type":
            return "generate_until"
        return super().get_config(key)

    def prompt_context(self) -> PromptContext:
        """A fresh :class:`PromptContext` for one request (the adapter writes into it)."""
        options = getattr(self, "_prompt_options", None) or {}
        return PromptContext.build(
            fewshot_seed=getattr(self, "_fewshot_seed", None),
            gen_kwargs=getattr(self.config, "generation_kwargs", None), data_dir=self.data_dir, **options,
        )

    # ----------------------------------------------------------------- requests
    @abc.abstractmethod
    def request_arguments(self, doc: dict) -> list[tuple]:
        """One argument tuple per request for this document."""

    def construct_requests(self, doc, ctx, **kwargs):
        """One ``Instance`` per argument tuple; ``classify``/``tag``/``extract_span`` requests
        carry a :class:`PromptContext` last (prompted LLMs need it, encoders ignore it)."""
        metadata = kwargs["metadata"]
        prompted = self.REQUEST_KIND != "embed"
        return [
            make_instance(self.REQUEST_KIND, doc, (*args, self.prompt_context()) if prompted else args, metadata, idx=i)
            for i, args in enumerate(self.request_arguments(doc))
        ]

    # ----------------------------------------------------------------- metrics
    @abc.abstractmethod
    def metric_aggregations(self) -> dict[str, Callable[[list], float]]:
        """metric name -> aggregation over every document's item (corpus-level)."""

    def aggregation(self) -> dict:
        return self._aggregation_list

    def higher_is_better(self) -> dict:
        return {name: name not in LOWER_IS_BETTER for name in self._aggregation_list}
