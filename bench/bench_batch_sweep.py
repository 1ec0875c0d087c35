"""Forward-pass time vs batch size and token budget: where the CPU default of autobatch.py comes from.

    python bench/bench_batch_sweep.py                     # 1 thread, ~3 CPU-minutes
    python bench/bench_batch_sweep.py --threads 2 --sizes 8,32,128 --budgets 1024,4096
    python bench/bench_batch_sweep.py --device cuda --threads 16 --sizes 32,128,512 --budgets 16384,65536

The all-MiniLM-L6-v2 encoder (no head) on two kinds of input: 1000 Tatoeba English
sentences (short) and 128 XQuAD paragraphs cut at 384 tokens (long, like QA
windows). Batches are length-sorted and padded per batch, built before the clock
starts, so only the forward passes are timed; each plan is a fixed example count or
a token budget (padded tokens per batch, at most 64 examples).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

import _common as c  # noqa: E402
from bench_adapters import floor_runner, prebuilt_batches  # noqa: E402


def inputs(data: Path, tokenizer: Any) -> dict[str, dict[str, list[list[int]]]]:
    """Token columns of the short and the long input set."""
    short = c.tatoeba_english(data, 1000)
    raw = json.loads((data / "xquad" / "xquad.en.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for article in raw["data"] for p in article["paragraphs"]][:128]
    out = {}
    for name, texts in (("Tatoeba (short)", short), ("384-token windows", contexts)):
        enc = tokenizer(texts, truncation=True, max_length=384)
        out[name] = {k: enc[k] for k in ("input_ids", "token_type_ids")}
    return out


def main(argv: list[str] | None = None) -> None:
    from harness_ext.adapters.runtime.autobatch import BatchPlan
    from harness_ext.adapters.runtime.batching import length_sorted_batches

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8,16,32,64,128,256", help="fixed examples per batch")
    parser.add_argument("--budgets", default="512,1024,2048,4096", help="padded tokens per batch (<= 64 examples)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", type=Path, default=c.DEFAULT_DATA)
    args = parser.parse_args(argv)
    c.set_threads(args.threads)
    loaded = c.minilm_with_head("encoder", device=args.device)
    print(c.machine_line())
    plans: dict[str, BatchPlan] = {f"batch {s}": BatchPlan(int(s)) for s in args.sizes.split(",")}
    plans.update({f"budget {b}": BatchPlan(64, int(b)) for b in args.budgets.split(",")})

    class Hidden:  # floor_runner reads .logits; the bare encoder has last_hidden_state
        def __init__(self, model: Any) -> None:
            self.model = model

        def __call__(self, **kw: Any) -> Any:
            out = self.model(**kw)
            out.logits = out.last_hidden_state[..., :1]
            return out

    model = Hidden(loaded.model)
    report = []
    for name, columns in inputs(args.data, loaded.tokenizer).items():
        lengths = [len(x) for x in columns["input_ids"]]
        cases: dict[str, Callable[[], Any]] = {}
        for label, plan in plans.items():
            batches = length_sorted_batches(lengths, plan)
            cases[label] = floor_runner(model, prebuilt_batches(columns, batches, args.device,
                                                                 loaded.tokenizer.pad_token_id), "cls")
        print(f"\n-- {name}: {len(lengths)} texts, {sum(lengths)} tokens", flush=True)
        timings = c.measure(cases, args.rounds)
        best = min(timings.values(), key=lambda t: t.best_cpu)
        report.append(f"[{name}] {len(lengths)} texts, {sum(lengths)} tokens; cpu s (wall s), best of {args.rounds}:")
        report += [f"    {label:<14s} {t.best_cpu:7.2f} ({t.best_wall:7.2f})  {t.best_cpu / best.best_cpu:5.2f}x the best"
                   for label, t in timings.items()]
    print("\n== all results")
    print(c.machine_line())
    for line in report:
        print(f"   {line}")


if __name__ == "__main__":
    main()
