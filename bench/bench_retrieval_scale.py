"""Retrieval at scale: embedding throughput, exact k-NN search and margin mining vs corpus size.

    python bench/bench_retrieval_scale.py                            # CPU defaults, a few minutes
    python bench/bench_retrieval_scale.py --sizes 10000,50000,100000 --dim 768
    python bench/bench_retrieval_scale.py --parts search --sizes 400000 --dim 1024 --threads 16   # GPU box

Three parts (``--parts embed,search,mine``):

1. **embed**: our embed adapter (``Embedder``, ``pooling=st``: what the checkpoint
   folder declares, here mean pooling + normalise, max 256 tokens) vs
   sentence-transformers' ``encode`` on the same all-MiniLM-L6-v2 folder and the same
   de-duplicated Tatoeba sentences (both sides of many language pairs); vectors must
   agree to 1e-5.
2. **search**: exact 4-NN of N random unit vectors (queries) in N others (database),
   d=768: our ``FlatIndex`` (faiss ``IndexFlatIP``, what XTREME's ``knnCPU`` uses) vs
   a plain torch ``matmul`` + ``topk`` over query blocks, for each N in ``--sizes``.
3. **mine**: the margin stage of BUCC mining on the search results (ratio margin
   over both directions' 4-NN, best candidate per sentence, greedy one-to-one):
   ours (``harness_ext.retrieval.mining``, vectorised) vs the official script's
   approach (``third_party/utils_retrieve.py``: one Python ``x[i].dot(y[j])`` per
   candidate), re-implemented here from reading it. The end-to-end mining time is
   two searches (both directions) plus this stage; at the smallest size (up to
   ``--check-max``) ``mining.mine`` is also run end to end and its pairs checked
   against the official-style result.

The growth of each part with N is fitted (time ~ N^p) and used for an EXTRAPOLATION
to BUCC's size (400k x 400k, d=1024, both directions), printed as such: it is
arithmetic on the measured points, not a measurement.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402

import _common as c  # noqa: E402

BUCC_N = 400_000
BUCC_DIM = 1024
TORCH_QUERY_BLOCK = 4096
TORCH_MAX_SCORES = 1 << 26


# --------------------------------------------------------------------------- contenders
def torch_knn(queries: np.ndarray, database: np.ndarray, k: int, device: str = "cpu",
              block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Plain torch: ``q @ db.T`` then ``topk``, a block of queries at a time (at most
    :data:`TORCH_MAX_SCORES` scores held, so its memory does not hide ours in the RSS)."""
    import torch

    block = block or max(1, min(TORCH_QUERY_BLOCK, TORCH_MAX_SCORES // max(1, len(database))))
    db = torch.from_numpy(database).to(device)
    sims, inds = [], []
    with torch.inference_mode():
        for start in range(0, len(queries), block):
            q = torch.from_numpy(queries[start : start + block]).to(device)
            top = torch.topk(q @ db.T, k, dim=1)
            sims.append(top.values.cpu().numpy())
            inds.append(top.indices.cpu().numpy())
    return np.concatenate(sims), np.concatenate(inds)


def official_style_margin(x: np.ndarray, y: np.ndarray, fwd_ind: np.ndarray, fwd_mean: np.ndarray,
                          bwd_ind: np.ndarray, bwd_mean: np.ndarray) -> list[tuple[int, int, float]]:
    """The official ``mine_bitext(mode='mine', retrieval='max', margin='ratio')`` approach:
    a Python loop scoring every candidate with one ``dot``, then greedy one-to-one."""

    def score_all(a: np.ndarray, b: np.ndarray, ind: np.ndarray, a_mean: np.ndarray, b_mean: np.ndarray) -> np.ndarray:
        scores = np.zeros(ind.shape)
        for i in range(ind.shape[0]):
            for j in range(ind.shape[1]):
                t = ind[i, j]
                scores[i, j] = a[i].dot(b[t]) / ((a_mean[i] + b_mean[t]) / 2)
        return scores

    fwd_scores = score_all(x, y, fwd_ind, fwd_mean, bwd_mean)
    bwd_scores = score_all(y, x, bwd_ind, bwd_mean, fwd_mean)
    fwd_best = fwd_ind[np.arange(len(x)), fwd_scores.argmax(axis=1)]
    bwd_best = bwd_ind[np.arange(len(y)), bwd_scores.argmax(axis=1)]
    pairs = np.stack((np.concatenate((np.arange(len(x)), bwd_best)), np.concatenate((fwd_best, np.arange(len(y))))), 1)
    scores = np.concatenate((fwd_scores.max(axis=1), bwd_scores.max(axis=1)))
    seen_src, seen_trg, out = set(), set(), []
    for i in np.argsort(-scores):
        s, t = int(pairs[i, 0]), int(pairs[i, 1])
        if s not in seen_src and t not in seen_trg:
            seen_src.add(s)
            seen_trg.add(t)
            if scores[i] > 0:
                out.append((s, t, float(scores[i])))
    return out


def our_margin(fwd: Any, bwd: Any) -> Any:
    """Our margin stage (what ``mining.mine`` does after its two searches)."""
    from harness_ext.retrieval import mining

    fwd_scores = mining.margin_scores(fwd, fwd.mean, bwd.mean, "ratio")
    bwd_scores = mining.margin_scores(bwd, bwd.mean, fwd.mean, "ratio")
    fwd_arg, bwd_arg = fwd_scores.argmax(axis=1), bwd_scores.argmax(axis=1)
    rows_x, rows_y = np.arange(len(fwd.mean)), np.arange(len(bwd.mean))
    src = np.concatenate([rows_x, bwd.indices[rows_y, bwd_arg]])
    trg = np.concatenate([fwd.indices[rows_x, fwd_arg], rows_y])
    scores = np.concatenate([fwd_scores[rows_x, fwd_arg], bwd_scores[rows_y, bwd_arg]])
    return mining._one_to_one(src, trg, scores, 0.0)


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


# --------------------------------------------------------------------------- parts
def bench_embed(args: argparse.Namespace) -> list[str]:
    from harness_ext.adapters.encoder.embed import Embedder
    from harness_ext.adapters.runtime.settings import AdapterSettings
    from harness_ext.backends import load_checkpoint

    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return ["embed: sentence-transformers is not installed (pip install sentence-transformers, keeping your torch); "
                "part skipped"]
    texts = list(dict.fromkeys(c.tatoeba_pairs(args.data, args.n_embed * 2)))[: args.n_embed]
    loaded = load_checkpoint(c.minilm_path(), "encoder", device=args.device)
    embedder = Embedder(loaded, AdapterSettings(device=args.device, pooling="st", use_cache=False, batch_size=None))
    st = SentenceTransformer(c.minilm_path(), device=args.device)
    ours = embedder.embed(texts)
    theirs = st.encode(texts, batch_size=32, convert_to_numpy=True)
    diff = float(np.abs(ours - theirs).max())
    timings = c.measure({
        "ours (Embedder, auto batch)": lambda: embedder.embed(texts),
        "sentence-transformers encode": lambda: st.encode(texts, batch_size=32, convert_to_numpy=True),
    }, args.rounds)
    lines = [f"{len(texts)} distinct Tatoeba sentences (both sides, many scripts), all-MiniLM-L6-v2, max 256 tokens",
             *c.ratio_table(timings, "sentence-transformers encode", len(texts), "sent")]
    o, s = timings["ours (Embedder, auto batch)"], timings["sentence-transformers encode"]
    ratio = s.best_cpu / o.best_cpu
    lines.append(f"ours vs sentence-transformers: {ratio:.2f}x its throughput (cpu time; goal >= 1.0: "
                 f"{'met' if ratio >= 1.0 else 'NOT met'}); wall {s.best_wall / o.best_wall:.2f}x")
    lines.append(f"max |ours - sentence-transformers| = {diff:.2e} (goal <= 1e-5: {'met' if diff <= 1e-5 else 'NOT met'})")
    lines.append(f"peak RSS so far: {c.peak_rss_mb():.0f} MiB")
    c.banner("embedding: summary", lines)
    return ["[embedding]"] + lines


def fit_exponent(sizes: list[int], times: list[float]) -> float:
    """Least-squares slope of log(time) on log(N)."""
    if len(sizes) < 2:
        return float("nan")
    lx, ly = np.log(sizes), np.log(times)
    return float(np.polyfit(lx, ly, 1)[0])


def bench_search_and_mine(args: argparse.Namespace) -> list[str]:
    import faiss

    from harness_ext.retrieval.mining import Neighbours, mine
    from harness_ext.retrieval.search import FlatIndex

    faiss.omp_set_num_threads(args.threads)
    parts = set(args.parts)
    rows: list[tuple[int, dict[str, float], float]] = []
    lines = [f"random unit vectors, d={args.dim}, queries = database size N, k={args.k}; "
             f"{args.threads} thread(s); cpu/wall seconds per contender"]
    checked = False
    for n in args.sizes:
        x, y = unit_vectors(n, args.dim, 1), unit_vectors(n, args.dim, 2)
        result: dict[str, float] = {}
        shared: dict[str, Any] = {}

        def ours_search() -> None:
            index = FlatIndex(y, backend=args.search_backend)
            shared["fwd"] = Neighbours.search(x, index, args.k)

        cases: dict[str, Callable[[], Any]] = {"faiss FlatIndex (ours)": ours_search}
        if not args.no_torch:
            cases["torch matmul+topk"] = lambda: torch_knn(x, y, args.k, device=args.torch_device)
        if "search" in parts or "mine" in parts:
            timings = c.measure(cases, args.rounds)
            for name, t in timings.items():
                result[f"search {name} cpu"] = t.best_cpu
                result[f"search {name} wall"] = t.best_wall
        if "mine" in parts:
            fwd = shared["fwd"]
            bwd = Neighbours.search(y, FlatIndex(x, backend=args.search_backend), args.k)
            margin_cases: dict[str, Callable[[], Any]] = {"margin ours (vectorised)": lambda: our_margin(fwd, bwd)}
            if n <= args.official_max:
                margin_cases["margin official-style loop"] = lambda: official_style_margin(
                    x, y, fwd.indices, fwd.mean, bwd.indices, bwd.mean)
            timings = c.measure(margin_cases, args.rounds)
            for name, t in timings.items():
                result[f"{name} cpu"] = t.best_cpu
                result[f"{name} wall"] = t.best_wall
            if not checked and n <= min(args.official_max, args.check_max):
                mined = mine(x, y, k=args.k, backend=args.search_backend)
                official = official_style_margin(x, y, fwd.indices, fwd.mean, bwd.indices, bwd.mean)
                same = sorted(zip(mined.src.tolist(), mined.trg.tolist())) == sorted((s, t) for s, t, _ in official)
                lines.append(f"N={n}: mining.mine end to end -> {len(mined.src)} pairs; "
                             f"same pairs as the official-style loop: {same}")
                checked = True
            del bwd
        rows.append((n, result, c.peak_rss_mb()))
        shared.clear()
        x = y = None  # free this size before the next allocates
    return lines + report_scaling(rows, args)


def report_scaling(rows: list[tuple[int, dict[str, float], float]], args: argparse.Namespace) -> list[str]:
    lines = []
    # on a GPU, CPU time says nothing about the search: use wall time there
    clock = "wall" if args.search_backend == "gpu" or str(args.torch_device).startswith("cuda") else "cpu"
    order = ["search faiss FlatIndex (ours)", "search torch matmul+topk", "margin ours (vectorised)",
             "margin official-style loop"]
    present = {key.rsplit(" ", 1)[0] for _, result, _ in rows for key in result}
    names = [name for name in order if name in present]
    header = f"    {'N':>8s} " + " ".join(f"{name[:30]:>31s}" for name in names) + f" {'peak RSS MiB':>13s}"
    lines.append(f"{clock} seconds (the other clock in brackets):")
    lines.append(header)
    for n, result, rss in rows:
        cells = []
        for name in names:
            if f"{name} {clock}" in result:
                other = 'wall' if clock == 'cpu' else 'cpu'
                cells.append(f"{result[f'{name} {clock}']:>19.2f} ({result[f'{name} {other}']:8.2f})")
            else:
                cells.append(f"{'-':>31s}")
        lines.append(f"    {n:>8d} " + " ".join(f"{cell:>31s}" for cell in cells) + f" {rss:>13.0f}")
    sizes = [n for n, _, _ in rows]
    for name in names:
        points = [(n, result[f"{name} {clock}"]) for n, result, _ in rows if f"{name} {clock}" in result]
        if len(points) >= 2:
            p = fit_exponent([a for a, _ in points], [b for _, b in points])
            lines.append(f"growth of {name}: time ~ N^{p:.2f} over N={points[0][0]}..{points[-1][0]}")
    search_name = "search faiss FlatIndex (ours)"
    largest = rows[-1]
    n_max = largest[0]
    if f"{search_name} {clock}" in largest[1]:
        t = largest[1][f"{search_name} {clock}"]
        flops = 2.0 * n_max * n_max * args.dim
        lines.append(f"faiss at N={n_max}: {flops / t / 1e9:.0f} GFLOP/{clock}-s ({args.threads} thread(s))")
        scale = (BUCC_N / n_max) ** 2 * (BUCC_DIM / args.dim)
        est_search = 2 * t * scale  # both directions
        margin = largest[1].get(f"margin ours (vectorised) {clock}")
        est_margin = margin * BUCC_N / n_max if margin else 0.0
        lines.append(
            f"EXTRAPOLATION (not measured): BUCC-size mining, {BUCC_N} x {BUCC_N}, d={BUCC_DIM}, both directions: "
            f"2 x {t:.1f} s x ({BUCC_N}/{n_max})^2 x ({BUCC_DIM}/{args.dim}) = {est_search:,.0f} {clock}-s of search "
            f"(~{est_search / 3600:.1f} h at {args.threads} thread(s) and this throughput) "
            f"+ ~{est_margin:.1f} s of margin stage (linear in N); the official loop's margin stage "
            + (f"~{largest[1][f'margin official-style loop {clock}'] * BUCC_N / n_max:.0f} s"
               if f"margin official-style loop {clock}" in largest[1] else "(not timed at this N)")
            + ". Memory: two 400k x 1024 float32 sides = 3.1 GiB (+ faiss's own copy of each database)."
        )
    torch_name = "search torch matmul+topk"
    ratios = [(n, r[f"{torch_name} {clock}"] / r[f"{search_name} {clock}"]) for n, r, _ in rows
              if f"{torch_name} {clock}" in r and f"{search_name} {clock}" in r]
    if ratios:
        lines.append(f"faiss speed-up over torch matmul+topk ({clock} time): "
                     + ", ".join(f"N={n}: {ratio:.2f}x" for n, ratio in ratios))
    official = [(n, r[f"margin official-style loop {clock}"] / r[f"margin ours (vectorised) {clock}"]) for n, r, _ in rows
                if f"margin official-style loop {clock}" in r]
    if official:
        lines.append("margin stage, ours vs official-style loop: "
                     + ", ".join(f"N={n}: {ratio:.0f}x faster" for n, ratio in official))
    lines.append(f"largest case N={sizes[-1]}: peak RSS {rows[-1][2]:.0f} MiB "
                 f"(two sides of {sizes[-1] * args.dim * 4 / 2**20:.0f} MiB each)")
    c.banner("search + mining: summary", lines)
    return ["[search + mining]"] + lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="embed,search,mine", help="comma-separated: embed,search,mine")
    parser.add_argument("--sizes", default="10000,20000,40000", help="corpus sizes N (N x N search)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--n-embed", type=int, default=4000, help="distinct sentences to embed")
    parser.add_argument("--rounds", type=int, default=1, help="timed rounds per contender (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch/faiss threads (1 on the shared 2-core dev box)")
    parser.add_argument("--official-max", type=int, default=100_000,
                        help="largest N for the official-style Python margin loop")
    parser.add_argument("--check-max", type=int, default=20_000,
                        help="largest N at which mining.mine is re-run end to end to check its pairs")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch matmul+topk contender")
    parser.add_argument("--device", default="cpu", help="device for the embedding part")
    parser.add_argument("--search-backend", default="cpu", choices=("cpu", "gpu"),
                        help="FlatIndex backend (gpu: faiss GPU build, database sharded over all GPUs)")
    parser.add_argument("--torch-device", default="cpu", help="device of the torch matmul+topk contender")
    parser.add_argument("--data", type=Path, default=c.DEFAULT_DATA)
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",")]
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    c.set_threads(args.threads)
    c.quiet_transformers()
    print(c.machine_line())
    report: list[str] = []
    if "embed" in args.parts:
        print("\n-- embed", flush=True)
        report += bench_embed(args)
    if "search" in args.parts or "mine" in args.parts:
        print("\n-- search / mine", flush=True)
        report += bench_search_and_mine(args)
    print("\n== all results")
    print(c.machine_line())
    for line in report:
        print(f"   {line}")
    print(f"   peak RSS of this process: {c.peak_rss_mb():.0f} MiB")
    gpu = c.gpu_peak_mb()
    print(f"   peak GPU memory allocated: {gpu:.0f} MiB" if gpu is not None else "   GPU: not used (none present)")


if __name__ == "__main__":
    main()
