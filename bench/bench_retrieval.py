"""Retrieval choices, measured as ratios: batching plan, embedding cache, layer sweep, search backends.

    python bench/bench_retrieval.py                          # CPU, a few minutes
    python bench/bench_retrieval.py --parts search --n 50000 --dim 768
    python bench/bench_retrieval.py --device cuda --parts batching,search   # on a GPU box (faiss-gpu for 'gpu')

Parts (``--parts``):

1. **batching**: our ``Embedder`` (MiniLM, mean pooling) on real Tatoeba sentences
   (both sides of several language pairs) with the default plan (<= 256 sentences and
   <= 4096 padded tokens per batch) vs count-only batches of 256 and of 32. Prints the
   padded-token overhead of each plan and the time ratios; vectors must agree to 1e-5.
2. **cache**: embedding N texts cold vs reading them back from the on-disk cache.
3. **sweep**: all 7 hidden states of MiniLM (a layer sweep): 7 uncached runs, one per
   layer, vs one run with ``cache_layers=all`` followed by 6 runs that hit the cache.
4. **search**: exact top-4 of N random unit queries in N database vectors: faiss CPU
   (``IndexFlatIP``) vs torch ``matmul`` + ``topk`` vs faiss GPU (sharded over all GPUs,
   only when a faiss GPU build sees a GPU); neighbour indices must be identical.

Timing follows bench/_common.py: contenders alternate within one process over
``--rounds`` rounds and the best round is kept; ratios are what to read (the dev box
is 2 shared cores, where absolute times swing several-fold).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402

import _common as c  # noqa: E402


def load_minilm(device: str, dtype: str):
    from harness_ext.backends import load_checkpoint

    return load_checkpoint(c.minilm_path(), "encoder", device=device, dtype=dtype)


def settings(device: str, dtype: str, **kwargs):
    from harness_ext.adapters.runtime.settings import AdapterSettings

    kwargs.setdefault("use_cache", False)
    return AdapterSettings(device=device, dtype=dtype, layer=-1, pooling="mean", **kwargs)


def padding_overhead(loaded, texts: list[str], batch_size: int, budget: int | None) -> float:
    from harness_ext.adapters.runtime.batching import length_sorted_batches

    lengths = [len(ids) for ids in loaded.tokenizer(texts, truncation=True, max_length=512)["input_ids"]]
    batches = length_sorted_batches(lengths, batch_size, budget)
    return sum(max(lengths[i] for i in b) * len(b) for b in batches) / sum(lengths)


def part_batching(args, loaded) -> None:
    from harness_ext.adapters.encoder.embed import Embedder

    texts = list(dict.fromkeys(c.tatoeba_pairs(args.data, args.n_texts)))
    plans = {
        "ours (256, 4096 tok)": dict(batch_size=256),
        "count-only 256": dict(batch_size=256, extra={"max_batch_tokens": 10**9}),
        "count-only 32": dict(batch_size=32, extra={"max_batch_tokens": 10**9}),
        "256, 2048 tok": dict(batch_size=256, extra={"max_batch_tokens": 2048}),
    }
    outputs: dict[str, np.ndarray] = {}

    def case(name, kwargs):
        def run():
            outputs[name] = Embedder(loaded, settings(args.device, args.dtype, **kwargs)).embed(texts)
        return run

    timings = c.measure({name: case(name, kw) for name, kw in plans.items()}, args.rounds)
    reference = outputs["ours (256, 4096 tok)"]
    lines = [f"{len(texts)} distinct Tatoeba sentences; padded tokens / real tokens per plan:"]
    for name, kw in plans.items():
        budget = (kw.get("extra") or {}).get("max_batch_tokens", 4096)
        lines.append(f"    {name:<28s} {padding_overhead(loaded, texts, kw['batch_size'], budget):.2f}x")
        assert np.allclose(outputs[name], reference, atol=1e-5), name
    lines.append("vectors of every plan agree to 1e-5")
    lines += c.ratio_table(timings, "count-only 256", len(texts), "sent")
    c.banner("batching plan", lines)


def part_cache(args, loaded) -> None:
    from harness_ext.adapters.encoder.embed import Embedder

    texts = list(dict.fromkeys(c.tatoeba_pairs(args.data, args.n_texts)))
    with tempfile.TemporaryDirectory() as tmp:
        cold = Embedder(loaded, settings(args.device, args.dtype, use_cache=True, cache_dir=tmp))
        wall, cpu, first = c.time_once(lambda: cold.embed(texts))
        warm_timings = c.measure(
            {"cache hit": lambda: Embedder(loaded, settings(args.device, args.dtype, use_cache=True, cache_dir=tmp)).embed(texts)},
            args.rounds,
        )
        again = Embedder(loaded, settings(args.device, args.dtype, use_cache=True, cache_dir=tmp))
        np.testing.assert_array_equal(again.embed(texts), first)
        assert again.forward_calls == 0
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*")) / 2**20
    hit = warm_timings["cache hit"]
    c.banner("embedding cache", [
        f"{len(texts)} texts: cold embed {wall:.2f} s wall / {cpu:.2f} s cpu; cache hit {hit.best_wall:.3f} s wall",
        f"cache hit is {wall / hit.best_wall:.0f}x faster (wall), {cpu / hit.best_cpu:.0f}x (cpu); {size:.1f} MiB on disk",
        "hit vectors are bit-identical to the cold ones; 0 forward passes on the hit",
    ])


def part_sweep(args, loaded) -> None:
    from harness_ext.adapters.encoder.embed import Embedder, num_blocks

    texts = list(dict.fromkeys(c.tatoeba_pairs(args.data, args.n_texts // 2)))
    layers = list(range(-(num_blocks(loaded.model) + 1), 0))

    def per_layer():
        return [Embedder(loaded, _layer_settings(args, layer)).embed(texts) for layer in layers]

    def with_cache():
        with tempfile.TemporaryDirectory() as tmp:
            first = Embedder(loaded, _layer_settings(args, layers[0], cache_dir=tmp, extra={"cache_layers": "all"}))
            out = [first.embed(texts)]
            for layer in layers[1:]:
                embedder = Embedder(loaded, _layer_settings(args, layer, cache_dir=tmp))
                out.append(embedder.embed(texts))
                assert embedder.forward_calls == 0
            return out

    results = {}
    timings = c.measure({"one run per layer": lambda: results.setdefault("a", per_layer()),
                         "cache_layers=all": lambda: results.setdefault("b", with_cache())}, args.rounds)
    for a, b in zip(results["a"], results["b"]):
        assert np.allclose(a, b, atol=1e-6)
    c.banner(f"layer sweep over {len(layers)} hidden states", [
        f"{len(texts)} texts; every layer's vectors agree between the two ways",
        *c.ratio_table(timings, "one run per layer", len(texts) * len(layers), "vec"),
    ])


def _layer_settings(args, layer: int, **kwargs):
    from harness_ext.adapters.runtime.settings import AdapterSettings

    kwargs.setdefault("use_cache", "cache_dir" in kwargs)
    return AdapterSettings(device=args.device, dtype=args.dtype, layer=layer, pooling="mean", **kwargs)


def part_search(args) -> None:
    from harness_ext.retrieval.search import faiss_gpu_count, knn, l2_normalize

    rng = np.random.default_rng(0)
    queries = l2_normalize(rng.standard_normal((args.n, args.dim)).astype(np.float32))
    database = l2_normalize(rng.standard_normal((args.n, args.dim)).astype(np.float32))
    results = {}
    cases = {"faiss cpu": "cpu", "torch matmul+topk": "torch"}
    if faiss_gpu_count() > 0:
        cases["faiss gpu (sharded)"] = "gpu"
    timings = c.measure({name: (lambda b=b, name=name: results.__setitem__(name, knn(queries, database, 4, backend=b)))
                         for name, b in cases.items()}, args.rounds)
    ref_scores, ref_ids = results["faiss cpu"]
    lines = [f"{args.n} queries x {args.n} database vectors, d={args.dim}, k=4"]
    for name, (scores, ids) in results.items():
        same = np.array_equal(ids, ref_ids)
        lines.append(f"    {name:<28s} indices identical to faiss cpu: {same}; "
                     f"max |score diff| {np.abs(scores - ref_scores).max():.2e}")
    if "faiss gpu (sharded)" not in results:
        lines.append("    faiss gpu: not run (needs a faiss GPU build and a visible GPU)")
    lines += c.ratio_table(timings, "faiss cpu", args.n, "query")
    c.banner("exact k-NN search backends", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="batching,cache,sweep,search")
    parser.add_argument("--data", type=Path, default=c.DEFAULT_DATA)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n-texts", type=int, default=3000, help="sentences for batching/cache (sweep uses half)")
    parser.add_argument("--n", type=int, default=20000, help="search: queries = database size")
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    c.set_threads(args.threads)
    c.quiet_transformers()
    print(c.machine_line())
    parts = args.parts.split(",")
    loaded = load_minilm(args.device, args.dtype) if {"batching", "cache", "sweep"} & set(parts) else None
    for part in parts:
        if part == "search":
            part_search(args)
        else:
            {"batching": part_batching, "cache": part_cache, "sweep": part_sweep}[part](args, loaded)


if __name__ == "__main__":
    main()
