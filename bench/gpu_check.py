"""One short GPU check of everything GPU-specific: faiss vs torch search, BUCC-size mining,
XLM-R-large-shaped adapter throughput in bf16, peak memory. Prints and writes JSON.

    python bench/gpu_check.py                        # on a GPU machine: <= ~8 minutes on one GPU
    python bench/gpu_check.py --out gpu_check.json   # where the JSON goes (default: gpu_check.json)
    python bench/gpu_check.py --smoke                # tiny sizes, runs on the CPU in seconds (tested)

What it reports (each part is independent: one failing part is recorded and the rest still run):

* ``environment``: GPU name and compute capability, torch/CUDA, the faiss install as
  :mod:`harness_ext.retrieval.faiss_env` judges it (wheels, problem, kernel archs of the
  build, GPUs faiss may use), what ``dtype=auto`` and the ``auto`` search backend pick;
* ``search``: exact top-4 of 10k queries in 100k x 1024 vectors with faiss CPU, faiss GPU
  (when it may run here) and torch on the GPU: times and agreement with faiss CPU (ties
  aside), plus k = 2500 (> faiss's GPU limit) served on the chosen backend;
* ``bucc``: BUCC-size mining, 400k x 400k x 1024, both directions with k = 4 plus ratio
  margin (``harness_ext.retrieval.mining.mine``) on the ``auto`` backend; goal < 10 s on an H100;
* ``mewslix``: Mewsli-X-size ranking, top 20 of 20k queries in a 1M x 768 pool
  (``harness_ext.retrieval.ranking.top_k``, what the Mewsli-X task runs) on the ``auto``
  backend, checked against torch's exact search on the CPU for the first 500 queries (ties aside);
* ``throughput``: a randomly initialised encoder of XLM-R large's shape (24 x 1024,
  16 heads; all-MiniLM's tokenizer) in bf16, our classify / tag / extract_span / embed
  adapters from raw requests next to the bare forward pass over the same pre-built
  batches: ratio floor_time / ours_time, goal >= 0.9;
* ``memory``: peak torch-allocated and peak device-used memory (faiss allocates outside torch).

Timings are wall-clock after ``torch.cuda.synchronize()``; each case's best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

import _common as c  # noqa: E402

import numpy as np  # noqa: E402

FULL = {"search_db": 100_000, "search_q": 10_000, "dim": 1024, "bucc": 400_000, "k_large": 2500,
        "mewslix_pool": 1_000_000, "mewslix_q": 20_000, "mewslix_dim": 768,
        "k_large_db": 20_000, "size": "large", "n_classify": 4000, "n_tag": 2000, "n_qa": 300, "n_embed": 4000}
SMOKE = {"search_db": 2_000, "search_q": 200, "dim": 64, "bucc": 3_000, "k_large": 2100,
         "mewslix_pool": 5_000, "mewslix_q": 300, "mewslix_dim": 64,
         "k_large_db": 2_500, "size": "minilm", "n_classify": 24, "n_tag": 12, "n_qa": 4, "n_embed": 24}
GOALS = {"bucc_seconds": 10.0, "throughput_ratio": 0.9}


# --------------------------------------------------------------------------- helpers
def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def device() -> str:
    return "cuda" if cuda() else "cpu"


class Memory:
    """Peak torch-allocated memory and peak device-used memory (sampled between steps)."""

    def __init__(self) -> None:
        self.peak_used = 0

    def sample(self) -> None:
        if cuda():
            import torch

            free, total = torch.cuda.mem_get_info()
            self.peak_used = max(self.peak_used, total - free)

    def report(self) -> dict[str, Any]:
        if not cuda():
            return {"gpu": None, "peak_rss_mb": round(c.peak_rss_mb(), 1)}
        import torch

        self.sample()
        return {"peak_torch_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                "peak_device_used_mb": round(self.peak_used / 2**20, 1),
                "device_total_mb": round(torch.cuda.mem_get_info()[1] / 2**20, 1),
                "peak_rss_mb": round(c.peak_rss_mb(), 1)}


def best_of(fn: Callable[[], Any], rounds: int, memory: Memory) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(max(1, rounds)):
        wall, _cpu, result = c.time_once(fn)
        memory.sample()
        best = min(best, wall)
    return best, result


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Random unit vectors, made on the GPU when there is one (400k x 1024 on the CPU takes a while)."""
    import torch

    g = torch.Generator(device=device()).manual_seed(seed)
    x = torch.randn(n, dim, generator=g, device=device())
    x = torch.nn.functional.normalize(x, dim=1)
    return x.cpu().numpy()


def agreement(ids: np.ndarray, scores: np.ndarray, ref_ids: np.ndarray, ref_scores: np.ndarray) -> dict[str, Any]:
    """Share of identical neighbour ids, and whether every difference is a tie (scores within 1e-5)."""
    same = ids == ref_ids
    ties_only = bool(np.all(np.abs(scores[~same] - ref_scores[~same]) <= 1e-5)) if (~same).any() else True
    return {"same_ids": round(float(same.mean()), 6), "differences_are_ties": ties_only,
            "max_score_diff": float(np.abs(scores - ref_scores).max())}


# --------------------------------------------------------------------------- parts
def part_environment(sizes: dict) -> dict[str, Any]:
    import torch

    from harness_ext.adapters.xtreme_lm import auto_dtype
    from harness_ext.retrieval import faiss_env, search

    info = faiss_env.faiss_info()
    out: dict[str, Any] = {
        "machine": c.machine_line(), "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
        "gpus": [{"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i))}
                 for i in range(torch.cuda.device_count())] if cuda() else [],
        "faiss": {"distributions": list(info.distributions), "imported": info.module is not None,
                  "gpu_build": info.gpu_build, "problem": info.problem},
        "dtype_auto": auto_dtype(device()), "search_backend_auto": search.resolve_backend("auto"),
    }
    if info.module is not None:
        out["faiss"]["version"] = getattr(info.module, "__version__", None)
        archs = faiss_env.build_archs(info.module) if info.gpu_build else None
        out["faiss"]["build_archs"] = None if archs is None else {"cubins": sorted(archs[0]), "ptx": sorted(archs[1])}
        out["faiss"]["usable_gpus"] = list(faiss_env.faiss_gpus())
    return out


def part_search(sizes: dict, rounds: int, memory: Memory) -> dict[str, Any]:
    from harness_ext.retrieval import faiss_env
    from harness_ext.retrieval.search import FlatIndex

    db = unit_vectors(sizes["search_db"], sizes["dim"], 0)
    q = unit_vectors(sizes["search_q"], sizes["dim"], 1)
    out: dict[str, Any] = {"shape": f"{len(q)} queries x {len(db)} x {sizes['dim']}, k=4", "cases": {}}
    contenders = []
    if faiss_env.faiss_module() is not None:
        contenders.append(("faiss-cpu", "cpu", None))
    if faiss_env.faiss_gpus():
        contenders.append(("faiss-gpu", "gpu", None))
    contenders.append(("torch-" + device(), "torch", device()))
    reference = None
    for name, backend, dev in contenders:
        index = FlatIndex(db, backend=backend, device=dev)
        seconds, (scores, ids) = best_of(lambda: index.search(q, 4), rounds, memory)
        case: dict[str, Any] = {"backend": index.backend, "seconds": round(seconds, 4),
                                "queries_per_s": round(len(q) / seconds, 1)}
        if reference is None:
            reference = (ids, scores, name)
        else:
            case["vs_" + reference[2]] = agreement(ids, scores, reference[0], reference[1])
        out["cases"][name] = case
        del index
    small = db[: sizes["k_large_db"]]
    index = FlatIndex(small, backend="auto")
    seconds, (scores, ids) = best_of(lambda: index.search(q[:100], sizes["k_large"]), 1, memory)
    ref = FlatIndex(small, backend="torch", device="cpu").search(q[:100], sizes["k_large"])
    out["k_above_gpu_limit"] = {"k": sizes["k_large"], "backend": index.backend, "seconds": round(seconds, 4),
                                "vs_torch_cpu": agreement(ids, scores, ref[1], ref[0])}
    return out


def part_bucc(sizes: dict, memory: Memory) -> dict[str, Any]:
    from harness_ext.retrieval.mining import mine
    from harness_ext.retrieval.search import resolve_backend

    n, dim = sizes["bucc"], sizes["dim"]
    x, y = unit_vectors(n, dim, 2), unit_vectors(n, dim, 3)
    y[: n // 10] = x[: n // 10]  # some true pairs, so mining has something to find
    seconds, mined = best_of(lambda: mine(x, y, k=4, backend="auto"), 1, memory)
    found = int(np.sum((mined.src == mined.trg) & (mined.src < n // 10)))
    return {"shape": f"{n} x {n} x {dim}, k=4 both directions + ratio margin + one-to-one",
            "backend": resolve_backend("auto"), "seconds": round(seconds, 3), "goal_seconds": GOALS["bucc_seconds"],
            "goal_met": seconds < GOALS["bucc_seconds"], "planted_pairs_found": f"{found}/{n // 10}"}


def _floor(model: Any, batches: list[dict[str, Any]], kind: str) -> Callable[[], list]:
    import torch

    def run() -> list:
        out = []
        with torch.inference_mode():
            for inputs in batches:
                result = model(**inputs, output_hidden_states=kind == "embed")
                if kind == "extract_span":
                    out.append(result.start_logits.argmax(-1).cpu())
                elif kind == "embed":
                    mask = inputs["attention_mask"].unsqueeze(-1).float()
                    pooled = (result.hidden_states[-1].float() * mask).sum(1) / mask.sum(1)
                    out.append(pooled.cpu())
                else:
                    out.append(result.logits.argmax(-1).cpu())
        return out

    return run


def part_throughput(sizes: dict, rounds: int, dtype: str, data: Path, memory: Memory) -> dict[str, Any]:
    from bench_adapters import UPOS, XNLI, prebuilt_batches

    from harness_ext.adapters.encoder import classify, embed, span, tag
    from harness_ext.adapters.runtime.autobatch import plan_batches
    from harness_ext.adapters.runtime.batching import length_sorted_batches
    from harness_ext.adapters.runtime.settings import AdapterSettings

    dev = device()
    out: dict[str, Any] = {"model": f"{sizes['size']}-shaped encoder ({'24 x 1024' if sizes['size'] == 'large' else 'MiniLM 6 x 384'}), "
                                    f"random weights, {dtype}", "goal_ratio": GOALS["throughput_ratio"], "kinds": {}}

    def one(kind: str, head: str, labels: dict | None, requests: list, columns: dict, run_ours: Callable, n: int,
            **settings_extra: Any) -> None:
        loaded = c.minilm_with_head(head, labels, device=dev, size=sizes["size"])
        c.set_dtype(loaded, dtype)
        settings = AdapterSettings(device=dev, batch_size=None, dtype=dtype, **settings_extra)
        lengths = [len(x) for x in columns["input_ids"]]
        # the floor runs the very batches the adapter cuts (embed keeps its own plan)
        plan = embed.Embedder(loaded, settings).batch_plan if kind == "embed" else plan_batches(settings, loaded.model, dev)
        batches = prebuilt_batches(columns, length_sorted_batches(lengths, plan), dev, loaded.tokenizer.pad_token_id)
        floor = _floor(loaded.model, batches, kind)
        run_ours(loaded, requests, settings)  # warm-up: CUDA kernels, the plan's first OOM halving if any
        floor()
        t_floor, _ = best_of(floor, rounds, memory)
        t_ours, _ = best_of(lambda: run_ours(loaded, requests, settings), rounds, memory)
        ratio = t_floor / t_ours
        out["kinds"][kind] = {"items": n, "tokens": int(sum(lengths)), "floor_seconds": round(t_floor, 4),
                              "ours_seconds": round(t_ours, 4), "ratio": round(ratio, 3),
                              "goal_met": ratio >= GOALS["throughput_ratio"]}
        del loaded, batches
        _free()

    texts = c.tatoeba_english(data, sizes["n_classify"])
    tok = c.minilm_with_head("encoder", device="cpu").tokenizer
    enc = tok(texts, truncation=True, max_length=512)
    cols = {k: enc[k] for k in ("input_ids", "token_type_ids")}
    one("classify", "sequence-classification", XNLI, [c.Request(t, "", tuple(XNLI.values())) for t in texts], cols,
        lambda l, r, s: classify.answer(l, r, s), len(texts))

    sentences = c.ud_sentences(data, sizes["n_tag"])
    enc = tok(sentences, is_split_into_words=True, truncation=True, max_length=512)
    cols = {k: enc[k] for k in ("input_ids", "token_type_ids")}
    one("tag", "token-classification", dict(enumerate(UPOS)), [c.Request(" ".join(w), tuple(w), UPOS) for w in sentences],
        cols, lambda l, r, s: tag.answer(l, r, s), len(sentences))

    pairs = c.xquad_pairs(data, sizes["n_qa"])
    settings = AdapterSettings(device="cpu", batch_size=None)
    qa_loaded = c.minilm_with_head("question-answering", device="cpu", size=sizes["size"])
    windows = span.encode_windows(tok, [q for q, _ in pairs], [x for _, x in pairs],
                                  span.window_length(qa_loaded, settings), settings.stride)
    del qa_loaded
    keys = [k for k in ("input_ids", "token_type_ids") if k in windows.features[0]]
    cols = {k: [f[k] for f in windows.features] for k in keys}
    one("extract_span", "question-answering", None, [c.Request(q, x) for q, x in pairs], cols,
        lambda l, r, s: span.answer(l, r, s), len(pairs))

    texts = c.tatoeba_pairs(data, sizes["n_embed"])
    enc = tok(texts, truncation=True, max_length=512)
    cols = {k: enc[k] for k in ("input_ids", "token_type_ids")}
    # a fresh Embedder per call and no cache: the forward passes are timed, not cache hits
    one("embed", "encoder", None, [c.Request(t) for t in texts], cols,
        lambda l, r, s: embed.Embedder(l, s).embed([q.args[0] for q in r]), len(texts), use_cache=False)
    return out


def _free() -> None:
    import gc

    gc.collect()
    if cuda():
        import torch

        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- main
def part_mewslix(sizes: dict, memory: Memory) -> dict[str, Any]:
    from harness_ext.retrieval.ranking import top_k
    from harness_ext.retrieval.search import resolve_backend

    n, q, dim = sizes["mewslix_pool"], sizes["mewslix_q"], sizes["mewslix_dim"]
    pool, queries = unit_vectors(n, dim, 4), unit_vectors(q, dim, 5)
    seconds, (scores, ids) = best_of(lambda: top_k(queries, pool, 20, backend="auto"), 1, memory)
    ref_scores, ref_ids = top_k(queries[:500], pool, 20, backend="torch")
    return {"shape": f"{q} queries x {n} x {dim}, k=20 (cosine, exact)", "backend": resolve_backend("auto"),
            "seconds": round(seconds, 3), "queries_per_s": round(q / seconds, 1),
            "vs_torch": agreement(ids[:500], scores[:500], ref_ids, ref_scores)}


def run(smoke: bool, rounds: int, out_path: Path, data: Path, parts: list[str]) -> dict[str, Any]:
    import torch

    c.quiet_transformers()
    sizes = SMOKE if smoke else FULL
    dtype = "bfloat16" if cuda() else "float32"
    if cuda():
        torch.cuda.reset_peak_memory_stats()
    memory = Memory()
    report: dict[str, Any] = {
        "measured_on": torch.cuda.get_device_name(0) if cuda() else "cpu (no GPU: these are NOT GPU figures)",
        "smoke": smoke, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sizes": sizes, "parts": {},
    }
    start = time.perf_counter()
    jobs: dict[str, Callable[[], dict]] = {
        "environment": lambda: part_environment(sizes),
        "search": lambda: part_search(sizes, rounds, memory),
        "bucc": lambda: part_bucc(sizes, memory),
        "mewslix": lambda: part_mewslix(sizes, memory),
        "throughput": lambda: part_throughput(sizes, rounds, dtype, data, memory),
    }
    for name in parts:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            report["parts"][name] = jobs[name]()
        except Exception as exc:  # noqa: BLE001 - one failing part must not lose the others' figures
            report["parts"][name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
        report["parts"][name]["part_seconds"] = round(time.perf_counter() - t0, 2)
        print(json.dumps(report["parts"][name], indent=1, default=str)[:4000], flush=True)
        _free()
    report["memory"] = memory.report()
    report["total_seconds"] = round(time.perf_counter() - start, 1)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    tmp.replace(out_path)  # atomic: a killed run leaves the previous file, not half a file
    print(f"== memory {report['memory']}\n== total {report['total_seconds']} s; written to {out_path}", flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CPU is fine): checks the script, measures nothing")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=c.DEFAULT_DATA, help="the shared data folder (Tatoeba, UD, XQuAD)")
    parser.add_argument("--parts", default="environment,search,bucc,mewslix,throughput")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    c.set_threads(args.threads)
    parts = [p for p in args.parts.split(",") if p]
    report = run(args.smoke, args.rounds, args.out, args.data, parts)
    return 1 if any("error" in report["parts"][p] for p in parts) else 0


if __name__ == "__main__":
    raise SystemExit(main())
