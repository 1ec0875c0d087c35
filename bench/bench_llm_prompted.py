"""Prompted path vs the bare model: same prompts, same model, same process (SmolLM2-135M-Instruct).

Generation: XQuAD questions answered through ``HFLM.extract_span`` (our adapter,
lm-eval's ``generate_until`` and its batching) against ``model.generate`` on the very
prompts the adapter rendered, in batches of the same size, with the same greedy
settings, token budget and stop strings. Log-likelihood: classification requests
(premise/hypothesis pairs from Tatoeba, 3 labels) through ``HFLM.classify`` against
one forward pass per (prompt + label) batch summing the label's log-probabilities.
Prints the time ratios (bare / prompted: 1.0 = no overhead; goal >= 0.8 for
generation, >= 0.9 for log-likelihood).

    OMP_NUM_THREADS=1 nice -n 10 python bench/bench_llm_prompted.py --n 16 --batch-size 8
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

import _common as c  # noqa: E402

sys.path.insert(0, str(c.REPO / "tests"))


def requests_of(kind: str, leaf: str, rows: list[tuple]) -> list:
    from lm_eval.api.instance import Instance

    from harness_ext.tasks.prompting import PromptContext

    return [Instance(request_type=kind, doc={}, arguments=(*row, PromptContext.build()), idx=0,  # type: ignore[arg-type]
                     metadata=(leaf, i, 1)) for i, row in enumerate(rows)]


def bare_generate(model, tok, prompts: list[str], batch_size: int, settings: dict):
    import torch

    tok.padding_side = "left"
    outputs: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # lm-eval's order: longest first
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        enc = tok([prompts[i] for i in rows], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=settings["max_gen_toks"], do_sample=False,
                                 stop_strings=settings["until"], tokenizer=tok, pad_token_id=tok.pad_token_id)
        for i, text in zip(rows, tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)):
            for stop in settings["until"]:
                text = text.split(stop)[0]
            outputs[i] = text
    return outputs


def bare_loglikelihood(model, tok, pairs: list[tuple[str, str]], batch_size: int) -> list[float]:
    import torch

    rows = []
    for context, continuation in pairs:
        whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
        rows.append((whole, len(tok(context, add_special_tokens=False)["input_ids"])))
    scores = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        width = max(len(w) for w, _ in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id or 0)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, (w, _) in enumerate(batch):
            ids[r, :len(w)] = torch.tensor(w)
            mask[r, :len(w)] = 1
        with torch.inference_mode():
            logp = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
        for r, (w, n) in enumerate(batch):
            scores.append(float(sum(logp[r, i - 1, w[i]] for i in range(n, len(w)))))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=16, help="documents per kind")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "smollm2-135m-instruct")
    parser.add_argument("--data", type=Path, default=c.DEFAULT_DATA)
    args = parser.parse_args()
    c.set_threads(args.threads)
    c.quiet_transformers()
    from helpers.smollm2 import smollm2_folder
    from lm_eval.models.huggingface import HFLM

    folder = smollm2_folder(args.cache)
    lm = HFLM(pretrained=str(folder), device="cpu", batch_size=args.batch_size)
    model, tok = lm.model, lm.tokenizer

    qa = requests_of("extract_span", "xtreme-xquad-en", c.xquad_pairs(args.data, args.n))
    lm.extract_span(qa)  # warm-up, and the prompts/settings the bare model gets
    prompts = [r.args[-1]["prompt"] for r in qa]
    settings = qa[0].args[-1]["generation"]
    assert all(r.args[-1]["generation"] == settings for r in qa), "one generation setting per task: one batch group"
    same = sum(a == b for a, b in zip(bare_generate(model, tok, prompts, args.batch_size, settings),
                                      (r.args[-1]["output"] for r in qa)))
    pairs = c.tatoeba_english(args.data, 2 * args.n)
    labels = ("entailment", "neutral", "contradiction")
    nli = requests_of("classify", "xtreme-xnli-en", [(pairs[2 * i], pairs[2 * i + 1], labels) for i in range(args.n)])
    lm.classify(nli)
    scored = [(r.args[-1]["prompt"], cont) for r in nli for cont in r.args[-1]["continuations"]]

    generation = c.measure({"prompted extract_span": lambda: lm.extract_span(qa),
                            "bare model.generate": lambda: bare_generate(model, tok, prompts, args.batch_size, settings)},
                           args.rounds)
    loglik = c.measure({"prompted classify": lambda: lm.classify(nli),
                        "bare forward": lambda: bare_loglikelihood(model, tok, scored, args.batch_size)}, args.rounds)
    c.banner(f"SmolLM2-135M-Instruct, CPU, {args.threads} thread(s), batch {args.batch_size}; {c.machine_line()}", [
        f"generation: {args.n} XQuAD en answers, {settings}; outputs equal to bare: {same}/{args.n}",
        *c.ratio_table(generation, "prompted extract_span", args.n, "doc"),
        f"log-likelihood: {args.n} pairs x 3 labels",
        *c.ratio_table(loglik, "prompted classify", args.n, "doc"),
        "ratio to read: the bare row's 'speed vs prompted' below 1.00x means the prompted path is faster; "
        "prompted/bare = 1 / that number",
    ])


if __name__ == "__main__":
    main()
