"""Mewsli-X-size ranking on the CPU: top-20 of Q queries in a pool of N unit vectors, N up to what
this machine holds, extrapolated to Mewsli-X's ~1M x 768 candidate set.

    python bench/bench_ranking_scale.py                                   # 50k,100k,200k x 768, 1000 queries
    python bench/bench_ranking_scale.py --sizes 200000 --dim 1024 --queries 2000 --threads 16

Contenders, side by side in one process (rounds rotated, best of each):

* ``blocked``: ours, :func:`harness_ext.retrieval.ranking.top_k` (faiss ``IndexFlatIP`` over
  pool blocks of ``CPU_BLOCK_BYTES``, top 20 merged): memory on top of the pool = one block;
* ``whole``: one faiss ``IndexFlatIP`` over the whole pool (what the official
  ``run_eval_mewslix`` does): the baseline; its index is a second copy of the pool.

Printed: seconds, ratio whole/blocked (>= 1: ours is no slower), agreement of the ids (ties
aside), and the RSS growth of each contender measured in a fresh subprocess (the memory a
run needs beyond the pool). The 1M figure is an EXTRAPOLATION (time ~ N x Q, exact flat
search), arithmetic on the measured points, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402

import _common as c  # noqa: E402

MEWSLIX_POOL = 1_000_000
K = 20


def vectors(n: int, dim: int, seed: int) -> np.ndarray:
    from harness_ext.retrieval.ranking import normalize_rows

    return normalize_rows(np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32))


def whole(queries: np.ndarray, pool: np.ndarray):
    from harness_ext.retrieval import faiss_env

    index = faiss_env.faiss_module().IndexFlatIP(pool.shape[1])
    index.add(pool)
    return index.search(queries, K)


def blocked(queries: np.ndarray, pool: np.ndarray):
    from harness_ext.retrieval.ranking import top_k

    return top_k(queries, pool, K, backend="cpu")


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_growth(which: str, n: int, dim: int, queries: int) -> float:
    """In this process: peak RSS during the contender minus the RSS before it (the peak is reset
    first through /proc/self/clear_refs, so making the vectors does not count)."""
    q, p = vectors(queries, dim, 1), vectors(n, dim, 0)
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_mib("VmRSS")
    globals()[which](q, p)
    return _status_mib("VmHWM") - before


def rss_growth(which: str, n: int, dim: int, queries: int, threads: int) -> float:
    """MiB the contender adds to the RSS beyond the pool and queries, measured in a fresh process."""
    code = (
        "import sys; sys.path.insert(0, %r); import bench_ranking_scale as b, _common as c;"
        "c.set_threads(%d); print(b.measure_growth(%r, %d, %d, %d))"
    ) % (str(Path(__file__).resolve().parent), threads, which, n, dim, queries)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TQDM_DISABLE": "1"})
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50000,100000,200000")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    c.set_threads(args.threads)
    from harness_ext.retrieval.ranking import CPU_BLOCK_BYTES

    sizes = [int(s) for s in args.sizes.split(",") if s]
    queries = vectors(args.queries, args.dim, 1)
    rows = []
    c.banner("Mewsli-X-size ranking (CPU)", [c.machine_line(), f"d={args.dim}, {args.queries} queries, k={K}, "
                                             f"block {CPU_BLOCK_BYTES >> 20} MiB, {args.threads} thread(s)"])
    for n in sizes:
        pool = vectors(n, args.dim, 0)
        timings = c.measure({"whole": lambda: whole(queries, pool), "blocked": lambda: blocked(queries, pool)},
                            args.rounds)
        (_, ref_ids), (scores, ids) = whole(queries, pool), blocked(queries, pool)
        ref_scores = np.take_along_axis(queries @ pool.T, ref_ids, axis=1)
        same = ids == ref_ids
        ties = bool(np.all(np.abs(scores[~same] - ref_scores[~same]) <= 1e-5)) if (~same).any() else True
        row = {
            "pool": n, "pool_mib": round(pool.nbytes / 2**20, 1),
            "whole_s": round(timings["whole"].best_wall, 3), "blocked_s": round(timings["blocked"].best_wall, 3),
            "whole_cpu_s": round(timings["whole"].best_cpu, 3), "blocked_cpu_s": round(timings["blocked"].best_cpu, 3),
            "ratio_whole_over_blocked": round(timings["whole"].best_cpu / timings["blocked"].best_cpu, 3),
            "same_ids": round(float(same.mean()), 6), "differences_are_ties": ties,
            "rss_growth_mib_whole": round(rss_growth("whole", n, args.dim, args.queries, args.threads), 1),
            "rss_growth_mib_blocked": round(rss_growth("blocked", n, args.dim, args.queries, args.threads), 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
        del pool
    # exact flat search: time ~ N x Q; fit seconds per (pool row x query) on the largest size
    last = rows[-1]
    per = last["blocked_cpu_s"] / (last["pool"] * args.queries)
    extrapolation = {
        "pool": MEWSLIX_POOL, "dim": args.dim, "threads": args.threads,
        "cpu_seconds_per_1000_queries": round(per * MEWSLIX_POOL * 1000, 1),
        "pool_gib": round(MEWSLIX_POOL * args.dim * 4 / 2**30, 2),
        "extra_memory_blocked_mib": CPU_BLOCK_BYTES >> 20,
        "extra_memory_whole_gib": round(MEWSLIX_POOL * args.dim * 4 / 2**30, 2),
        "note": "EXTRAPOLATED from the largest measured pool (time ~ N x Q), not measured",
    }
    print("== extrapolation to Mewsli-X's pool:", json.dumps(extrapolation), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "extrapolation": extrapolation}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
