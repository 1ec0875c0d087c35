"""UD-POS and PAN-X end to end through lm-eval's own entry point:

    python -m lm_eval --tasks xtreme_udpos,xtreme_panx --model xtreme --model_args pretrained=<tiny tagger> --limit N

The data folder holds the two real UD treebanks in the UD layout (linked, not copied)
and, so that the whole ``xtreme_udpos`` group can run, real English-EWT sentences in
the official tsv layout for the 31 languages we have no treebank for here (a
fixture: their numbers mean nothing about those languages). PAN-X gets a small
official-layout file per language whose first sentence (154 words) is far longer
than the window; German's file uses the raw ``de:`` token prefix. The checkpoint is
a tiny random XLM-R whose head names PAN-X's 7 tags and the 17 UPOS tags, so one
``pretrained=`` serves both tasks (with ``tag_outputs=mask`` each task never predicts the
other's labels; ``tag_split=windows``: the overlapping windows, not XTREME's chunks).

Checked against an independent recomputation: every word of every sentence is
tagged; for sentences that fit one window, the tags equal one plain forward pass
(first sub-word, argmax over the task's labels); the per-language numbers equal the
metric functions over the logged samples; the group is the plain mean of languages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.tiny_models import tiny_xlmr  # noqa: E402

from harness_ext.metrics.tagging import span_prf, token_accuracy  # noqa: E402
from xtreme_tasks.data import udpos  # noqa: E402
from xtreme_tasks.table import PANX_TAGS, TASKS, UPOS_TAGS  # noqa: E402

UD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "udpos"
TREEBANKS = {"en": "en_ewt-ud-test.conllu", "fr": "fr_gsd-ud-test.conllu"}
LIMIT = 3
MAX_LENGTH = 24  # sub-words per window, special tokens included
LONG = (["John", "Smith", "lives", "in", "New", "York", "and", "works", "for", "Google", "."] * 14,
        ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC", "O", "O", "O", "B-ORG", "O"] * 14)
PANX_SENTENCES = [LONG, (["Mary", "visited", "Paris", "."], ["B-PER", "O", "B-LOC", "O"]),
                  (["The", "United", "Nations", "met", "."], ["O", "B-ORG", "I-ORG", "O", "O"])]


def _tsv(sentences) -> str:
    return "\n\n".join("\n".join(f"{w}\t{t}" for w, t in zip(words, tags)) for words, tags in sentences) + "\n"


def write_data(root: Path) -> Path:
    for lang, name in TREEBANKS.items():
        folder = root / "udpos" / lang
        folder.mkdir(parents=True)
        (folder / name).symlink_to(UD / name)
    ewt, _ = udpos.read_conllu_files([UD / TREEBANKS["en"]], "en", "test")
    others = [lang for lang in TASKS["udpos"].languages if lang not in TREEBANKS]
    for i, lang in enumerate(others):
        chunk = ewt[100 + 5 * i: 105 + 5 * i]
        (root / "udpos" / f"test-{lang}.tsv").write_text(_tsv((d["words"], d["tags"]) for d in chunk), encoding="utf-8")
    (root / "panx").mkdir()
    for lang in TASKS["panx"].languages:
        sentences = PANX_SENTENCES
        if lang == "de":  # the raw WikiANN layout: every token carries its language
            sentences = [([f"de:{w}" for w in words], tags) for words, tags in PANX_SENTENCES]
        (root / "panx" / f"test-{lang}.tsv").write_text(_tsv(sentences), encoding="utf-8")
    return root


def direct_tags(model, tokenizer, words: list[str], tagset: tuple[str, ...]) -> list[str] | None:
    """One plain forward pass (None when the sentence needs more than one window)."""
    import torch

    encoding = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    if encoding["input_ids"].shape[1] > MAX_LENGTH:
        return None
    with torch.no_grad():
        logits = model(**encoding).logits[0]
    allowed = [i for i, name in model.config.id2label.items() if name in tagset]
    firsts: dict[int, int] = {}
    for position, word_id in enumerate(encoding.word_ids()):
        if word_id is not None:
            firsts.setdefault(word_id, position)
    return [model.config.id2label[allowed[int(logits[firsts[i], allowed].argmax())]] for i in range(len(words))]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tag_e2e")
    data = write_data(tmp / "data")
    checkpoint = tiny_xlmr(tmp, head="token-classification", id2label=dict(enumerate(PANX_TAGS + UPOS_TAGS)),
                           seed=5, name="tagger")
    out = tmp / "out"
    command = [
        sys.executable, "-m", "lm_eval", "--tasks", "xtreme_udpos,xtreme_panx", "--model", "xtreme",
        # overlapping windows and masked outputs (one head serves both tasks; XTREME's own chunks and
        # argmax are checked in test_official_tagging.py): the model_args reach the adapter through lm-eval
        "--model_args", f"pretrained={checkpoint},max_length={MAX_LENGTH},stride=8,batch_size=8,"
                        f"tag_split=windows,tag_outputs=mask",
        "--limit", str(LIMIT), "--device", "cpu", "--output_path", str(out), "--log_samples",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp,
                          # one torch thread: on a shared 2-core machine more threads make a tiny model ~15x slower
                          env={**os.environ, "XTREME_DATA_DIR": str(data), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    (results_file,) = out.rglob("results_*.json")
    samples = {}
    for path in out.rglob("samples_*.jsonl"):
        task = path.name[len("samples_"):].rsplit("_", 1)[0]
        samples[task] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return json.loads(results_file.read_text())["results"], samples, checkpoint


def leaves(name: str) -> list[str]:
    return [TASKS[name].leaf(lang) for lang in TASKS[name].languages]


@pytest.mark.slow
def test_every_language_is_scored_and_groups_are_plain_means(run):
    results, samples, _ = run
    for name in ("udpos", "panx"):
        for leaf in leaves(name):
            assert len(samples[leaf]) == LIMIT, leaf
            for metric in TASKS[name].metrics:
                assert f"{metric},none" in results[leaf], (leaf, metric)
        for metric in TASKS[name].metrics:
            values = [results[leaf][f"{metric},none"] for leaf in leaves(name)]
            assert results[TASKS[name].group][f"{metric},none"] == pytest.approx(sum(values) / len(values))


@pytest.mark.slow
def test_scores_equal_the_metrics_over_the_logged_predictions(run):
    results, samples, _ = run
    for name in ("udpos", "panx"):
        for leaf in leaves(name):
            gold = [s["doc"]["tags"] for s in samples[leaf]]
            pred = [s["filtered_resps"][0] for s in samples[leaf]]
            expected = span_prf(gold, pred)
            expected["token_acc"] = token_accuracy(gold, pred)
            for metric in TASKS[name].metrics:
                assert results[leaf][f"{metric},none"] == pytest.approx(expected[metric]), (leaf, metric)


@pytest.mark.slow
def test_every_word_is_tagged_and_short_sentences_match_a_plain_forward_pass(run):
    import torch

    _, samples, checkpoint = run
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        compared, split = _compare_with_forward_passes(samples, checkpoint)
    finally:
        torch.set_num_threads(threads)
    assert compared > 50 and split > 40  # both kinds really occurred


def _compare_with_forward_passes(samples, checkpoint) -> tuple[int, int]:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    compared = split = 0
    for name in ("udpos", "panx"):
        for leaf in leaves(name):
            for sample in samples[leaf]:
                words, predicted = sample["doc"]["words"], sample["filtered_resps"][0]
                assert len(predicted) == len(words) and set(predicted) <= set(TASKS[name].labels), leaf
                expected = direct_tags(model, tokenizer, words, TASKS[name].labels)
                if expected is None:
                    split += 1
                else:
                    assert predicted == expected, (leaf, sample["doc"]["id"])
                    compared += 1
    return compared, split


@pytest.mark.slow
def test_real_treebanks_and_the_long_sentence_went_through(run):
    _, samples, _ = run
    ewt, _ = udpos.read_conllu_files([UD / TREEBANKS["en"]], "en", "test")
    gsd, _ = udpos.read_conllu_files([UD / TREEBANKS["fr"]], "fr", "test")
    assert [s["doc"]["words"] for s in samples["xtreme-udpos-en"]] == [d["words"] for d in ewt[:LIMIT]]
    assert [s["doc"]["words"] for s in samples["xtreme-udpos-fr"]] == [d["words"] for d in gsd[:LIMIT]]
    for leaf in leaves("panx"):
        first = samples[leaf][0]
        assert first["doc"]["words"] == LONG[0]  # German's "de:" prefixes were cut
        assert len(first["filtered_resps"][0]) == len(LONG[0]) == 154
