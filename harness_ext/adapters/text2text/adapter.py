"""Answer every XTREME request kind with a seq2seq (mT5-style) checkpoint.

``XtremeLM`` calls :func:`answer` for a checkpoint loaded with the ``seq2seq`` head.
Requests become text through the checkpoint's templates
(:mod:`harness_ext.adapters.text2text.templates`), and answers come back as follows:

* ``classify``: by default *rank classification*: the sum log-likelihood of each
  label's target tokens (end-of-sequence included, so ``paraphrase`` is not a
  prefix win) given the input; the encoder runs once per input and the decoder
  scores all labels in one batch. ``t2t_mode=generate`` generates instead and
  parses the text back to a label (unparsable text counts as wrong, and counted);
* ``choose`` (XCOPA): as ``classify``, over the candidates' labels (``choice1`` / ``choice2``
  by default, see the ``xcopa`` template);
* ``extract_span``: greedy generation of the answer text (``max_new_tokens`` per
  task), mapped back onto the context when the checkpoint saw punctuation-padded
  input (mT5's QA preprocessing); the task scores it with SQuAD/MLQA EM/F1;
* ``tag``: greedy generation of the tagged sentence, parsed back into one tag per
  input word (:mod:`harness_ext.adapters.formats.parse`); the task scores span F1;
* ``embed``: mean-pooled encoder states, through :mod:`harness_ext.adapters.encoder.embed`
  (which takes the encoder of an encoder-decoder model).

Large models: inputs are sorted by length and padded per batch
(:mod:`harness_ext.adapters.runtime.batching`), a CUDA out-of-memory batch is split in two,
and inputs go to the device of the input embeddings, so a model spread over GPUs
with ``device_map`` (loaded by the backends) works unchanged. Greedy decoding is
per row, and each request's own token budget is applied after generation, so an
answer does not depend on which requests share its batch.

``--model_args`` options read here (``settings.extra``): ``templates=PRESET|FILE``,
``template_<task>=INPUT_TEMPLATE``, ``t2t_mode=score|generate``,
``max_new_tokens=N`` (all tasks of the run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from harness_ext.adapters.runtime.autobatch import BatchPlan
from harness_ext.adapters.runtime.pipeline import overlap_enabled, run_pipelined
from harness_ext.adapters.runtime.settings import AdapterSettings
from harness_ext.adapters.formats.parse import (
    ParseInfo,
    T2TText,
    pad_punctuation,
    parse_answer,
    parse_label,
    parse_tags,
    status_counts,
)
from harness_ext.adapters.text2text.templates import TaskTemplate, TemplateError, load_templates
from xtreme_tasks.table import TABLE as TASKS  # XTREME's tasks and XTREME-R's (XCOPA)

log = logging.getLogger(__name__)

MODES = ("score", "generate")
#: generation budget cap when it is derived from the input (tagging)
MAX_AUTO_NEW_TOKENS = 1024
_T5_TYPES = {"t5", "mt5", "umt5", "byt5"}


# --------------------------------------------------------------------------- settings
def _extra(settings: AdapterSettings) -> dict[str, Any]:
    return dict(getattr(settings, "extra", None) or {})


def mode_of(settings: AdapterSettings) -> str:
    mode = str(_extra(settings).get("t2t_mode", "score")).lower()
    if mode not in MODES:
        raise ValueError(f"--model_args t2t_mode={mode!r}: use one of {', '.join(MODES)}")
    return mode


def max_new_tokens_override(settings: AdapterSettings) -> int | None:
    value = _extra(settings).get("max_new_tokens")
    if value in (None, "", "auto"):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--model_args max_new_tokens={value!r}: expected a positive integer") from None
    if number < 1:
        raise ValueError(f"--model_args max_new_tokens={value!r}: expected a positive integer")
    return number


def templates_for(loaded: Any, settings: AdapterSettings) -> dict[str, TaskTemplate]:
    """The checkpoint's templates: ``settings.templates`` (from its checkpoints.yaml
    entry) or ``templates=`` in ``--model_args``, then ``template_<task>=`` overrides."""
    extra = _extra(settings)
    spec = getattr(settings, "templates", None) or extra.get("templates")
    overrides = {k[len("template_"):]: v for k, v in extra.items() if k.startswith("template_")}
    key = "_t2t_templates:" + repr((spec, sorted(overrides.items())))
    memo = getattr(loaded, "extra", None)
    if isinstance(memo, dict) and key in memo:
        return memo[key]
    templates = load_templates(spec, overrides)
    if isinstance(memo, dict):
        memo[key] = templates
    return templates


# --------------------------------------------------------------------------- which task
def task_of(request: Any) -> tuple[str, str]:
    """``(xtreme task, language)`` of a request, from its lm-eval task name, else from
    its label set / tag set (requests built by hand in the API or tests)."""
    from harness_ext.tasks.base import parse_leaf_name

    name = getattr(request, "task_name", None)
    if name:
        try:
            return parse_leaf_name(name)
        except ValueError:
            pass
    kind, args = request.request_type, request.args
    if kind == "classify":
        for task in ("xnli", "pawsx"):
            if tuple(args[2]) == TASKS[task].labels:
                return task, ""
    if kind == "tag":
        for task in ("panx", "udpos"):
            if tuple(args[2]) == TASKS[task].labels:
                return task, ""
    if kind == "extract_span":
        return "xquad", ""
    raise ValueError(
        f"cannot tell which XTREME task a {kind} request of task {name!r} belongs to; "
        "expected an lm-eval task named xtreme-<task>-<lang>"
    )


# --------------------------------------------------------------------------- the model runner
@dataclass(frozen=True)
class Generation:
    """One greedy generation: its text and whether it stopped at its token budget."""

    text: str
    truncated: bool


def input_device(model: Any, fallback: str) -> Any:
    """Where input ids must go: the input embeddings' device (the first GPU of a
    ``device_map`` model), else the configured device."""
    try:
        return model.get_input_embeddings().weight.device
    except AttributeError:
        import torch

        return torch.device(fallback)


def _plan_for(loaded: Any, device: str, batch_size: int) -> BatchPlan:
    """The batch plan of one loaded model, kept in ``loaded.extra`` (a runner is built per
    request list), so a size halved by out-of-memory is remembered for later languages."""
    memo = getattr(loaded, "extra", None)
    if not isinstance(memo, dict):
        return BatchPlan(batch_size=batch_size)
    return memo.setdefault(("_t2t_plan", device, batch_size), BatchPlan(batch_size=batch_size))


class Seq2SeqRunner:
    """Batched greedy generation and target scoring with one loaded seq2seq model."""

    def __init__(self, loaded: Any, settings: AdapterSettings) -> None:
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.settings = settings
        self.device = input_device(self.model, settings.device)
        on_gpu = str(self.device).startswith("cuda")
        self.batch_size = settings.batch_size or (64 if on_gpu else 16)
        self.plan = _plan_for(loaded, str(self.device), int(self.batch_size))
        config = getattr(self.model, "config", None)
        self.pad_id = _first_int(getattr(self.tokenizer, "pad_token_id", None), getattr(config, "pad_token_id", None), 0)
        self.eos_id = _first_int(getattr(self.tokenizer, "eos_token_id", None), getattr(config, "eos_token_id", None), 1)
        self.start_id = _first_int(getattr(config, "decoder_start_token_id", None), self.pad_id)
        if settings.dtype == "float16" and getattr(config, "model_type", "") in _T5_TYPES:
            log.warning("T5-family models overflow in float16 (NaN outputs); use dtype=bfloat16 or float32")

    # ------------------------------------------------------------ tokens
    def encode(self, texts: Sequence[str], max_tokens: Sequence[int]) -> tuple[list[list[int]], int]:
        """Token ids per text (end-of-sequence kept when cut); also how many were cut."""
        ids = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        cut = 0
        out: list[list[int]] = []
        for row, limit in zip(ids, max_tokens):
            row = list(row)
            if len(row) > limit:
                cut += 1
                row = row[: limit - 1] + [self.eos_id]
            out.append(row)
        return out, cut

    def _pad_host(self, rows: Sequence[Sequence[int]], value: int):
        """Padded ids and mask as CPU tensors (pinned when bound for CUDA): the prepare stage."""
        from harness_ext.adapters.runtime.batching import host_tensors, pad_columns

        arrays = pad_columns({"input_ids": rows}, range(len(rows)), {"input_ids": value})
        tensors = host_tensors(arrays, self.device)
        return tensors["input_ids"], tensors["attention_mask"]

    def _pad(self, rows: Sequence[Sequence[int]], value: int):
        ids, mask = self._pad_host(rows, value)
        return self._move(ids), self._move(mask)

    def _move(self, tensor):
        return tensor.to(self.device, non_blocking=str(self.device).startswith("cuda"))

    # ------------------------------------------------------------ batching
    def _batched(self, items: Sequence[Any], lengths: Sequence[int], forward: Callable[[Any], Any], desc: str,
                 prepare: Callable[[list], Any] | None = None, finish: Callable[[list, Any], list] | None = None) -> list:
        """Length-sorted batches through the pipeline (prepare ahead, finish behind); an out-of-memory
        batch halves :attr:`plan`, which lives with the loaded model."""
        return run_pipelined(  # type: ignore[return-value]
            list(items), lengths, self.plan, forward, prepare=prepare, finish=finish,
            overlap=overlap_enabled(self.settings), desc=desc, progress=len(items) >= 4 * self.batch_size,
        )

    # ------------------------------------------------------------ generation
    def generate(self, inputs: Sequence[Sequence[int]], budgets: Sequence[int]) -> list[Generation]:
        """Greedy generation per input, each cut to its own budget of new tokens."""
        items = list(zip(inputs, budgets))
        return self._batched(items, [len(ids) for ids in inputs], self._generate_device, "t2t generate",
                             prepare=self._generate_prepare, finish=self._generate_finish)

    def _generate_batch(self, batch: list[tuple[Sequence[int], int]]) -> list[Generation]:
        """One batch, all stages in series."""
        return self._generate_finish(batch, self._generate_device(self._generate_prepare(batch)))

    def _generate_prepare(self, batch: list[tuple[Sequence[int], int]]) -> tuple[Any, Any, int]:
        ids, mask = self._pad_host([row for row, _ in batch], self.pad_id)
        return ids, mask, max(budget for _, budget in batch)

    def _generate_device(self, prepared: tuple[Any, Any, int]) -> Any:
        ids, mask, longest = prepared
        out = self.model.generate(
            input_ids=self._move(ids), attention_mask=self._move(mask), max_new_tokens=longest, do_sample=False,
            num_beams=1, decoder_start_token_id=self.start_id, eos_token_id=self.eos_id, pad_token_id=self.pad_id,
        )
        return out.sequences if hasattr(out, "sequences") else out

    def _generate_finish(self, batch: list[tuple[Sequence[int], int]], sequences: Any) -> list[Generation]:
        results = []
        for row, (_, budget) in zip(sequences.tolist(), batch):
            tokens = row[1:]  # an encoder-decoder generation starts with the decoder start token
            tokens = tokens[:budget]
            if self.eos_id in tokens:
                tokens, truncated = tokens[: tokens.index(self.eos_id)], False
            else:
                truncated = True
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            results.append(Generation(text, truncated))
        return results

    # ------------------------------------------------------------ scoring
    def score(self, inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]) -> list[list[float]]:
        """Sum log-likelihood of every target (token ids, end-of-sequence included) given each input."""
        target_ids, target_mask = self._pad(targets, self.pad_id)
        forward = lambda prepared: self._score_device(prepared, target_ids, target_mask)  # noqa: E731
        return self._batched(list(inputs), [len(ids) for ids in inputs], forward, "t2t score",
                             prepare=lambda batch: self._pad_host(batch, self.pad_id),
                             finish=lambda batch, totals: totals.cpu().tolist())

    def _score_batch(self, batch: list[Sequence[int]], targets: Sequence[Sequence[int]]) -> list[list[float]]:
        """One batch, all stages in series."""
        import torch

        target_ids, target_mask = self._pad(targets, self.pad_id)
        with torch.inference_mode():
            return self._score_device(self._pad_host(batch, self.pad_id), target_ids, target_mask).cpu().tolist()

    def _score_device(self, prepared: tuple[Any, Any], target_ids: Any, target_mask: Any) -> Any:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        ids, mask = self._move(prepared[0]), self._move(prepared[1])
        n_targets, n_rows = target_ids.shape[0], ids.shape[0]
        decoder_in = torch.full_like(target_ids, self.pad_id)
        decoder_in[:, 0] = self.start_id
        decoder_in[:, 1:] = target_ids[:, :-1]
        encoded = self.model.get_encoder()(input_ids=ids, attention_mask=mask, return_dict=True)
        hidden = encoded.last_hidden_state.repeat_interleave(n_targets, dim=0)
        logits = self.model(
            encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
            attention_mask=mask.repeat_interleave(n_targets, dim=0),
            decoder_input_ids=decoder_in.repeat(n_rows, 1),
            use_cache=False,
            return_dict=True,
        ).logits
        gold = target_ids.repeat(n_rows, 1).to(logits.device)
        keep = target_mask.repeat(n_rows, 1).to(logits.device).float()
        logprobs = logits.float().log_softmax(-1).gather(-1, gold.unsqueeze(-1)).squeeze(-1)
        return (logprobs * keep).sum(-1).view(n_rows, n_targets)


def _first_int(*values: Any) -> int:
    for value in values:
        if isinstance(value, int):
            return value
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], int):
            return value[0]
    raise ValueError("no integer among the candidates")


# --------------------------------------------------------------------------- per kind
def model_inputs(template: TaskTemplate, requests: list, lang: str) -> list[str]:
    """The input text of each ``classify`` or ``choose`` request."""
    if template.kind == "choose":
        from harness_ext.adapters.formats.reader import choose_fields

        return [template.render(**choose_fields(r.args[0], r.args[1]), lang=lang) for r in requests]
    return [template.render(text_a=r.args[0], text_b=r.args[1] or "", lang=lang) for r in requests]


def _classify(runner: Seq2SeqRunner, template: TaskTemplate, requests: list, lang: str, mode: str,
              budget_override: int | None) -> list:
    """``classify`` and ``choose``: rank the labels' target texts (or generate and parse one)."""
    labels = list(TASKS[template.task].labels)
    targets = {label: template.targets[label] for label in labels}
    texts = model_inputs(template, requests, lang)
    inputs, cut = runner.encode(texts, [template.max_input_tokens] * len(texts))
    _warn_cut(template.task, cut, len(texts), template.max_input_tokens)
    if mode == "generate":
        budget = budget_override or template.budget() or 16
        generations = runner.generate(inputs, [budget] * len(inputs))
        return [_with_truncation(parse_label(g.text, targets), g.truncated) for g in generations]
    target_ids = [list(runner.tokenizer(targets[label], add_special_tokens=True)["input_ids"]) for label in labels]
    scores = runner.score(inputs, target_ids)
    answers = []
    for row in scores:
        best = max(range(len(labels)), key=lambda k: (row[k], -k))  # ties: first label in task order
        answers.append(T2TText(labels[best], ParseInfo("ok", targets[labels[best]])))
    return answers


def _tag(runner: Seq2SeqRunner, template: TaskTemplate, requests: list, lang: str, budget_override: int | None) -> list:
    texts = [template.render(text=" ".join(r.args[1]), lang=lang) for r in requests]
    inputs, cut = runner.encode(texts, [template.max_input_tokens] * len(texts))
    _warn_cut(template.task, cut, len(texts), template.max_input_tokens)
    fixed = budget_override or template.budget()
    budgets = [fixed or min(MAX_AUTO_NEW_TOKENS, len(ids) + 4 * len(r.args[1]) + 8) for ids, r in zip(inputs, requests)]
    generations = runner.generate(inputs, budgets)
    return [
        _with_truncation(parse_tags(g.text, list(r.args[1]), tuple(r.args[2]), template.format, template.separator), g.truncated)
        for g, r in zip(generations, requests)
    ]


def qa_input(template: TaskTemplate, question: str, context: str, lang: str) -> str:
    """Model input for one question; padded and whitespace-collapsed like mT5's
    ``preprocessors.xquad`` when the template says so."""
    if template.pad_punctuation:
        question, context = pad_punctuation(question).text.strip(), pad_punctuation(context).text.strip()
        return " ".join(template.render(question=question, context=context, lang=lang).split())
    return template.render(question=question, context=context, lang=lang)


def _extract_span(runner: Seq2SeqRunner, template: TaskTemplate, requests: list, lang: str,
                  budget_override: int | None) -> list:
    texts = [qa_input(template, r.args[0], r.args[1], lang) for r in requests]
    inputs, cut = runner.encode(texts, [template.max_input_tokens] * len(texts))
    _warn_cut(template.task, cut, len(texts), template.max_input_tokens)
    budget = budget_override or template.budget() or 64
    generations = runner.generate(inputs, [budget] * len(inputs))
    return [
        _with_truncation(parse_answer(g.text, r.args[1], padded=template.pad_punctuation), g.truncated)
        for g, r in zip(generations, requests)
    ]


def _with_truncation(answer: Any, truncated: bool) -> Any:
    answer.parse = answer.parse.with_truncation(truncated)
    return answer


def _warn_cut(task: str, cut: int, total: int, limit: int) -> None:
    if cut:
        log.warning("%s: %d of %d inputs cut to max_input_tokens=%d (set it in the templates)", task, cut, total, limit)


# --------------------------------------------------------------------------- entry point
def answer(kind: str, loaded: Any, requests: list, settings: AdapterSettings) -> list:
    """Responses for ``requests`` (all of one ``kind``), in order, as the task classes expect:
    a label name, a list of one tag per word, an answer string, or a vector."""
    if kind == "embed":
        from harness_ext.adapters.encoder import embed

        return embed.answer(loaded, requests, settings)
    if kind not in ("classify", "tag", "extract_span", "choose"):
        raise ValueError(f"text2text answers classify, tag, extract_span, choose and embed, not {kind!r}")
    if not requests:
        return []
    try:
        templates = templates_for(loaded, settings)
    except TemplateError as exc:
        raise TemplateError(f"{getattr(loaded, 'source', 'checkpoint')}: {exc}") from None
    mode = mode_of(settings)
    budget_override = max_new_tokens_override(settings)
    runner = Seq2SeqRunner(loaded, settings)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(task_of(request), []).append(i)
    responses: list = [None] * len(requests)
    for (task, lang), indices in groups.items():
        template = templates[task]
        batch = [requests[i] for i in indices]
        if kind in ("classify", "choose"):
            answers = _classify(runner, template, batch, lang, mode, budget_override)
        elif kind == "tag":
            answers = _tag(runner, template, batch, lang, budget_override)
        else:
            answers = _extract_span(runner, template, batch, lang, budget_override)
        _log_counts(task, lang, answers)
        for i, response in zip(indices, answers):
            responses[i] = response
    return responses


def _log_counts(task: str, lang: str, answers: list) -> None:
    counts = status_counts(answers)
    where = f"{task}-{lang}" if lang else task
    message = "%s: %d outputs: %d ok, %d partial, %d unparsable, %d cut at max_new_tokens"
    args = (where, len(answers), counts["ok"], counts["partial"], counts["unparsable"], counts["truncated"])
    (log.warning if counts["unparsable"] or counts["truncated"] else log.info)(message, *args)
