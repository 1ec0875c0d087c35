"""mT5-style checkpoints through lm-eval: known scores from a scripted generator
(malformed outputs included, and counted), and a tiny random mT5 through the
``lm_eval`` command line with every language checked against transformers."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from harness_ext.adapters.text2text import adapter as text2text
from harness_ext.adapters.formats.parse import parse_info, unparsable_flag
from harness_ext.adapters.text2text.templates import load_templates
from test_t2t_adapter import ScriptedSeq2Seq, scripted_checkpoint, t2t_tokenizer, tiny_t2t_mt5
from xtreme_tasks.table import TASKS

# ----------------------------------------------------------------- tiny data in the official layouts
PANX = [  # (words, gold tags, scripted output)
    ("John Smith lives in Paris", "B-PER I-PER O O B-LOC", "PER: John Smith $$ LOC: Paris"),  # 2 right
    ("Mary works at Google", "B-PER O O B-ORG", "PER: Mary $$ LOC: Google"),  # 1 right, 1 wrong type
    ("Berlin is a city", "B-LOC O O O", "garbage output"),  # unparsable: no entity
    ("the cat sat", "O O O", ""),  # no entity, correctly
]
UDPOS = [
    ("the cat sat", "DET NOUN VERB", "the/DET cat/NOUN sat/VERB"),
    ("John went to Paris", "PROPN VERB ADP PROPN", "John/PROPN went/VERB Paris/PROPN"),  # "to" dropped
    ("the mat", "DET NOUN", "gibberish"),  # unparsable
]
XNLI = [  # (premise, hypothesis, gold, scripted output); mT5 targets 0/1/2
    ("John lives in Paris", "John is in a city", "entailment", "0"),
    ("the cat sat", "a cat sat on the mat", "neutral", "2"),
    ("Mary works at Google", "Mary is a cat", "contradiction", "banana"),  # unparsable
    ("he went to Berlin", "he went to a city", "neutral", " 1 "),
]
CONTEXTS = ["He went to the U.S. yesterday.", "Mary works at Google in Paris."]
XQUAD = [  # (context index, question, gold answer, scripted output)
    (0, "Where did he go?", "the U.S.", "the U . S ."),  # padded like mT5: mapped back, EM 100
    (0, "When did he go?", "yesterday", "yesterday"),
    (1, "Where does Mary work?", "Google", "Google in Paris"),  # EM 0, F1 50
    (1, "Who works at Google?", "Mary", ""),  # EM 0, F1 0
]


def write_data(root: Path) -> Path:
    for name, rows in (("panx", PANX), ("udpos", UDPOS)):
        (root / name).mkdir(parents=True, exist_ok=True)
        blocks = ["\n".join(f"{w}\t{t}" for w, t in zip(words.split(), tags.split())) for words, tags, _ in rows]
        (root / name / "test-en.tsv").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    (root / "xnli").mkdir(parents=True, exist_ok=True)
    (root / "xnli" / "test-en.tsv").write_text("".join(f"{a}\t{b}\t{g}\n" for a, b, g, _ in XNLI), encoding="utf-8")
    paragraphs = []
    for c, context in enumerate(CONTEXTS):
        qas = [{"id": f"q{i}", "question": q, "answers": [{"text": g, "answer_start": context.index(g)}]}
               for i, (ci, q, g, _) in enumerate(XQUAD) if ci == c]
        paragraphs.append({"context": context, "qas": qas})
    (root / "xquad").mkdir(parents=True, exist_ok=True)
    (root / "xquad" / "xquad.en.json").write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}))
    return root


def script() -> dict[str, str]:
    """Model input (as the default mt5 templates render it) -> scripted output."""
    t = load_templates(None)
    out = {t["panx"].render(text=w, lang="en"): o for w, _, o in PANX}
    out.update({t["udpos"].render(text=w, lang="en"): o for w, _, o in UDPOS})
    out.update({t["xnli"].render(text_a=a, text_b=b, lang="en"): o for a, b, _, o in XNLI})
    out.update({text2text.qa_input(t["xquad"], q, CONTEXTS[c], "en"): o for c, q, _, o in XQUAD})
    return out


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return t2t_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture()
def scripted_run(tmp_path, tokenizer, monkeypatch):
    """Run tasks through lm-eval with the ``xtreme`` model answering from the script."""
    import lm_eval

    from harness_ext import api
    from harness_ext.adapters.xtreme_lm import XtremeLM

    monkeypatch.setenv("XTREME_DATA_DIR", str(write_data(tmp_path / "data")))
    loaded = scripted_checkpoint(tokenizer, script())
    monkeypatch.setattr(XtremeLM, "load", lambda self, choice: loaded)

    def run(tasks: list[str], **model_args) -> dict:
        api.ensure_registered()
        lm = XtremeLM(pretrained="scripted-mt5", device="cpu", batch_size=2, **model_args)
        return lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=api.task_manager(), log_samples=True)

    return run


def unparsable_in(results: dict, task: str) -> int:
    """The count a task can report: flags carried by the responses lm-eval logged."""
    return sum(unparsable_flag(sample["filtered_resps"][0]) for sample in results["samples"][task])


# ----------------------------------------------------------------- known scores, malformed outputs counted
def test_panx_spans_give_known_entity_f1(scripted_run):
    results = scripted_run(["xtreme-panx-en"])
    scores = results["results"]["xtreme-panx-en"]
    # gold spans 5, predicted 4, correct 3
    assert scores["precision,none"] == pytest.approx(75.0)
    assert scores["recall,none"] == pytest.approx(60.0)
    assert scores["f1,none"] == pytest.approx(200 * 0.75 * 0.6 / 1.35)
    assert unparsable_in(results, "xtreme-panx-en") == 1
    statuses = sorted(parse_info(s["filtered_resps"][0]).status for s in results["samples"]["xtreme-panx-en"])
    assert statuses == ["ok", "ok", "ok", "unparsable"]  # a wrong type is well-formed: wrong, not unparsable


def test_udpos_word_tags_give_known_f1(scripted_run):
    results = scripted_run(["xtreme-udpos-en"])
    scores = results["results"]["xtreme-udpos-en"]
    # seqeval 0.0.12 spans: 9 gold, 6 predicted, all 6 right -> P 100, R 66.7, F1 80
    assert scores["f1,none"] == pytest.approx(80.0)
    assert scores["token_acc,none"] == pytest.approx(100 * 6 / 9)
    assert unparsable_in(results, "xtreme-udpos-en") == 1


def test_xnli_by_generation_gives_known_accuracy(scripted_run):
    results = scripted_run(["xtreme-xnli-en"], t2t_mode="generate")
    assert results["results"]["xtreme-xnli-en"]["acc,none"] == pytest.approx(50.0)
    assert unparsable_in(results, "xtreme-xnli-en") == 1


def test_xquad_generated_answers_give_known_em_f1(scripted_run):
    results = scripted_run(["xtreme-xquad-en"])
    scores = results["results"]["xtreme-xquad-en"]
    assert scores["em,none"] == pytest.approx(50.0)
    assert scores["f1,none"] == pytest.approx((100 + 100 + 50 + 0) / 4)
    answers = [s["filtered_resps"][0] for s in results["samples"]["xtreme-xquad-en"]]
    assert "the U.S." in answers and unparsable_in(results, "xtreme-xquad-en") == 0
    # supplementary chrF of the generated answers: sacrebleu's sentence chrF, mean over questions
    from sacrebleu.metrics import CHRF

    golds = {q: g for _, q, g, _ in XQUAD}
    expected = [CHRF().sentence_score(s["filtered_resps"][0], [golds[s["doc"]["question"]]]).score
                for s in results["samples"]["xtreme-xquad-en"]]
    assert scores["chrf,none"] == pytest.approx(sum(expected) / 4)
    assert 0 < scores["chrf,none"] < 100 and expected.count(100.0) == 2  # two exact answers


# ----------------------------------------------------------------- how XtremeLM reaches the adapter
def test_templates_of_a_checkpoints_yaml_entry_reach_the_adapter(tmp_path, tokenizer, monkeypatch):
    """The entry says mt5-words; the scripted model only knows inputs rendered that way
    and answers label words, which the default (digit) targets could not parse."""
    import lm_eval

    from harness_ext import api
    from harness_ext.adapters.xtreme_lm import XtremeLM

    monkeypatch.setenv("XTREME_DATA_DIR", str(write_data(tmp_path / "data")))
    words = load_templates("mt5-words")["xnli"]
    loaded = scripted_checkpoint(tokenizer, {words.render(text_a=a, text_b=b, lang="en"): g for a, b, g, _ in XNLI})
    monkeypatch.setattr(XtremeLM, "load", lambda self, choice: loaded)
    (tmp_path / "ckpt").mkdir()
    yaml_file = tmp_path / "checkpoints.yaml"
    yaml_file.write_text(
        "version: 1\nsystems:\n  words:\n    family: mt5\n    size: 1000\n    checkpoints:\n"
        "      xnli: {source: ./ckpt, head: seq2seq, templates: mt5-words}\n"
    )
    api.ensure_registered()
    lm = XtremeLM(system="words", checkpoints=str(yaml_file), device="cpu", t2t_mode="generate")
    results = lm_eval.simple_evaluate(model=lm, tasks=["xtreme-xnli-en"], task_manager=api.task_manager())
    assert results["results"]["xtreme-xnli-en"]["acc,none"] == pytest.approx(100.0)


def test_pretrained_mt5_folder_is_answered_text_to_text(tmp_path):
    from harness_ext.adapters.xtreme_lm import XtremeLM

    folder = tiny_t2t_mt5(tmp_path / "mt5")
    lm = XtremeLM(pretrained=str(folder), device="cpu")
    for kind, task in (("classify", "xnli"), ("tag", "panx"), ("extract_span", "mlqa")):
        assert lm.checkpoint_for(f"xtreme-{task}-en", kind).head == "seq2seq"
    assert lm.checkpoint_for("xtreme-tatoeba-de", "embed").head == "encoder"  # mean-pooled encoder


# ----------------------------------------------------------------- a real (tiny) mT5 through the lm_eval command line
def _expected_accuracy(model, tok, data_file: Path) -> float:
    """Independent recomputation: transformers' loss per (input, label target), one at a time."""
    import csv

    template = load_templates(None)["xnli"]
    correct = total = 0
    with data_file.open(encoding="utf-8", newline="") as handle:
        for a, b, gold in csv.reader(handle, delimiter="\t"):
            enc = tok(f"xnli: premise: {a} hypothesis: {b}", return_tensors="pt")
            scores = []
            for label in TASKS["xnli"].labels:
                target = tok(template.targets[label], return_tensors="pt")["input_ids"]
                with torch.no_grad():
                    scores.append(-float(model(**enc, labels=target).loss) * target.shape[1])
            correct += TASKS["xnli"].labels[scores.index(max(scores))] == gold
            total += 1
    return 100.0 * correct / total


@pytest.mark.slow
def test_tiny_mt5_xnli_through_the_lm_eval_cli(tmp_path):
    from test_plugin_core import write_classification_data

    data = write_classification_data(tmp_path / "data")
    folder = tiny_t2t_mt5(tmp_path / "mt5", seed=3)
    yaml_file = tmp_path / "checkpoints.yaml"
    yaml_file.write_text(
        "version: 1\nsystems:\n  tiny-mt5:\n    family: mt5\n    size: 100000\n    checkpoints:\n"
        f"      xnli: {{source: {folder}, head: seq2seq}}\n"
    )
    out = tmp_path / "out"
    command = [
        "lm_eval", "run", "--model", "xtreme", "--model_args",
        f"system=tiny-mt5,checkpoints={yaml_file},batch_size=4", "--tasks", "xtreme_xnli",
        "--output_path", str(out), "--device", "cpu",
    ]
    env = {**os.environ, "XTREME_DATA_DIR": str(data)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    from transformers import AutoTokenizer, MT5ForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(folder)
    model = MT5ForConditionalGeneration.from_pretrained(folder).eval()
    expected = {lang: _expected_accuracy(model, tok, data / "xnli" / f"test-{lang}.tsv") for lang in TASKS["xnli"].languages}
    assert len(set(expected.values())) > 1, "the random model should not score every language alike"
    for lang, value in expected.items():
        assert results[f"xtreme-xnli-{lang}"]["acc,none"] == pytest.approx(value), lang
    assert results["xtreme_xnli"]["acc,none"] == pytest.approx(sum(expected.values()) / len(expected))


def test_scripted_stub_refuses_unscripted_inputs(tokenizer):
    """Guard for the tests above: a wrong template would surface as an error, not as a low score."""
    stub = ScriptedSeq2Seq(tokenizer, {})
    ids = torch.tensor([tokenizer("tag: John")["input_ids"]])
    with pytest.raises(KeyError, match="tag: John"):
        stub.generate(ids, torch.ones_like(ids), 5)
