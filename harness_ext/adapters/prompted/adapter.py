"""Answer XTREME's request kinds with *any* lm-eval model, through its own
``loglikelihood`` / ``generate_until`` (decoder LLMs via ``--model hf``, ``vllm``,
``sglang``, ``local-completions``, ...).

The start-up hook (:mod:`harness_ext._autoload`) gives lm-eval's ``LM`` base class
``classify``/``tag``/``extract_span``/``embed`` methods that call :func:`answer`;
classes with their own (``XtremeLM``) keep theirs. Per kind:

* ``classify``: one ``loglikelihood`` request per label verbalisation (as lm-eval's
  own multiple choice), the highest sum log-probability wins (ties: the first label
  in task order); ``xtreme_mode=generate`` generates instead and parses the text
  back to a label (unreadable text is wrong, and counted as ``unparsable``);
* ``choose`` (XCOPA): as ``classify``, with each candidate's own text as its verbalisation;
* ``extract_span``: greedy ``generate_until``; the first non-empty line is the answer;
* ``tag``: greedy ``generate_until`` of ``word/TAG`` items (UD-POS) or
  ``TYPE: words $$ ...`` (PAN-X), read back onto the words with
  :mod:`harness_ext.adapters.formats.parse` (unreadable output: every word ``O``, counted);
* ``embed``: mean-pooled hidden states of one layer of a *local* transformers
  model (``--model hf``); other models cannot give hidden states, so retrieval
  stops with a one-line error.

Prompts come from :mod:`harness_ext.adapters.prompted.prompts` and the request's
:class:`harness_ext.tasks.prompting.PromptContext` (shots, system instruction, chat
template, ``--gen_kwargs``); the rendered prompt and the raw output are written back
into that context, so ``--log_samples`` shows them.

Options (``--model_args``, prefixed ``xtreme_`` and removed before the model class
sees them, see :func:`split_options`): ``xtreme_prompts=PRESET|FILE``,
``xtreme_prompt_<task>=INPUT``, ``xtreme_mode=score|generate``,
``xtreme_layer=K`` (embed; default the middle block ``n_blocks // 2``),
``xtreme_embed_batch_size=N``, ``xtreme_max_new_tokens=N``.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from harness_ext.adapters.prompted.prompts import PromptTemplate, demo_text, load_prompts, query_text
from harness_ext.adapters.formats.parse import (
    UNPARSABLE_LABEL,
    ParseInfo,
    T2TTags,
    T2TText,
    normalize,
    parse_tags,
    status_counts,
)
from harness_ext.tasks.prompting import PromptContext, demonstrations, prompt_context_of

log = logging.getLogger(__name__)

OPTION_PREFIX = "xtreme_"
OPTIONS = ("prompts", "mode", "layer", "embed_batch_size", "max_new_tokens")
MODES = ("score", "generate")
DEFAULT_UNTIL = ["\n\n"]
#: tagging budgets are rounded up to these (one per leaf: its longest sentence's), so runs of similar data ask alike
BUDGET_STEPS = (32, 64, 128, 256, 512, 1024)
_STRIP = " \t\"'`*.,:;!?()[]{}"


class PromptedError(RuntimeError):
    """An XTREME request this model cannot answer; the message says why and what to use."""


# --------------------------------------------------------------------------- options
def split_options(args: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--model_args`` -> (the model's own arguments, our ``xtreme_*`` options without the prefix)."""
    own = {k: v for k, v in args.items() if not str(k).startswith(OPTION_PREFIX)}
    ours = {str(k)[len(OPTION_PREFIX):]: v for k, v in args.items() if str(k).startswith(OPTION_PREFIX)}
    from harness_ext.run_guard import ALLOW_MISSING_ARG, check_keys

    valid = [OPTION_PREFIX + k for k in (*OPTIONS, ALLOW_MISSING_ARG)]
    check_keys([OPTION_PREFIX + k for k in ours if not k.startswith("prompt_")], valid + [OPTION_PREFIX + "prompt_<task>"],
               "--model_args (xtreme-harness options)")
    return own, ours


def set_options(lm: Any, **options: Any) -> Any:
    """Set prompted-adapter options on an ``LM`` built in Python (``--model_args`` does this for the CLI)."""
    _, ours = split_options({OPTION_PREFIX + k: v for k, v in options.items()})
    lm._xtreme_options = {**getattr(lm, "_xtreme_options", {}), **ours}
    lm.__dict__.pop("_xtreme_prompts", None)
    return lm


def options_of(lm: Any) -> dict[str, Any]:
    return dict(getattr(lm, "_xtreme_options", None) or {})


def _int_option(lm: Any, name: str) -> int | None:
    value = options_of(lm).get(name)
    if value in (None, "", "auto"):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--model_args {OPTION_PREFIX}{name}={value!r}: expected an integer") from None


def prompts_of(lm: Any) -> dict[str, PromptTemplate]:
    """The LM's prompt templates (memoised on the instance)."""
    cached = lm.__dict__.get("_xtreme_prompts") if hasattr(lm, "__dict__") else None
    if cached is None:
        options = options_of(lm)
        overrides = {k[len("prompt_"):]: v for k, v in options.items() if k.startswith("prompt_")}
        cached = load_prompts(options.get("prompts"), overrides)
        try:
            lm._xtreme_prompts = cached
        except AttributeError:
            pass
    return cached


def mode_of(lm: Any) -> str:
    mode = str(options_of(lm).get("mode", "score")).lower()
    if mode not in MODES:
        raise ValueError(f"--model_args {OPTION_PREFIX}mode={mode!r}: use one of {', '.join(MODES)}")
    return mode


# --------------------------------------------------------------------------- prompts
def _task_of(request: Any) -> tuple[str, str]:
    from harness_ext.adapters.text2text.adapter import task_of

    return task_of(request)


def _shots(task: str, context: Mapping[str, Any]) -> tuple[dict, ...]:
    k = int(context.get("num_fewshot", 0) or 0)
    if not k:
        return ()
    return demonstrations(task, k, int(context.get("fewshot_seed", 1234)), context.get("data_dir"))


def render(lm: Any, template: PromptTemplate, request: Any, lang: str, context: Mapping[str, Any]) -> str:
    """The prompt text for one request: instruction, English shots, the query; through the
    model's chat template when ``--apply_chat_template`` was given."""
    shots = [demo_text(template, doc) for doc in _shots(template.task, context)]
    query = query_text(template, tuple(request.args), lang)
    system = context.get("system_instruction")
    if context.get("apply_chat_template"):
        messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        if context.get("fewshot_as_multiturn") and shots:
            first = True
            for shot_input, shot_answer in shots:
                content = join_blocks([template.instruction, shot_input]) if first else shot_input
                messages += [{"role": "user", "content": content}, {"role": "assistant", "content": shot_answer}]
                first = False
            messages.append({"role": "user", "content": query})
        else:
            blocks = [template.instruction, *(f"{i} {a}" for i, a in shots), query]
            messages.append({"role": "user", "content": join_blocks(blocks)})
        return lm.apply_chat_template(messages, add_generation_prompt=True)
    blocks = ([system] if system else []) + [template.instruction, *(f"{i} {a}" for i, a in shots), query]
    return join_blocks(blocks)


def join_blocks(blocks: Sequence[str]) -> str:
    """Blocks separated by a blank line; empty blocks (an empty instruction) leave no blank line behind."""
    return "\n\n".join(b for b in blocks if b)


def gen_kwargs_for(lm: Any, context: Mapping[str, Any], budget: int | None,
                   base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Greedy decoding to ``budget`` new tokens, stopping at a blank line (or the template's /
    stock task's own ``base`` settings); ``xtreme_max_new_tokens`` and ``--gen_kwargs`` win."""
    override = _int_option(lm, "max_new_tokens")
    kwargs: dict[str, Any] = dict(base) if base is not None else {"until": list(DEFAULT_UNTIL), "do_sample": False}
    if override or budget:
        kwargs["max_gen_toks"] = override or budget
    kwargs.update(context.get("gen_kwargs") or {})
    return kwargs


def template_gen_kwargs(template: PromptTemplate) -> dict[str, Any]:
    return {"until": list(template.until or DEFAULT_UNTIL), "do_sample": False}


def _instance(kind: str, request: Any, arguments: tuple, idx: int = 0):
    from lm_eval.api.instance import Instance

    return Instance(request_type=kind, doc=request.doc, arguments=arguments, idx=idx,  # type: ignore[arg-type]
                    metadata=(request.task_name, request.doc_id, 1))


def _context(request: Any) -> PromptContext:
    context = prompt_context_of(request)
    return context if context is not None else PromptContext.build()


def first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


# --------------------------------------------------------------------------- per kind
def _generate(lm: Any, requests: Sequence[Any], prompts: Sequence[str], budgets: Sequence[int | None],
              base: Mapping[str, Any]) -> list[str]:
    instances = [
        _instance("generate_until", r, (p, gen_kwargs_for(lm, _context(r), b, base)))
        for r, p, b in zip(requests, prompts, budgets)
    ]
    outputs = lm.generate_until(instances)
    for request, instance, output in zip(requests, instances, outputs):
        context = _context(request)
        context["prompt"], context["generation"], context["output"] = instance.args[0], dict(instance.args[1]), output
    return [str(o) for o in outputs]


def parse_choice(text: str, targets: Mapping[str, str]) -> T2TText:
    """Generated text -> the label whose verbalisation it is (first line, case and
    surrounding punctuation ignored; a verbalisation followed by more words also counts)."""
    line = first_line(text)
    by_text = {normalize(t): label for label, t in targets.items()}
    cleaned = normalize(line.strip(_STRIP))
    if cleaned in by_text:
        return T2TText(by_text[cleaned], ParseInfo("ok", text))
    head = cleaned.split(" ")[0].strip(_STRIP) if cleaned else ""
    if head in by_text:
        return T2TText(by_text[head], ParseInfo("partial", text, ("words after the answer",)))
    known = ", ".join(repr(t) for t in targets.values())
    return T2TText(UNPARSABLE_LABEL + line, ParseInfo("unparsable", text, (f"not one of {known}",)))


def _stock_of(template: PromptTemplate, lang: str):
    from harness_ext.adapters.prompted.stock import stock_prompt

    return stock_prompt(template.task, lang) if template.stock else None


def _stock_prompts(lm: Any, stock: Any, template: PromptTemplate, requests: Sequence[Any]) -> tuple[list[str], list[dict]]:
    """(prompts, lm-eval documents) for a stock lm-eval task: its own text after our English shots,
    laid out as lm-eval lays out a context (:meth:`StockPrompt.prompt`)."""
    docs = stock.docs([r.doc for r in requests])
    prompts = []
    for request, doc in zip(requests, docs):
        context = _context(request)
        chat = lm.apply_chat_template if context.get("apply_chat_template") else None
        shots = [_stock_shot(stock, template, d) for d in _shots(template.task, context)]
        prompts.append(stock.prompt(doc, shots, context.get("system_instruction"), chat,
                                    bool(context.get("fewshot_as_multiturn"))))
    return prompts, docs


def _stock_shot(stock: Any, template: PromptTemplate, doc: Mapping[str, Any]) -> tuple[dict, str]:
    """One English demonstration as lm-eval's document and its answer (lm-eval's ``doc_to_target``:
    the gold choice; for QA the first answer)."""
    (shot,) = stock.docs([doc])
    if template.kind == "classify":
        return shot, stock.choices(shot)[list(template.targets).index(doc["label"])]
    answers = doc["answers"]["text"]
    return shot, answers[0] if answers else ""


def _stock_rank(lm: Any, stock: Any, template: PromptTemplate, requests: Sequence[Any], labels: Sequence[str],
                order: Sequence[str]) -> list:
    """Preset lm-eval's multiple choice (XNLI, PAWS-X, XCOPA): lm-eval's context, then each of its
    choices for our ``labels`` (``order``: our labels in lm-eval's choice order) after the target
    delimiter, or right after a chat template's generation prompt."""
    if mode_of(lm) == "generate":
        raise PromptedError("xtreme_mode=generate needs a prompt with answer verbalisations; lm-eval's "
                            f"{stock.name} scores whole continuations: use xtreme_mode=score with preset lm-eval")
    prompts, docs = _stock_prompts(lm, stock, template, requests)
    continuations = [[stock.delimiter(bool(_context(r).get("apply_chat_template"))) + stock.choices(doc)[order.index(label)]
                      for label in labels] for r, doc in zip(requests, docs)]
    return _rank(lm, requests, prompts, labels, continuations)


def _rank(lm: Any, requests: Sequence[Any], prompts: Sequence[str], labels: Sequence[str],
          continuations: Sequence[Sequence[str]]) -> list:
    """One ``loglikelihood`` request per label (``continuations[n][j]``, label ``j``'s text after
    prompt ``n``); the highest sum log-probability wins (ties: the first label)."""
    instances = [_instance("loglikelihood", request, (prompt, continuation), j)
                 for request, prompt, row in zip(requests, prompts, continuations)
                 for j, continuation in enumerate(row)]
    scores = lm.loglikelihood(instances)
    answers = []
    for n, (request, prompt) in enumerate(zip(requests, prompts)):
        row = [float(s[0]) for s in scores[n * len(labels): (n + 1) * len(labels)]]
        best = max(range(len(labels)), key=lambda k: (row[k], -k))
        context = _context(request)
        context["prompt"] = prompt
        context["continuations"] = list(continuations[n])
        context["loglikelihoods"] = row
        answers.append(T2TText(labels[best], ParseInfo("ok", continuations[n][best].strip())))
    return answers


def _delimited(requests: Sequence[Any], labels: Sequence[str], texts: Sequence[Mapping[str, str]]) -> list[list[str]]:
    """lm-eval's multiple-choice convention: a space before the answer, none after a chat template."""
    return [[("" if _context(r).get("apply_chat_template") else " ") + t[label] for label in labels]
            for r, t in zip(requests, texts)]


def classify(lm: Any, template: PromptTemplate, requests: Sequence[Any], lang: str) -> list:
    labels = [str(label) for label in requests[0].args[2]]
    targets = {label: template.targets[label] for label in labels}
    stock = _stock_of(template, lang)
    if stock is not None:  # lm-eval's choices are in the task table's label order
        return _stock_rank(lm, stock, template, requests, labels, list(template.targets))
    prompts = [render(lm, template, r, lang, _context(r)) for r in requests]
    if mode_of(lm) == "generate":
        outputs = _generate(lm, requests, prompts, [template.budget() or 16] * len(requests), template_gen_kwargs(template))
        return [parse_choice(o, targets) for o in outputs]
    return _rank(lm, requests, prompts, labels, _delimited(requests, labels, [targets] * len(requests)))


def choose(lm: Any, template: PromptTemplate, requests: Sequence[Any], lang: str) -> list:
    """XCOPA: each candidate's own text is scored (or, ``xtreme_mode=generate``, read back)
    after the prompt; the answer is the candidate's label. Preset lm-eval: lm-eval's
    ``xcopa_<lang>`` (the premise and a connector in the language, the candidates lower-cased)."""
    labels = [str(label) for label in requests[0].args[2]]
    stock = _stock_of(template, lang)
    if stock is not None:  # lm-eval's choices are [choice1, choice2], our candidates' order
        return _stock_rank(lm, stock, template, requests, labels, labels)
    candidates = [dict(zip(labels, map(str, r.args[1]))) for r in requests]
    prompts = [render(lm, template, r, lang, _context(r)) for r in requests]
    if mode_of(lm) == "generate":
        outputs = _generate(lm, requests, prompts, [template.budget() or 16] * len(requests), template_gen_kwargs(template))
        return [parse_choice(o, texts) for o, texts in zip(outputs, candidates)]
    return _rank(lm, requests, prompts, labels, _delimited(requests, labels, candidates))


def extract_span(lm: Any, template: PromptTemplate, requests: Sequence[Any], lang: str) -> list:
    stock = _stock_of(template, lang)
    if stock is not None:  # lm-eval's own settings: its stop sequences, its default token budget
        prompts, _ = _stock_prompts(lm, stock, template, requests)
        outputs = _generate(lm, requests, prompts, [template.max_new_tokens] * len(requests), stock.generation_kwargs)
    else:
        prompts = [render(lm, template, r, lang, _context(r)) for r in requests]
        outputs = _generate(lm, requests, prompts, [template.budget() or 64] * len(requests), template_gen_kwargs(template))
    return [T2TText(first_line(o), ParseInfo("ok", o)) for o in outputs]


def _tag_budget(lm: Any, words: Sequence[str], cap: int) -> int:
    """Output repeats the sentence plus a tag per word: its tokens + 4 per word + 8, rounded up."""
    sentence = " ".join(words)
    try:
        tokens = len(lm.tok_encode(sentence))
    except Exception:  # some API models have no tokenizer here
        tokens = 0
    # at least a token per word (an API model without a tokenizer "encodes" the whole string as one item)
    need = max(tokens, len(words)) + 4 * len(words) + 8
    step = next((s for s in BUDGET_STEPS if s >= need), BUDGET_STEPS[-1])
    return max(8, min(step, cap))


def tag(lm: Any, template: PromptTemplate, requests: Sequence[Any], lang: str) -> list:
    prompts = [render(lm, template, r, lang, _context(r)) for r in requests]
    max_length = getattr(lm, "max_length", None)
    cap = int(max_length) // 2 if isinstance(max_length, int) and max_length > 0 else BUDGET_STEPS[-1]
    # one budget for the whole leaf (its longest sentence's): lm-eval batches only requests with equal
    # generation settings, and per-sentence budgets split a leaf into several small batch groups
    budget = template.budget() or max(_tag_budget(lm, r.args[1], cap) for r in requests)
    budgets = [budget] * len(requests)
    outputs = _generate(lm, requests, prompts, budgets, template_gen_kwargs(template))
    answers = []
    for request, output in zip(requests, outputs):
        line = first_line(output)
        if template.empty and normalize(line.strip(_STRIP)) == normalize(template.empty):
            line = ""
        parsed = parse_tags(line, list(request.args[1]), tuple(request.args[2]), template.format, template.separator)
        answers.append(T2TTags(list(parsed), ParseInfo(parsed.parse.status, output, parsed.parse.problems)))
    return answers


# --------------------------------------------------------------------------- embed
def local_model(lm: Any) -> tuple[Any, Any]:
    """(transformers model, tokenizer) of a model whose weights are in this process, else a one-line error."""
    model = getattr(lm, "model", None)
    local = model is not None and getattr(model, "config", None) is not None and callable(model) and hasattr(model, "parameters")
    # the tokenizer only after the model: some LMs (lm-eval's dummy) fetch one from the hub on first access
    tokenizer = getattr(lm, "tokenizer", None) if local else None
    if tokenizer is None:
        raise PromptedError(
            f"retrieval (embed: Tatoeba, BUCC) needs hidden states from local model weights, which "
            f"{type(lm).__name__} does not expose; run these tasks with --model hf or --model xtreme"
        )
    return model, tokenizer


def default_layer(blocks: int) -> int:
    """The middle transformer block (``n_blocks // 2``): for decoder LLMs the last layers
    specialise in next-token prediction, and middle layers give the better sentence vectors."""
    return blocks // 2


def embed_texts(lm: Any, texts: Sequence[str], cap: int | None = None) -> list:
    """Mean of the chosen layer's states over each text's tokens, the first position left out
    whether or not it is a BOS: a decoder's first position is an attention sink whose state
    dwarfs the others (SmolLM2, which adds no BOS: norm ~24,000 against ~190) and carries
    no content (measured: ``bench/measure_smollm2.py first-position``, docs/llm.md)."""
    import numpy as np
    import torch

    from harness_ext.adapters.runtime.batching import length_sorted_batches, split_on_oom
    from harness_ext.adapters.encoder.embed import hidden_state_index, num_blocks, position_limit

    model, tokenizer = local_model(lm)
    blocks = num_blocks(model)
    layer = _int_option(lm, "layer")
    index = hidden_state_index(default_layer(blocks) if layer is None else layer, blocks)
    limits = [x for x in (position_limit(model), getattr(tokenizer, "model_max_length", None), 512) if x]
    max_length = int(min(limits + ([cap] if cap else [])))
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
    try:
        device = model.get_input_embeddings().weight.device
    except AttributeError:
        device = torch.device(getattr(lm, "device", None) or "cpu")
    batch_size = _int_option(lm, "embed_batch_size") or 32
    vectors: list = [None] * len(texts)

    def run(batch: list[int]) -> list:
        width = max(len(ids[i]) for i in batch)
        input_ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):  # right padding: earlier positions never see the pads
            input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
            mask[row, : len(ids[i])] = 1
        pool = mask.clone()
        for row, i in enumerate(batch):
            if len(ids[i]) > 1:  # a one-token text keeps its only state
                pool[row, 0] = 0
        with torch.inference_mode():
            out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
        hidden = out.hidden_states[index].float()
        weights = pool.to(hidden.device).unsqueeze(-1).float()
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return list(pooled.cpu().numpy().astype(np.float32))

    for batch in length_sorted_batches([len(x) for x in ids], batch_size):
        for i, vector in zip(batch, split_on_oom(run, list(batch), lambda a, b: a + b)):
            vectors[i] = vector
    return vectors


# --------------------------------------------------------------------------- entry point
ANSWER = {"classify": classify, "tag": tag, "extract_span": extract_span, "choose": choose}


def answer(kind: str, lm: Any, requests: list) -> list:
    """Responses for ``requests`` (all of one ``kind``), in order, as the XTREME task classes expect."""
    if not requests:
        return []
    if kind == "embed":
        from harness_ext.requests import by_cap, embed_response

        vectors: list = [None] * len(requests)
        for cap, positions in by_cap(requests).items():
            for i, vector in zip(positions, embed_texts(lm, [str(requests[i].args[0]) for i in positions], cap)):
                vectors[i] = embed_response(vector)
        return vectors
    if kind not in ANSWER:
        raise PromptedError(f"unknown XTREME request kind {kind!r}")
    templates = prompts_of(lm)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault(_task_of(request), []).append(i)
    responses: list = [None] * len(requests)
    for (task, lang), indices in groups.items():
        batch = [requests[i] for i in indices]
        answers = ANSWER[kind](lm, templates[task], batch, lang)
        counts = status_counts(answers)
        if counts["unparsable"]:
            log.warning("%s-%s: %d of %d outputs unparsable (scored as wrong)", task, lang, counts["unparsable"], len(answers))
        for i, response in zip(indices, answers):
            responses[i] = response
    return responses


# methods the start-up hook adds to lm-eval's LM base class
def lm_classify(self, requests):
    return answer("classify", self, requests)


def lm_tag(self, requests):
    return answer("tag", self, requests)


def lm_extract_span(self, requests):
    return answer("extract_span", self, requests)


def lm_embed(self, requests):
    return answer("embed", self, requests)


def lm_choose(self, requests):
    return answer("choose", self, requests)


METHODS = {"classify": lm_classify, "tag": lm_tag, "extract_span": lm_extract_span, "embed": lm_embed,
           "choose": lm_choose}
