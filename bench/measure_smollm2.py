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
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
#: candidate -> (leaf, prompts spec, shots); every spec starts from the default preset
OLD_QA = {"instruction": "Answer the question with the shortest span of words copied exactly from the context.",
          "input": "Context: {context}\nQuestion: {question}\nAnswer:"}
CANDIDATES: dict[str, tuple[str, dict, int]] = {
    "instruction, stop at a blank line": ("xtreme-xquad-en", {"xquad": {**OLD_QA, "until": ["\n\n"]}}, 0),
    "instruction, stop at a newline": ("xtreme-xquad-en", {"xquad": {**OLD_QA, "until": ["\n"]}}, 0),
    "lm-eval": ("xtreme-xquad-en", {"preset": "lm-eval"}, 0),
    "no instruction, stop at a newline (default)": ("xtreme-xquad-en", {"preset": "default"}, 0),
    "word/TAG (default)": ("xtreme-udpos-en", {"preset": "default"}, 0),
    "word/TAG, 3-shot": ("xtreme-udpos-en", {"preset": "default"}, 3),
    "tags only": ("xtreme-udpos-en", {"udpos": {
        "instruction": "Write the Universal Dependencies part-of-speech tag of every word of the sentence, in order, "
                       "one tag per word, separated by spaces, on one line. " + UPOS_TAGS_LINE,
        "input": "Sentence: {text}\nTags:", "format": "tags"}}, 0),
    "tags only, 3-shot": ("xtreme-udpos-en", {"udpos": {
        "instruction": "Write the Universal Dependencies part-of-speech tag of every word of the sentence, in order, "
                       "one tag per word, separated by spaces, on one line. " + UPOS_TAGS_LINE,
        "input": "Sentence: {text}\nTags:", "format": "tags"}}, 3),
}
METRICS = {"xtreme-xquad-en": ("f1", "em"), "xtreme-udpos-en": ("f1", "token_acc")}


def prompts(folder: Path, limit: int, only: list[str] | None) -> None:
    """One in-process HFLM, every candidate through ``lm_eval.simple_evaluate`` on the same documents."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    from harness_ext import api
    from harness_ext.adapters.prompted.adapter import set_options
    from test_llm_prompted import write_data

    data = write_data(Path(tempfile.mkdtemp(prefix="smollm2-measure-")) / "data")
    os.environ["XTREME_DATA_DIR"] = str(data)
    lm = HFLM(pretrained=str(folder), device="cpu", batch_size=8)
    manager = api.xtreme_task_manager()
    rows = []
    for name, (leaf, spec, shots) in CANDIDATES.items():
        if only and name not in only:
            continue
        set_options(lm, prompts=spec)
        start = time.perf_counter()
        out = lm_eval.simple_evaluate(model=lm, tasks=[leaf], limit=limit, num_fewshot=shots, bootstrap_iters=0,
                                      task_manager=manager, log_samples=False)
        seconds = time.perf_counter() - start
        scores = out["results"][leaf]
        metric = "/".join(f"{scores[m + ',none']:.1f}" for m in METRICS[leaf])
        extra = {k: scores.get(k + ",none") for k in ("unparsable", "not_in_context", "empty")}
        rows.append((name, leaf, "/".join(METRICS[leaf]), metric, extra, seconds))
        print(json.dumps({"candidate": name, "leaf": leaf, "scores": {k: v for k, v in scores.items() if k != "alias"},
                          "seconds": round(seconds, 1)}), flush=True)
    print(f"\n{limit} documents per cell, SmolLM2-135M-Instruct, CPU\n")
    print("| candidate | leaf | metric | value | unparsable | not_in_context | empty | seconds |\n|---|---|---|---:|---:|---:|---:|---:|")
    for name, leaf, metric_name, metric, extra, seconds in rows:
        cells = " | ".join("-" if v is None else f"{v:.1f}" if isinstance(v, float) else str(v) for v in extra.values())
        print(f"| {name} | {leaf} | {metric_name} | {metric} | {cells} | {seconds:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("first-position", "prompts"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "smollm2-135m-instruct")
    parser.add_argument("--lang", default="de")
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--only", nargs="*", help="candidate names (prompts)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    folder = model_folder(args.cache)
    if args.what == "first-position":
        first_position(folder, args.lang, args.layer, args.pairs)
    else:
        prompts(folder, args.limit, args.only)


if __name__ == "__main__":
    main()
