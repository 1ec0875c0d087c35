"""The plugin core: generated tasks, start-up hook, dispatch of our request kinds,
XNLI / PAWS-X end to end through lm_eval's own entry point."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xtreme_tasks import generate
from xtreme_tasks.table import TASK_ORDER, TASKS

REPO = Path(__file__).resolve().parents[1]

PAIRS = [
    ("The cat sat on the mat.", "A cat is sitting."),
    ("He bought three apples at the market.", "He bought fruit."),
    ("Nobody came to the party.", "The party was crowded."),
    ("Rain is expected tomorrow.", "It will be sunny all week."),
    ("She plays the violin every evening.", "She is a musician."),
    ("The museum opens at nine.", "The museum is closed on Mondays."),
    ("Dogs bark at strangers.", "Some animals make noise."),
]


def write_classification_data(root: Path) -> Path:
    """A labelled XNLI + PAWS-X folder in the official layout (3 columns)."""
    for task in ("xnli", "pawsx"):
        spec = TASKS[task]
        folder = root / task
        folder.mkdir(parents=True, exist_ok=True)
        for n, lang in enumerate(spec.languages):
            rows = []
            for i, (a, b) in enumerate(PAIRS[: 3 + n % 4]):
                label = spec.labels[(i + n) % len(spec.labels)]
                rows.append(f"{lang}: {a}\t{b} ({i})\t{label}")
            (folder / f"test-{lang}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def classification_data(tmp_path_factory) -> Path:
    return write_classification_data(tmp_path_factory.mktemp("xtreme_data"))


def tiny_classifier(path: Path, labels: tuple[str, ...], tokenizer_dir: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


# ----------------------------------------------------------------- generated files / names
def test_generated_yaml_matches_the_table():
    assert generate.drift() == [], "run `python -m xtreme_tasks.generate`"


def test_drift_is_detected(tmp_path):
    generate.write(tmp_path)
    assert generate.drift(tmp_path) == []
    leaf = tmp_path / "xnli" / "xtreme-xnli-de.yaml"
    leaf.write_text(leaf.read_text() + "# edited by hand\n")
    (tmp_path / "xnli" / "xtreme-xnli-xx.yaml").write_text("task: stale\n")
    problems = generate.drift(tmp_path)
    assert any("out of date" in p and "xtreme-xnli-de" in p for p in problems)
    assert any("stale" in p and "xtreme-xnli-xx" in p for p in problems)


def test_every_language_has_a_leaf_and_group_names_match_the_glob():
    files = generate.expected_files()
    leaves, groups = [], []
    for name in TASK_ORDER:
        spec = TASKS[name]
        groups.append(spec.group)
        for lang in spec.all_languages:
            assert Path(name) / f"{spec.leaf(lang)}.yaml" in files
            leaves.append(spec.leaf(lang))
    assert len(TASKS["xnli"].languages) == 15 and len(TASKS["pawsx"].languages) == 7
    assert all(fnmatch.fnmatch(g, "xtreme_*") for g in groups)
    assert not any(fnmatch.fnmatch(leaf, "xtreme_*") for leaf in leaves)
    assert not fnmatch.fnmatch("xtreme", "xtreme_*")
    other_groups = [str(p) for p in files if p.name.startswith("_") and p.stem[1:] not in groups + ["xtreme"]]
    assert not any(fnmatch.fnmatch(Path(p).stem[1:], "xtreme_*") for p in other_groups), other_groups
    builtin_prefixes = ("xnli_", "paws_", "xquad_", "mlqa_", "tydiqa_goldp_")
    assert not any(n.startswith(builtin_prefixes) for n in leaves + groups)


# ----------------------------------------------------------------- start-up hook
def _python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        env={**os.environ, **env}, cwd="/",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_startup_hook_is_installed_and_lazy():
    out = _python(
        "import sys, harness_ext._autoload as a; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('lm_eval', 'torch', 'transformers', 'xtreme_tasks')]; "
        "print(a.is_installed(), heavy)"
    )
    assert out == "True []", "the .pth hook must install a finder and import nothing heavy"


def test_startup_hook_registers_xtreme_and_keeps_builtin_models():
    out = _python(
        "from lm_eval.api.registry import get_model; "
        "print(get_model('xtreme').__name__, get_model('dummy').__name__, get_model('hf').__name__)"
    )
    assert out.split() == ["XtremeLM", "DummyLM", "HFLM"]


def test_startup_hook_can_be_switched_off():
    out = _python(
        "import harness_ext._autoload as a; import lm_eval.api.registry as r; import lm_eval.models; "
        "print(a.is_installed(), 'xtreme' in r.model_registry, 'hf' in r.model_registry)",
        XTREME_HARNESS_AUTOLOAD="0",
    )
    assert out == "False False True"


def test_task_manager_indexes_xtreme_without_include_path():
    out = _python(
        "from lm_eval.tasks import TaskManager; tm = TaskManager(); "
        "print('xtreme_xnli' in tm.all_groups, 'xtreme_pawsx' in tm.all_groups, "
        "'xtreme-xnli-de' in tm.all_subtasks, 'hellaswag' in tm.all_tasks, "
        "sorted(tm.match_tasks(['xtreme_*'])) == sorted(%r))" % [TASKS[n].group for n in TASK_ORDER]
    )
    assert out == "True True True True True"


# ----------------------------------------------------------------- dispatch of our request kinds
def test_lm_eval_dispatches_custom_request_kinds(classification_data, monkeypatch):
    """If a future lm-eval stops calling ``getattr(lm, request_type)``, this fails loudly."""
    from lm_eval.api.model import LM

    import harness_ext.api as api

    calls: list[tuple[str, int]] = []

    class Recorder(LM):
        def classify(self, requests):
            calls.append(("classify", len(requests)))
            assert all(r.request_type == "classify" for r in requests)
            return [r.doc["label"] if i % 2 == 0 else "neutral" for i, r in enumerate(requests)]

        def loglikelihood(self, requests):
            raise AssertionError("loglikelihood must not be called")

        loglikelihood_rolling = generate_until = loglikelihood

    monkeypatch.setenv("XTREME_DATA_DIR", str(classification_data))
    api.ensure_registered()
    import lm_eval

    results = lm_eval.simple_evaluate(model=Recorder(), tasks=["xtreme-xnli-de"], task_manager=api.task_manager())
    assert calls == [("classify", len(PAIRS[:5]))]
    docs = (classification_data / "xnli" / "test-de.tsv").read_text().splitlines()
    expected = sum(
        (line.split("\t")[2] if i % 2 == 0 else "neutral") == line.split("\t")[2] for i, line in enumerate(docs)
    ) / len(docs)
    assert results["results"]["xtreme-xnli-de"]["acc,none"] == pytest.approx(100 * expected)


# ----------------------------------------------------------------- XNLI / PAWS-X end to end
def _direct_accuracy(checkpoint: Path, data_file: Path) -> float:
    """Independent recomputation: one example at a time, straight through transformers."""
    import csv

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    correct = total = 0
    with data_file.open(encoding="utf-8", newline="") as handle:
        for a, b, label in csv.reader(handle, delimiter="\t"):
            with torch.no_grad():
                logits = model(**tokenizer(a, b, return_tensors="pt")).logits[0]
            correct += model.config.id2label[int(logits.argmax())] == label
            total += 1
    return 100.0 * correct / total


@pytest.mark.slow
def test_xnli_and_pawsx_end_to_end_through_lm_eval_cli(classification_data, minilm_path, tmp_path):
    xnli_ckpt = tiny_classifier(tmp_path / "xnli-ckpt", TASKS["xnli"].labels, minilm_path, seed=1)
    out = tmp_path / "out"
    env = {**os.environ, "XTREME_DATA_DIR": str(classification_data)}
    command = [
        "lm_eval", "run", "--model", "xtreme", "--model_args", f"pretrained={xnli_ckpt},batch_size=4",
        "--tasks", "xtreme_xnli", "--output_path", str(out), "--device", "cpu",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())["results"]
    per_language = []
    for lang in TASKS["xnli"].languages:
        expected = _direct_accuracy(xnli_ckpt, classification_data / "xnli" / f"test-{lang}.tsv")
        assert results[f"xtreme-xnli-{lang}"]["acc,none"] == pytest.approx(expected), lang
        per_language.append(expected)
    # XTREME's task score is the plain mean over languages (not weighted by size)
    assert results["xtreme_xnli"]["acc,none"] == pytest.approx(sum(per_language) / len(per_language))

    pawsx_ckpt = tiny_classifier(tmp_path / "pawsx-ckpt", TASKS["pawsx"].labels, minilm_path, seed=2)
    from harness_ext.api import evaluate

    os.environ["XTREME_DATA_DIR"] = str(classification_data)
    try:
        res = evaluate(["xtreme_pawsx"], pretrained=str(pawsx_ckpt), device="cpu")["results"]
    finally:
        del os.environ["XTREME_DATA_DIR"]
    scores = [
        _direct_accuracy(pawsx_ckpt, classification_data / "pawsx" / f"test-{lang}.tsv")
        for lang in TASKS["pawsx"].languages
    ]
    for lang, expected in zip(TASKS["pawsx"].languages, scores):
        assert res[f"xtreme-pawsx-{lang}"]["acc,none"] == pytest.approx(expected)
    assert res["xtreme_pawsx"]["acc,none"] == pytest.approx(sum(scores) / len(scores))


# ----------------------------------------------------------------- labels of the head
def _loaded(checkpoint: Path):
    from harness_ext.backends import load_checkpoint

    return load_checkpoint(str(checkpoint), "sequence-classification")


def test_head_with_other_label_order_is_mapped_by_name(tmp_path, minilm_path):
    from lm_eval.api.instance import Instance

    from harness_ext.adapters.encoder import classify
    from harness_ext.adapters.runtime.settings import AdapterSettings

    reordered = ("contradiction", "entailment", "neutral")
    ckpt = tiny_classifier(tmp_path / "c", reordered, minilm_path, seed=3)
    loaded = _loaded(ckpt)
    assert classify.head_to_task_labels(loaded, TASKS["xnli"].labels) == list(reordered)
    requests = [
        Instance("classify", {}, (a, b, TASKS["xnli"].labels), 0, ("xtreme-xnli-en", i, 1))
        for i, (a, b) in enumerate(PAIRS)
    ]
    got = classify.answer(loaded, requests, AdapterSettings(batch_size=3))
    import torch

    with torch.no_grad():
        for request, label in zip(requests, got):
            enc = loaded.tokenizer(request.args[0], request.args[1], return_tensors="pt")
            assert label == reordered[int(loaded.model(**enc).logits[0].argmax())]


def test_head_with_generic_labels_is_refused_with_the_fix(tmp_path, minilm_path):
    from harness_ext.adapters.encoder import classify

    ckpt = tiny_classifier(tmp_path / "g", ("LABEL_0", "LABEL_1", "LABEL_2"), minilm_path)
    with pytest.raises(classify.LabelMismatchError) as err:
        classify.head_to_task_labels(_loaded(ckpt), TASKS["xnli"].labels)
    message = str(err.value)
    assert "config.json" in message and "id2label" in message and "LABEL_0" in message


def test_head_with_too_few_labels_is_refused(tmp_path, minilm_path):
    from harness_ext.adapters.encoder import classify

    ckpt = tiny_classifier(tmp_path / "two", ("entailment", "neutral"), minilm_path)
    with pytest.raises(classify.LabelMismatchError, match="never predicts"):
        classify.head_to_task_labels(_loaded(ckpt), TASKS["xnli"].labels)


# ----------------------------------------------------------------- data layer errors
def test_stripped_test_labels_are_refused_with_the_fix(tmp_path):
    from xtreme_tasks.data import DataError, load_docs

    (tmp_path / "xnli").mkdir()
    (tmp_path / "xnli" / "test-de.tsv").write_text("Ein Satz.\tNoch ein Satz.\n")
    with pytest.raises(DataError) as err:
        load_docs("xnli", "de", data_dir=tmp_path)
    assert "test-de.tsv:1" in str(err.value) and "label" in str(err.value)


def test_bad_label_names_the_file_and_line(tmp_path):
    from xtreme_tasks.data import DataError, load_docs

    (tmp_path / "pawsx").mkdir()
    (tmp_path / "pawsx" / "test-fr.tsv").write_text("a\tb\t1\nc\td\tmaybe\n")
    with pytest.raises(DataError, match=r"test-fr.tsv:2: label 'maybe'"):
        load_docs("pawsx", "fr", data_dir=tmp_path)


def test_missing_folder_and_unknown_language(tmp_path):
    from xtreme_tasks.data import DataError, load_docs

    with pytest.raises(DataError, match="does not exist"):
        load_docs("xnli", "de", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match="missing xnli test file"):
        load_docs("xnli", "de", data_dir=tmp_path)
    with pytest.raises(ValueError, match="not part of XNLI"):
        load_docs("xnli", "xx", data_dir=tmp_path)
    with pytest.raises(KeyError, match="unknown XTREME task"):
        load_docs("xnlii", "de", data_dir=tmp_path)


def test_contradictory_is_normalised(tmp_path):
    from xtreme_tasks.data import load_docs

    (tmp_path / "xnli").mkdir()
    (tmp_path / "xnli" / "test-en.tsv").write_text('a "quoted" one\tb\tcontradictory\n')
    (doc,) = load_docs("xnli", "en", data_dir=tmp_path)
    assert doc["label"] == "contradiction" and doc["text_a"] == 'a "quoted" one'


def test_model_needs_a_checkpoint():
    from harness_ext.adapters.xtreme_lm import XtremeLM

    with pytest.raises(ValueError, match="exactly one of pretrained"):
        XtremeLM()


@pytest.mark.slow
def test_lm_eval_ls_lists_xtreme_groups_without_include_path(tmp_path):
    """lm-eval 0.4.13 replaced ``--tasks list`` (now an error for every task) with ``lm_eval ls``."""
    done = subprocess.run(["lm_eval", "ls", "groups"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in TASK_ORDER:
        assert f"|{TASKS[name].group} " in done.stdout.replace("| ", "|"), TASKS[name].group


def test_lm_eval_cli_defaults_do_not_cripple_the_model(tmp_path, minilm_path):
    """lm-eval always passes device=cuda-ish defaults and batch_size=1: a CPU machine falls
    back to the CPU, and the implicit 1 becomes the automatic plan (model_args still win)."""
    import torch

    from harness_ext.adapters.xtreme_lm import XtremeLM

    lm = XtremeLM.create_from_arg_string(f"pretrained={minilm_path}", {"batch_size": 1, "device": "cuda"})
    assert lm.settings.batch_size is None
    assert lm.settings.device == ("cuda" if torch.cuda.is_available() else "cpu")
    forced = XtremeLM.create_from_arg_string(f"pretrained={minilm_path},batch_size=1", {"batch_size": 1})
    assert forced.settings.batch_size == 1
    chosen = XtremeLM.create_from_arg_string(f"pretrained={minilm_path}", {"batch_size": "16"})
    assert chosen.settings.batch_size == 16


@pytest.mark.parametrize("device, caps, expected", [
    ("cuda", [(7, 0)], "float32"),  # V100: torch.cuda.is_bf16_supported() says True (emulation)
    ("cuda", [(7, 5)], "float32"),  # T4
    ("cuda:0", [(8, 0)], "bfloat16"),  # A100
    ("cuda", [(8, 9)], "bfloat16"),  # L4
    ("cuda", [(9, 0), (9, 0)], "bfloat16"),  # 2 x H100
    ("cuda", [(9, 0), (7, 0)], "float32"),  # a device_map over a mixed box: the weakest GPU decides
    ("cpu", [], "float32"),
])
def test_dtype_auto_gives_bf16_only_on_hardware_that_has_it(device, caps, expected):
    from harness_ext.adapters.xtreme_lm import auto_dtype

    assert auto_dtype(device, capabilities=lambda d: caps) == expected


def test_dtype_auto_reads_the_capability_not_is_bf16_supported(monkeypatch):
    import torch

    from harness_ext.adapters import xtreme_lm

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what torch says on a V100
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (7, 0))
    assert xtreme_lm._resolve_dtype("auto", "cuda") == "float32"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (8, 0))
    assert xtreme_lm._resolve_dtype(None, "cuda:0") == "bfloat16"
    assert xtreme_lm._resolve_dtype("bf16", "cuda") == "bfloat16"  # an explicit choice is kept


def test_the_task_name_check_knows_every_generated_task_and_group():
    """The early one-line check of --tasks names must accept every name the generated YAML defines
    (XTREME's and XTREME-R's), or a valid task such as xtreme-xcopa-et is refused before lm-eval sees it."""
    from harness_ext.run_guard import xtreme_names

    defined: set[str] = set()
    for path in (REPO / "xtreme_tasks" / "tasks").rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key in ("task", "group") and value.strip():
                defined.add(value.strip())
    assert defined, "no generated YAML found"
    assert defined <= set(xtreme_names()), sorted(defined - set(xtreme_names()))
