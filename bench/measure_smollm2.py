"""Quality measurements on a real decoder LLM (SmolLM2-135M-Instruct) that chose the prompted defaults.

Not a speed benchmark (that is ``bench_llm_prompted.py``): it prints the tables that
``docs/llm.md`` quotes, so the choices can be re-measured on another model.

* ``first-position``: retrieval (Tatoeba) accuracy with the first position of each
  sentence kept in / left out of the mean, with and without a BOS token added, at the
  default layer. SmolLM2's tokenizer adds no BOS, and the state of its first token is
  an attention sink (norm ~1e4 against ~1e2 elsewhere) that swamps the mean.
* ``prompts``: candidate prompts / answer formats / shots per task through
  ``lm_eval --model hf`` (one run per candidate), printing preset x task -> metric,
  ``unparsable``, ``not_in_context``, ``empty`` and seconds.

    python bench/measure_smollm2.py first-position --lang de
    python bench/measure_smollm2.py prompts --limit 20
    python bench/measure_smollm2.py prompts --tasks xnli pawsx panx --data-dir DIR   # with real data of those

Cells without data (XNLI, PAWS-X and PAN-X are not offline here) print "no data".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
DATA = REPO.parent / "shared" / "data"


def model_folder(cache: Path) -> Path:
    from helpers.smollm2 import smollm2_folder

    return smollm2_folder(cache)


# --------------------------------------------------------------------------- first position
def first_position(folder: Path, lang: str, layer: int | None, n: int) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness_ext.adapters.encoder.embed import hidden_state_index
    from harness_ext.adapters.prompted.adapter import default_layer
    from xtreme_tasks.data.tatoeba import laser_code

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    blocks = model.config.num_hidden_layers
    index = hidden_state_index(default_layer(blocks) if layer is None else layer, blocks)
    code = laser_code(lang)
    xx = (DATA / "tatoeba" / f"tatoeba.{code}-eng.{code}").read_text(encoding="utf-8").splitlines()[:n]
    en = (DATA / "tatoeba" / f"tatoeba.{code}-eng.eng").read_text(encoding="utf-8").splitlines()[:n]

    def states(texts: list[str], bos: bool) -> list:
        out = []
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            if bos:
                ids = [tok.bos_token_id] + ids
            with torch.inference_mode():
                hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[index][0]
            out.append(hidden.float().numpy())
        return out

    def accuracy(a: list, b: list, skip: int) -> float:
        va = np.stack([h[skip:].mean(0) if len(h) > skip else h.mean(0) for h in a])
        vb = np.stack([h[skip:].mean(0) if len(h) > skip else h.mean(0) for h in b])
        va /= np.linalg.norm(va, axis=1, keepdims=True)
        vb /= np.linalg.norm(vb, axis=1, keepdims=True)
        return 100.0 * float(np.mean(np.argmax(va @ vb.T, axis=1) == np.arange(len(a))))

    plain_x, plain_e = states(xx, False), states(en, False)
    bos_x, bos_e = states(xx, True), states(en, True)
    norms = [float(np.linalg.norm(h[0])) for h in plain_x[:50]], [float(np.linalg.norm(h[1:], axis=1).mean()) for h in plain_x[:50] if len(h) > 1]
    print(f"tatoeba {lang}, {n} pairs, hidden_states[{index}] of {blocks} blocks; "
          f"first-position norm {np.median(norms[0]):.0f} vs others {np.median(norms[1]):.0f} (median)")
    print("| tokens | first position | acc (xx->en) | acc (en->xx) |\n|---|---|---:|---:|")
    for name, (a, b), skip in (("as tokenised (no BOS)", (plain_x, plain_e), 0), ("as tokenised (no BOS)", (plain_x, plain_e), 1),
                               ("BOS added", (bos_x, bos_e), 0), ("BOS added", (bos_x, bos_e), 1)):
        print(f"| {name} | {'left out' if skip else 'kept'} | {accuracy(a, b, skip):.1f} | {accuracy(b, a, skip):.1f} |")


# --------------------------------------------------------------------------- prompts
UPOS_TAGS_LINE = "Tags: ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X."
OLD_QA = {"instruction": "Answer the question with the shortest span of words copied exactly from the context.",
          "input": "Context: {context}\nQuestion: {question}\nAnswer:"}
TAGS_ONLY = {"instruction": "Write the Universal Dependencies part-of-speech tag of every word of the sentence, in order, "
                            "one tag per word, separated by spaces, on one line. " + UPOS_TAGS_LINE,
             "input": "Sentence: {text}\nTags:", "format": "tags"}
XCOPA_LANGS = ("et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr", "vi", "zh")


@dataclass(frozen=True)
class Candidate:
    """One cell row: a prompt spec (starting from the default preset) on some leaves at some shots."""

    name: str
    task: str
    leaves: tuple[str, ...]
    spec: dict
    shots: int = 0
    limit: int | None = None  # documents per leaf (None: --limit)


def _leaves(task: str, *langs: str) -> tuple[str, ...]:
    return tuple(f"xtreme-{task}-{lang}" for lang in langs)


CANDIDATES: tuple[Candidate, ...] = (
    # QA: the old default, its stop sequence, lm-eval's layout, and the default chosen from them
    Candidate("instruction, stop at a blank line (old default)", "xquad", _leaves("xquad", "en"), {"xquad": {**OLD_QA, "until": ["\n\n"]}}),
    Candidate("instruction, stop at a newline", "xquad", _leaves("xquad", "en"), {"xquad": {**OLD_QA, "until": ["\n"]}}),
    Candidate("default: no instruction, stop at a newline", "xquad", _leaves("xquad", "en", "de"), {"preset": "default"}),
    Candidate("lm-eval", "xquad", _leaves("xquad", "en", "de"), {"preset": "lm-eval"}),
    # UD-POS: answer formats x shots (English shots on the French test set too)
    Candidate("word/TAG (default)", "udpos", _leaves("udpos", "en"), {"preset": "default"}),
    Candidate("word/TAG, 3-shot", "udpos", _leaves("udpos", "en", "fr"), {"preset": "default"}, 3),
    Candidate("tags only", "udpos", _leaves("udpos", "en"), {"udpos": TAGS_ONLY}),
    Candidate("tags only, 3-shot", "udpos", _leaves("udpos", "en"), {"udpos": TAGS_ONLY}, 3),
    # XCOPA (a log-likelihood choice, the one classification-style task with real data offline)
    Candidate("default: instruction, `{premise} What was the {question}?\\nAnswer:` + choice", "xcopa",
              _leaves("xcopa", *XCOPA_LANGS), {"preset": "default"}, limit=100),
    Candidate("no instruction, the same input", "xcopa", _leaves("xcopa", *XCOPA_LANGS),
              {"xcopa": {"instruction": "", "input": "{context}\nAnswer:"}}, limit=100),
    Candidate("lm-eval", "xcopa", _leaves("xcopa", *XCOPA_LANGS), {"preset": "lm-eval"}, limit=100),
    # measured only with real data (--data-dir): none of XNLI, PAWS-X, PAN-X is offline here
    Candidate("default", "xnli", _leaves("xnli", "en", "de"), {"preset": "default"}),
    Candidate("no instruction", "xnli", _leaves("xnli", "en", "de"), {"xnli": {"instruction": ""}}),
    Candidate("lm-eval", "xnli", _leaves("xnli", "en", "de"), {"preset": "lm-eval"}),
    Candidate("default", "pawsx", _leaves("pawsx", "en", "de"), {"preset": "default"}),
    Candidate("lm-eval", "pawsx", _leaves("pawsx", "en", "de"), {"preset": "lm-eval"}),
    Candidate("spans (default)", "panx", _leaves("panx", "en", "de"), {"preset": "default"}),
    Candidate("spans, 3-shot", "panx", _leaves("panx", "en", "de"), {"preset": "default"}, 3),
)
METRICS = {"xquad": ("f1", "em"), "udpos": ("f1", "token_acc"), "xcopa": ("acc",), "xnli": ("acc",),
           "pawsx": ("acc",), "panx": ("f1",)}
COUNTS = ("unparsable", "not_in_context", "empty")


def builtin_data(root: Path) -> Path:
    """Real data only: XQuAD, UD-POS en/fr (+ English shots written from EWT, as the tests do), XCOPA, Tatoeba."""
    from test_llm_prompted import write_data

    data = write_data(root)
    for task in ("xnli", "pawsx"):  # the tests' three synthetic pairs would only pretend to measure
        shutil.rmtree(data / task)
    (data / "udpos" / "fr").mkdir()
    (data / "udpos" / "fr" / "fr_gsd-ud-test.conllu").symlink_to(DATA / "udpos" / "fr_gsd-ud-test.conllu")
    (data / "xcopa").symlink_to(DATA / "xcopa")
    return data


def has_data(leaf: str, data: Path, shots: int) -> bool:
    from xtreme_tasks.data import load_docs

    _, task, lang = leaf.split("-", 2)
    try:
        load_docs(task, lang, data_dir=data)
        if shots:
            load_docs(task, "en", "validation", data_dir=data)
    except Exception:  # noqa: BLE001 - any missing/unreadable file: the cell is "no data"
        return False
    return True


def prompts(folder: Path, limit: int, only: list[str] | None, tasks: list[str] | None, data_dir: Path | None) -> None:
    """One in-process HFLM, every candidate through ``lm_eval.simple_evaluate`` on the same documents;
    seconds are this process's CPU time (steadier than wall time on a shared box) and wall time."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from harness_ext import api
    from harness_ext.adapters.prompted.adapter import set_options

    data = data_dir or builtin_data(Path(tempfile.mkdtemp(prefix="smollm2-measure-")) / "data")
    os.environ["XTREME_DATA_DIR"] = str(data)
    lm = HFLM(pretrained=str(folder), device="cpu", batch_size=8)
    manager = api.xtreme_task_manager()
    rows = []
    for c in CANDIDATES:
        if (only and c.name not in only) or (tasks and c.task not in tasks):
            continue
        leaves = [leaf for leaf in c.leaves if has_data(leaf, data, c.shots)]
        if not leaves:
            rows.append((c, "-", "no data", {}, None, None))
            continue
        set_options(lm, prompts=c.spec)
        cpu, wall = time.process_time(), time.perf_counter()
        out = lm_eval.simple_evaluate(model=lm, tasks=leaves, limit=c.limit or limit, num_fewshot=c.shots,
                                      bootstrap_iters=0, task_manager=manager, log_samples=False)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        results = {leaf: out["results"][leaf] for leaf in leaves}
        print(json.dumps({"candidate": c.name, "task": c.task, "shots": c.shots, "cpu_seconds": round(cpu, 1),
                          "wall_seconds": round(wall, 1), "scores": {leaf: {k: v for k, v in r.items() if k != "alias"}
                                                                     for leaf, r in results.items()}}), flush=True)
        groups = [(leaf[len(f"xtreme-{c.task}-"):], [results[leaf]]) for leaf in leaves]
        if len(leaves) > 3:  # many languages: their mean (per language in the JSON line above)
            groups = [(f"{len(leaves)} languages, mean", list(results.values()))]
        for label, scores in groups:
            metric = "/".join(f"{np.mean([s[m + ',none'] for s in scores]):.1f}" for m in METRICS[c.task])
            counts = {k: sum(s[k + ",none"] for s in scores) if all(k + ",none" in s for s in scores) else None
                      for k in COUNTS}
            rows.append((c, label, metric, counts, cpu / len(groups), wall / len(groups)))
    docs = ", ".join(f"{t}: {c.limit}" for t, c in {c.task: c for c in CANDIDATES if c.limit}.items())
    print(f"\nSmolLM2-135M-Instruct, CPU; {limit} documents per leaf ({docs})\n")
    print("| task | candidate | shots | lang | metric | value | unparsable | not_in_context | empty | CPU s | wall s |")
    print("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for c, label, metric, counts, cpu, wall in rows:
        cells = " | ".join("-" if counts.get(k) is None else f"{counts[k]:.1f}" if k == "not_in_context" else
                           f"{counts[k]:.0f}" for k in COUNTS)
        timing = "- | -" if cpu is None else f"{cpu:.0f} | {wall:.0f}"
        print(f"| {c.task} | {c.name} | {c.shots} | {label} | {'/'.join(METRICS[c.task])} | {metric} | {cells} | {timing} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("first-position", "prompts"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "smollm2-135m-instruct")
    parser.add_argument("--lang", default="de")
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="candidate names (prompts)")
    parser.add_argument("--tasks", nargs="*", help="only these tasks' candidates (prompts): " + " ".join(METRICS))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="an XTREME data folder (prompts; default: the real data of ../shared/data only)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    folder = model_folder(args.cache)
    if args.what == "first-position":
        first_position(folder, args.lang, args.layer, args.pairs)
    else:
        prompts(folder, args.limit, args.only, args.tasks, args.data_dir)


if __name__ == "__main__":
    main()
