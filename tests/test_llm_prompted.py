"""Decoder LLMs on XTREME tasks through lm-eval's own models (``--model hf``, ``dummy``).

Two real ``lm_eval`` command-line runs with tiny random decoders written offline:

* GPT-2-style, zero-shot, on XNLI and PAWS-X files written here, real XQuAD (en, zh),
  real UD-POS (English-EWT) and real Tatoeba (de);
* Llama-style, 2 English shots from the validation split, ``--apply_chat_template``
  ``--fewshot_as_multiturn --system_instruction --gen_kwargs``, classification by
  generation (``xtreme_mode=generate``), on XNLI (de), PAWS-X (de) and UD-POS (en).

Checked against independent recomputation with transformers: every classification
log-likelihood, every greedy generation (``model.generate`` on the logged prompt),
every Tatoeba vector (mean of the middle layer); and the scores against the metric
functions over the logged predictions. lm-eval's ``dummy`` model and its
``local-completions`` API model (against a local OpenAI-style stub server) show the
API path (only ``loglikelihood``/``generate_until``) and the one-line retrieval error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.tiny_decoders import tiny_decoder  # noqa: E402

from harness_ext.adapters.prompted import adapter as prompted  # noqa: E402
from harness_ext.adapters.prompted.prompts import load_prompts  # noqa: E402
from harness_ext.adapters.formats.parse import parse_tags  # noqa: E402
from harness_ext.adapters.text2text.templates import TemplateError  # noqa: E402
from harness_ext.metrics import squad  # noqa: E402
from harness_ext.metrics.tagging import span_prf  # noqa: E402
from harness_ext.tasks.prompting import FewshotError, PromptContext, check_fewshot, demonstrations  # noqa: E402
from xtreme_tasks.data import udpos  # noqa: E402
from xtreme_tasks.table import TASKS  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LIMIT = 3
XNLI = {
    "en": [("John lives in Paris", "John is in a city", "entailment"),
           ("the cat sat", "a cat sat on the mat", "neutral"),
           ("Mary works at Google", "Mary is a cat", "contradiction")],
    "de": [("Johann wohnt in Paris", "Johann ist in einer Stadt", "entailment"),
           ("die Katze sitzt", "eine Katze sitzt auf der Matte", "neutral"),
           ("Maria arbeitet bei Google", "Maria ist eine Katze", "contradiction")],
}
XNLI_DEV_EN = [("A man plays guitar", "A man makes music", "entailment"),
               ("Two dogs run", "The dogs are asleep", "contradiction"),
               ("A woman reads", "She reads a novel", "neutral"),
               ("Kids play outside", "Children are outdoors", "entailment")]
PAWSX = {
    "de": [("Der Hund bellt laut", "Laut bellt der Hund", "1"), ("Das Haus ist rot", "Das Auto ist blau", "0"),
           ("Er kam gestern an", "Gestern kam er an", "1")],
    "dev-en": [("The dog barks", "The dog is barking", "1"), ("The house is red", "The car is blue", "0"),
               ("He came yesterday", "Yesterday he came", "1")],
}


def _tsv(rows) -> str:
    return "".join("\t".join(row) + "\n" for row in rows)


def write_data(root: Path) -> Path:
    (root / "xnli").mkdir(parents=True)
    for lang, rows in XNLI.items():
        (root / "xnli" / f"test-{lang}.tsv").write_text(_tsv(rows), encoding="utf-8")
    (root / "xnli" / "dev-en.tsv").write_text(_tsv(XNLI_DEV_EN), encoding="utf-8")
    (root / "pawsx").mkdir()
    (root / "pawsx" / "test-de.tsv").write_text(_tsv(PAWSX["de"]), encoding="utf-8")
    (root / "pawsx" / "dev-en.tsv").write_text(_tsv(PAWSX["dev-en"]), encoding="utf-8")
    (root / "udpos" / "en").mkdir(parents=True)
    (root / "udpos" / "en" / "en_ewt-ud-test.conllu").symlink_to(SHARED / "udpos" / "en_ewt-ud-test.conllu")
    # English demonstrations: real EWT sentences far from the first test documents, in the dev tsv layout
    ewt, _ = udpos.read_conllu_files([SHARED / "udpos" / "en_ewt-ud-test.conllu"], "en", "test")
    dev = [d for d in ewt[1000:1040] if len(d["words"]) <= 8][:5]
    (root / "udpos" / "dev-en.tsv").write_text(
        "\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(d["words"], d["tags"])) for d in dev) + "\n", encoding="utf-8")
    (root / "xquad").symlink_to(SHARED / "xquad")
    (root / "tatoeba").symlink_to(SHARED / "tatoeba")
    return root


def run_cli(tmp: Path, model_args: str, tasks: str, *extra: str, model: str = "hf", data: Path | None = None,
            limit: int = LIMIT, batch_size: int = 1) -> tuple[dict, dict]:
    """``lm_eval`` on the command line with ``--log_samples``: (results JSON, samples per leaf by doc_id)."""
    out = tmp / "out"
    command = [sys.executable, "-m", "lm_eval", "--model", model, "--model_args", model_args,
               "--tasks", tasks, "--limit", str(limit), "--device", "cpu", "--batch_size", str(batch_size),
               "--output_path", str(out), "--log_samples", *extra]
    env = {**os.environ, "XTREME_DATA_DIR": str(data or tmp / "data"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    (results_file,) = out.rglob("results_*.json")
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        leaf = path.name[len("samples_"):].rsplit("_", 1)[0]
        samples[leaf] = sorted((json.loads(l) for l in path.read_text(encoding="utf-8").splitlines()),
                               key=lambda s: s["doc_id"])
    return json.loads(results_file.read_text()), samples


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("llm") / "data")


@pytest.fixture(scope="module")
def gpt2_run(data):
    tmp = data.parent
    model = tiny_decoder(tmp / "gpt2", "gpt2", seed=1)
    results, samples = run_cli(tmp, f"pretrained={model}", "xtreme-xnli-en,xtreme-pawsx-de,xtreme-udpos-en,xtreme-xquad-en,"
                                           "xtreme-xquad-zh,xtreme-tatoeba-de")
    return results, samples, model


@pytest.fixture(scope="module")
def llama_run(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("llama")
    (tmp / "data").symlink_to(data)
    model = tiny_decoder(tmp / "llama", "llama", seed=2)
    results, samples = run_cli(
        tmp, f"pretrained={model},xtreme_mode=generate", "xtreme-xnli-de,xtreme-pawsx-de,xtreme-udpos-en", "--num_fewshot", "2", "--apply_chat_template",
        "--fewshot_as_multiturn", "--system_instruction", "Be brief.", "--gen_kwargs", "max_gen_toks=12",
    )
    return results, samples, model


def load(model: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(model).eval(), AutoTokenizer.from_pretrained(model)


def context_of(sample: dict) -> dict:
    """The PromptContext the adapter filled (the last argument of the logged request)."""
    args = sample["arguments"]["gen_args_0"]
    return args[f"arg_{len(args) - 1}"]


def direct_loglikelihood(model, tok, context: str, continuation: str) -> float:
    """log p(continuation | context) with transformers, tokenised as lm-eval's HFLM does."""
    import torch

    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    prefix = tok(context, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([whole])).logits[0].float().log_softmax(-1)
    return float(sum(logits[i - 1, whole[i]] for i in range(len(prefix), len(whole))))


def direct_generation(model, tok, prompt: str, max_new_tokens: int, until: list[str]) -> str:
    """Greedy ``model.generate`` on the logged prompt, cut at the first stop string."""
    import torch

    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tok.pad_token_id)
    text = tok.decode(out[0, ids.shape[1]:])
    for stop in until:
        text = text.split(stop)[0]
    return text


# ---------------------------------------------------------------------------------- GPT-2, zero-shot
@pytest.mark.slow
def test_every_task_reports_the_xtreme_metrics(gpt2_run):
    results, samples, _ = gpt2_run
    scores = results["results"]
    for leaf in ("xtreme-xnli-en", "xtreme-pawsx-de"):
        assert {"acc,none", "unparsable,none"} <= set(scores[leaf])
    assert {"f1,none", "token_acc,none", "unparsable,none"} <= set(scores["xtreme-udpos-en"])
    for leaf in ("xtreme-xquad-en", "xtreme-xquad-zh"):
        assert {"em,none", "f1,none", "unparsable,none", "not_in_context,none"} <= set(scores[leaf])
    assert {"acc,none", "acc_reverse,none"} <= set(scores["xtreme-tatoeba-de"])
    assert all(len(rows) == LIMIT for rows in samples.values())
    assert results["config"]["model"] == "hf"


@pytest.mark.slow
def test_classification_loglikelihoods_equal_transformers(gpt2_run):
    results, samples, model_dir = gpt2_run
    model, tok = load(model_dir)
    for leaf, task in (("xtreme-xnli-en", "xnli"), ("xtreme-pawsx-de", "pawsx")):
        labels = TASKS[task].labels
        targets = load_prompts()[task].targets
        correct = 0
        for sample in samples[leaf]:
            context = context_of(sample)
            assert context["continuations"] == [" " + targets[label] for label in labels]
            direct = [direct_loglikelihood(model, tok, context["prompt"], c) for c in context["continuations"]]
            assert context["loglikelihoods"] == pytest.approx(direct, abs=1e-4)
            assert sample["filtered_resps"][0] == labels[int(np.argmax(direct))]
            correct += sample["filtered_resps"][0] == sample["doc"]["label"]
            assert sample["doc"]["text_a"] in context["prompt"] and context["num_fewshot"] == 0
        assert results["results"][leaf]["acc,none"] == pytest.approx(100 * correct / LIMIT)


@pytest.mark.slow
def test_generations_equal_greedy_model_generate(gpt2_run):
    _, samples, model_dir = gpt2_run
    model, tok = load(model_dir)
    for leaf in ("xtreme-xquad-en", "xtreme-xquad-zh", "xtreme-udpos-en"):
        for sample in samples[leaf]:
            context = context_of(sample)
            generation = context["generation"]
            assert generation["do_sample"] is False and generation["until"] == ["\n\n"]
            expected = direct_generation(model, tok, context["prompt"], generation["max_gen_toks"], generation["until"])
            assert context["output"] == expected, leaf


@pytest.mark.slow
def test_qa_and_tagging_scores_follow_from_the_logged_outputs(gpt2_run):
    results, samples, _ = gpt2_run
    for leaf in ("xtreme-xquad-en", "xtreme-xquad-zh"):
        rows = samples[leaf]
        answers = [r["filtered_resps"][0] for r in rows]
        assert answers == [prompted.first_line(context_of(r)["output"]) for r in rows]
        golds = [r["doc"]["answers"]["text"] for r in rows]
        em = np.mean([squad.exact_match(a, g) for a, g in zip(answers, golds)])
        f1 = np.mean([squad.f1(a, g) for a, g in zip(answers, golds)])
        outside = np.mean([100.0 * (not a.strip() or a.strip() not in r["doc"]["context"]) for a, r in zip(answers, rows)])
        scores = results["results"][leaf]
        assert (scores["em,none"], scores["f1,none"], scores["not_in_context,none"]) == pytest.approx((em, f1, outside))
    rows = samples["xtreme-udpos-en"]
    predicted = [parse_tags(prompted.first_line(context_of(r)["output"]), r["doc"]["words"], TASKS["udpos"].labels,
                            "word_tags") for r in rows]
    assert [list(p) for p in predicted] == [r["filtered_resps"][0] for r in rows]
    scores = results["results"]["xtreme-udpos-en"]
    assert scores["f1,none"] == pytest.approx(span_prf([r["doc"]["tags"] for r in rows], predicted)["f1"])
    assert scores["unparsable,none"] == sum(p.parse.status == "unparsable" for p in predicted)


@pytest.mark.slow
def test_tatoeba_vectors_are_the_mean_of_the_middle_layer(gpt2_run):
    import torch

    results, samples, model_dir = gpt2_run
    model, tok = load(model_dir)
    rows = samples["xtreme-tatoeba-de"]

    def vector(text: str) -> np.ndarray:  # GPT-2 style: 2 blocks -> layer 1 -> hidden_states[2]; no BOS added
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = model(ids, output_hidden_states=True).hidden_states[2][0]
        return hidden.mean(0).numpy()

    xx = np.stack([vector(r["doc"]["src"]) for r in rows])
    en = np.stack([vector(r["doc"]["tgt"]) for r in rows])
    xx /= np.linalg.norm(xx, axis=1, keepdims=True)
    en /= np.linalg.norm(en, axis=1, keepdims=True)
    gold = [r["doc"]["index"] for r in rows]
    order = np.argsort(gold)
    sims = en[order] @ xx[order].T
    expected = 100.0 * np.mean(np.argmax(sims, axis=1) == np.arange(len(rows)))
    assert results["results"]["xtreme-tatoeba-de"]["acc,none"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------- Llama, 2 shots, chat
@pytest.mark.slow
def test_fewshot_chat_run_uses_english_validation_shots(llama_run, data):
    results, samples, model_dir = llama_run
    assert results["n-shot"]["xtreme-xnli-de"] == 2
    shots = demonstrations("xnli", 2, 1234, str(data))
    assert all(doc["id"].startswith("xnli-en-validation") for doc in shots)
    prompts = []
    for leaf in ("xtreme-xnli-de", "xtreme-pawsx-de", "xtreme-udpos-en"):
        for sample in samples[leaf]:
            context = context_of(sample)
            prompt = context["prompt"]
            assert prompt.startswith("<|system|>Be brief.\n<|user|>") and prompt.endswith("<|assistant|>")
            assert context["num_fewshot"] == 2 and context["fewshot_as_multiturn"] is True
            assert context["generation"]["max_gen_toks"] == 12  # --gen_kwargs reached the request
            if leaf == "xtreme-xnli-de":
                prompts.append(prompt)
                for doc in shots:  # the same English demonstrations, answered, in every prompt
                    assert f"Premise: {doc['text_a']}" in prompt and f"<|assistant|>{doc['label']}\n" in prompt
                test_premises = [a for a, _, _ in XNLI["de"]]
                assert sum(p in prompt for p in test_premises) == 1  # only the document itself
    assert len(prompts) == LIMIT


@pytest.mark.slow
def test_fewshot_generations_and_generated_labels(llama_run):
    results, samples, model_dir = llama_run
    model, tok = load(model_dir)
    for leaf in ("xtreme-xnli-de", "xtreme-udpos-en"):
        for sample in samples[leaf]:
            context = context_of(sample)
            expected = direct_generation(model, tok, context["prompt"], 12, ["\n\n"])
            assert context["output"] == expected
    rows = samples["xtreme-xnli-de"]
    parsed = [prompted.parse_choice(context_of(r)["output"], load_prompts()["xnli"].targets) for r in rows]
    assert [str(p) for p in parsed] == [r["filtered_resps"][0] for r in rows]
    assert results["results"]["xtreme-xnli-de"]["unparsable,none"] == sum(p.parse.status == "unparsable" for p in parsed)


# ---------------------------------------------------------------------------------- lm-eval's dummy model (API-style)
@pytest.fixture(scope="module")
def dummy_results(data):
    from harness_ext import api

    os.environ["XTREME_DATA_DIR"] = str(data)
    try:
        return api.evaluate(["xtreme-xnli-en", "xtreme-udpos-en", "xtreme-xquad-en"], model="dummy", limit=2,
                            log_samples=True, bootstrap_iters=0)
    finally:
        del os.environ["XTREME_DATA_DIR"]


def test_dummy_model_answers_through_loglikelihood_and_generate_until(dummy_results):
    scores = dummy_results["results"]
    assert 0.0 <= scores["xtreme-xnli-en"]["acc,none"] <= 100.0
    # the dummy model always generates "lol": no word/TAG item, not a span of any context
    assert scores["xtreme-udpos-en"]["unparsable,none"] == 2 and scores["xtreme-udpos-en"]["f1,none"] == 0.0
    assert scores["xtreme-xquad-en"]["not_in_context,none"] == 100.0
    for sample in dummy_results["samples"]["xtreme-xquad-en"]:
        context = sample["arguments"][0][-1]
        assert context["output"] == "lol" and "Question: " + sample["doc"]["question"] in context["prompt"]


def test_dummy_model_retrieval_stops_with_one_line(data, monkeypatch):
    import lm_eval

    from harness_ext import api

    monkeypatch.setenv("XTREME_DATA_DIR", str(data))
    with pytest.raises(prompted.PromptedError) as err:
        lm_eval.simple_evaluate(model="dummy", tasks=["xtreme-tatoeba-de"], limit=2,
                                task_manager=api.xtreme_task_manager(), bootstrap_iters=0)
    message = str(err.value)
    assert "\n" not in message and "local model weights" in message and "--model hf" in message


# ---------------------------------------------------------------------------------- pieces
def test_hook_adds_the_methods_only_where_missing_and_can_be_switched_off():
    code = ("import lm_eval.api.model as m, harness_ext.adapters.xtreme_lm as x; "
            "print(hasattr(m.LM, 'classify'), x.XtremeLM.classify.__module__)")
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    off = subprocess.run([sys.executable, "-c", "import lm_eval.api.model as m; print(hasattr(m.LM, 'classify'))"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "XTREME_HARNESS_AUTOLOAD": "0"})
    assert on.stdout.split() == ["True", "harness_ext.adapters.xtreme_lm"], on.stderr[-2000:]
    assert off.stdout.strip() == "False", off.stderr[-2000:]


def test_xtreme_options_are_taken_out_of_model_args():
    from lm_eval.api.model import LM

    from harness_ext import api

    api.ensure_registered()

    class Recorder(LM):
        def __init__(self, **kwargs):
            super().__init__()
            self.kwargs = kwargs

        loglikelihood = loglikelihood_rolling = generate_until = None

    lm = Recorder.create_from_arg_string("pretrained=x,xtreme_mode=generate,xtreme_layer=3", {"device": "cpu"})
    assert lm.kwargs == {"pretrained": "x", "device": "cpu"}
    assert prompted.options_of(lm) == {"mode": "generate", "layer": 3}  # lm-eval parses numbers
    lm = Recorder.create_from_arg_obj({"pretrained": "y", "xtreme_prompts": "default"})
    assert lm.kwargs == {"pretrained": "y"} and prompted.options_of(lm) == {"prompts": "default"}
    with pytest.raises(ValueError, match="xtreme_layr"):
        Recorder.create_from_arg_string("xtreme_layr=3")


def test_fewshot_refusals_are_clear(tmp_path):
    with pytest.raises(FewshotError, match="XQuAD has one split"):
        check_fewshot("xquad", 1, "xtreme-xquad-de")
    with pytest.raises(FewshotError, match="TyDiQA"):
        check_fewshot("tydiqa", 3, "xtreme-tydiqa-fi")
    check_fewshot("xquad", 0, "xtreme-xquad-de")
    with pytest.raises(FewshotError, match="English validation split"):
        demonstrations("xnli", 2, 1234, str(tmp_path))  # no dev-en.tsv there


def test_fine_tuned_model_refuses_shots():
    from lm_eval.api.instance import Instance

    from harness_ext.adapters.xtreme_lm import UnsupportedRequest, XtremeLM

    lm = XtremeLM(pretrained="unused", device="cpu")
    request = Instance("classify", {}, ("a", "b", TASKS["xnli"].labels, PromptContext.build(num_fewshot=2)), 0,  # type: ignore[arg-type]
                       ("xtreme-xnli-en", 0, 1))
    with pytest.raises(UnsupportedRequest, match="zero-shot"):
        lm.classify([request])


def test_generated_labels_are_read_leniently_but_never_guessed():
    targets = load_prompts()["pawsx"].targets
    assert str(prompted.parse_choice(" Yes.\nmore", targets)) == "1"
    assert prompted.parse_choice("no, they differ", targets).parse.status == "partial"
    bad = prompted.parse_choice("maybe", targets)
    assert bad.parse.status == "unparsable" and str(bad) not in TASKS["pawsx"].labels


def test_prompt_overrides_are_checked(tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text("pawsx:\n  instruction: Same meaning?\n  targets: {'0': 'different', '1': 'same'}\n")
    assert load_prompts(str(file))["pawsx"].targets == {"0": "different", "1": "same"}
    assert load_prompts(None, {"xquad": "Q: {question} C: {context} A:"})["xquad"].input.startswith("Q:")
    with pytest.raises(TemplateError, match="hypothesis"):
        load_prompts(None, {"xnli": "{hypothesis}"})
    file.write_text("pawsx:\n  targets: {'0': no, '1': yes}\n")
    with pytest.raises(TemplateError, match="booleans"):
        load_prompts(str(file))


# ---------------------------------------------------------------------------------- reports
def _results_file(folder: Path, model: str, pretrained: str, shots: int, metrics: dict, chat: bool = False,
                  date: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"results": {leaf: {f"{m},none": v for m, v in values.items()} for leaf, values in metrics.items()},
            "n-shot": {leaf: shots for leaf in metrics}, "config": {"model": model, "model_args": f"pretrained={pretrained}"},
            "date": date, "chat_template": "<template>" if chat else None}
    path = folder / f"results_2026-01-0{int(date)}T00-00-00.json"
    path.write_text(json.dumps(data))
    return path


def test_report_names_the_protocol_and_never_mixes_them(tmp_path):
    from harness_ext.reports.results import all_scores, collect
    from harness_ext.reports.tables import leaderboard_table, read_csv, to_csv

    every = {TASKS[t].leaf(l): ({"em": 50.0, "f1": 60.0} if TASKS[t].category == "qa" else {"acc": 50.0, "f1": 50.0})
             for t in TASKS for l in TASKS[t].languages}
    _results_file(tmp_path / "ft", "xtreme", "/m/xlmr", 0, every)
    _results_file(tmp_path / "llm0", "hf", "/m/llm", 0, every, date=2)
    _results_file(tmp_path / "llm5", "hf", "/m/llm", 5, {k: v for k, v in every.items() if "xnli" in k}, chat=True, date=3)
    scores = all_scores(collect([tmp_path]))
    assert set(scores) == {"/m/xlmr", "/m/llm [prompted LLM, 0-shot]", "/m/llm [prompted LLM, 5-shot, chat]"}
    assert scores["/m/xlmr"].protocols == ("fine-tuned",) and scores["/m/xlmr"].xtreme is not None
    assert scores["/m/llm [prompted LLM, 0-shot]"].xtreme is not None  # a complete row of one protocol
    rows = {r["System"]: r for r in read_csv(to_csv(leaderboard_table(scores)))}
    assert rows["/m/llm [prompted LLM, 0-shot]"]["Protocol"] == "prompted LLM, 0-shot"
    # one label over a fine-tuned and a prompted run: shown, never averaged into one XTREME score
    mixed = all_scores(collect([tmp_path / "ft", tmp_path / "llm5"], label="one"))["one"]
    assert mixed.xtreme is None and mixed.status().startswith("mixed protocols")
    assert set(mixed.protocols) == {"fine-tuned", "prompted LLM, 5-shot, chat"}


# ---------------------------------------------------------------------------------- an OpenAI-style completions stub
def stub_logprob(token: int, position: int) -> float:
    """What the stub server says log p(token at position) is: depends on both, so a shifted
    or misaligned token shows up as a different sum."""
    return -1.0 - ((token * 7 + position) % 11) / 11


STUB_ANSWER = "Paris"


@pytest.fixture(scope="module")
def completions_stub():
    """A local server speaking the OpenAI completions API the way lm-eval's local-completions uses it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompts = body["prompt"]
            if not prompts or not isinstance(prompts[0], list):
                prompts = [prompts]
            choices = []
            for index, prompt in enumerate(prompts):
                if body.get("echo"):  # scoring: echo the prompt's token log-probabilities, one extra token
                    lps = [None] + [stub_logprob(t, i) for i, t in enumerate(prompt) if i] + [-0.5]
                    tops = [None] + [{"t": v} for v in lps[1:]]
                    choices.append({"index": index, "text": "", "logprobs": {"token_logprobs": lps, "top_logprobs": tops}})
                else:  # generation: a fixed answer, then text after a stop string the server honours
                    text = STUB_ANSWER + "\n\nQuestion: more"
                    for stop in body.get("stop") or []:
                        text = text.split(stop)[0]
                    choices.append({"index": index, "text": text})
            payload = json.dumps({"choices": choices}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/completions"
    server.shutdown()


def test_local_completions_model_answers_over_http(completions_stub, data, tmp_path, monkeypatch):
    import lm_eval

    from harness_ext import api

    monkeypatch.setenv("XTREME_DATA_DIR", str(data))
    tokenizer_dir = tiny_decoder(tmp_path / "tok", "gpt2")
    model_args = {"model": "stub", "base_url": completions_stub, "tokenizer": str(tokenizer_dir),
                  "tokenizer_backend": "huggingface", "max_retries": 1}
    results = lm_eval.simple_evaluate(model="local-completions", model_args=model_args, limit=2, bootstrap_iters=0,
                                      tasks=["xtreme-xnli-en", "xtreme-xquad-en"], task_manager=api.xtreme_task_manager(),
                                      log_samples=True)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    for sample in results["samples"]["xtreme-xnli-en"]:
        context = sample["arguments"][0][-1]
        prefix = tok(context["prompt"], add_special_tokens=False)["input_ids"]
        expected = []
        for continuation in context["continuations"]:
            whole = tok(context["prompt"] + continuation, add_special_tokens=False)["input_ids"]
            expected.append(sum(stub_logprob(whole[i], i) for i in range(len(prefix), len(whole))))
        assert context["loglikelihoods"] == pytest.approx(expected)
        assert sample["filtered_resps"][0] == TASKS["xnli"].labels[int(np.argmax(expected))]
    answers = [s["filtered_resps"][0] for s in results["samples"]["xtreme-xquad-en"]]
    assert answers == [STUB_ANSWER, STUB_ANSWER]  # the stop string cut the rest
    with pytest.raises(prompted.PromptedError, match="LocalCompletionsAPI does not expose"):
        lm_eval.simple_evaluate(model="local-completions", model_args=model_args, limit=2, bootstrap_iters=0,
                                tasks=["xtreme-tatoeba-de"], task_manager=api.xtreme_task_manager())


def test_embed_leaves_bos_out_and_padding_changes_nothing(tmp_path):
    """Llama-style model whose tokenizer adds BOS: the vector is the mean over the text's tokens
    of the chosen layer (BOS in the input, not in the mean); batching pads on the right only."""
    import types

    import torch

    model, tok = load(tiny_decoder(tmp_path / "llama", "llama", seed=3))
    bos = tok.bos_token_id

    class BosTokenizer:  # as Llama tokenizers do: BOS first
        bos_token_id, model_max_length = bos, 4096

        def __call__(self, texts, **kwargs):
            return {"input_ids": [[bos] + row for row in tok(texts, add_special_tokens=False)["input_ids"]]}

    texts = ["John lives in Paris", "le chat", "der Hund und die Katze sind in Berlin"]
    lm = types.SimpleNamespace(model=model, tokenizer=BosTokenizer(), _xtreme_options={"layer": 0, "embed_batch_size": 3})
    vectors = prompted.embed_texts(lm, texts)
    for text, vector in zip(texts, vectors):
        ids = torch.tensor([[bos] + tok(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            hidden = model(ids, output_hidden_states=True).hidden_states[1][0]  # layer 0 = block 0's output
        np.testing.assert_allclose(vector, hidden[1:].mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert prompted.default_layer(32) == 16 and prompted.default_layer(3) == 1
