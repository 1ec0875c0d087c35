"""Would a fast accelerator sit idle? The adapters against a simulated device F times faster than this CPU.

    python bench/bench_overlap.py                          # F = 20, 50, 100; ~3 min on the 2-core box
    python bench/bench_overlap.py --speedup 50 --sizes task   # one task's requests per kind; ~5 min
    python bench/bench_overlap.py --speedup 50 --plan cpu     # the CPU's small batches instead

On a GPU the forward pass gets 10-100x faster while tokenising, padding and
decoding stay on the CPU; run in series with the model, they cap what the device
can do. This script shows that on a CPU:

1. **Calibration**: every adapter runs once with the real all-MiniLM-L6-v2 encoder
   (random head of the right kind, seed 0) with the CPU's own batch plan and one
   global length sort, and the CPU time of each forward pass (``time.thread_time``
   around the model call, best of two runs) is recorded: the measured CPU floor,
   per batch shape and per padded token.
2. **Simulated accelerator**: the model is replaced by a stub that **sleeps for
   (CPU time of this batch) / F** (``time.sleep`` releases the GIL, as a CUDA wait
   does) and returns outputs of the right shape (random values made once, before
   timing). Everything else (tokenising, padding, copying, decoding) is the
   adapter's real code. The batches are those the adapters make on an accelerator
   (``--plan gpu``, the default: the CUDA automatic plan, up to 512 examples and
   65536 padded tokens, waves of requests as on CUDA), each timed as padded tokens
   x the floor's CPU time per padded token / F; ``--plan cpu`` keeps the CPU's small
   batches, each timed by its calibrated shape.
3. For each kind and F, three contenders on the same inputs, in rounds with the
   order rotated, best round kept:
   * ``before``: the adapter as it was before the pipeline (``--before-rev``, loaded
     from git in this process),
   * ``sequential``: today's adapter with ``pipeline=false`` (same stages, no threads),
   * ``pipelined``: today's adapter (prepare ahead / finish behind on worker threads).

Reported: **device busy = the contender's simulated model time / wall time of the
whole adapter call** (1.0 = the device never waits for the CPU; the issue's goal is
>= 0.9 at F = 50), next to each contender's model time (so a contender that pads
more shows it). Wall time, because what matters on a GPU is how long the device
idles; on a shared 2-core machine wall time also counts waiting for a core, so the
load average is printed, and a projection from CPU times for an idle machine with a
core per thread is printed too.

Fidelity choices (each one removes a cost that the CPU simulation has and a GPU
run does not; none of them touches the adapters' own work):

* the stub's thread asks Linux for a 1 ns timer slack (``precise_sleep``): with the
  default 50 us slack a sleep here wakes ~135 us late (median), per batch;
* the stub's hidden states are :data:`SIMULATED_HIDDEN` wide: the embedder's pooling
  runs on the calling thread, which on a GPU only queues a kernel.

What this does NOT model: host-to-device copy time (pinned and non-blocking in the
code), kernel-launch time of a real forward pass on the caller's thread (queued
ahead of the device on CUDA; here the stub's sleep is synchronous, so every
microsecond the caller spends between batches counts as device idle time: a
pessimistic simplification), and a GPU's better efficiency on large batches (time
here is linear in padded tokens).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")

import _common as c  # noqa: E402

XNLI = {0: "entailment", 1: "neutral", 2: "contradiction"}
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")
#: width of the stub's hidden states. The embedder pools them on the calling thread (mean over the
#: tokens): on an accelerator that is device work, queued in microseconds, but on full-width CPU tensors it
#: is ~6 ms of the caller's CPU per 512-text batch here, which no GPU run spends. Narrow hidden states keep
#: the pooling's code path and shapes (batch x tokens) while taking its cost off the simulated critical path.
SIMULATED_HIDDEN = 16
#: requests per kind: the defaults of the first runs, and what ONE task of one language sends to the adapter
#: (lm-eval hands the adapter each task's requests in one call: harness_ext/adapters/xtreme_lm.py)
SIZES = {
    "small": {"n_classify": 1000, "n_tag": 1000, "n_qa": 120, "n_embed": 1000},
    "task": {"n_classify": 5010, "n_tag": 2077, "n_qa": 1190, "n_embed": 2000},
}
#: the last commit before the pipeline (issue 15)
BEFORE_REV = "d2ce538"
MODULES = {"classify": "classify", "tag": "tag", "extract_span": "span", "embed": "embed"}
clock: Any = None


# --------------------------------------------------------------------------- the adapters before
#: where an adapter module lived before the sub-package split (ee33e83) -> where it lives now
MOVED = {"autobatch": "runtime.autobatch", "batching": "runtime.batching", "pipeline": "runtime.pipeline",
         "settings": "runtime.settings", "distributed": "runtime.distributed", "classify": "encoder.classify",
         "tag": "encoder.tag", "span": "encoder.span", "embed": "encoder.embed"}
_OLD_IMPORT = re.compile(r"harness_ext\.adapters\.(" + "|".join(MOVED) + r")\b")
_OLD_FROM = re.compile(r"from harness_ext\.adapters import (" + "|".join(MOVED) + r")\b")


def module_at(rev: str, name: str) -> Any:
    """``harness_ext.adapters.encoder.<name>`` as it was at ``rev`` (read with git, imported under
    another name). Revisions before the sub-package split keep the module at ``adapters/<name>.py``
    and import its siblings by their old names, which are pointed at where they live now."""
    for path in (f"harness_ext/adapters/encoder/{name}.py", f"harness_ext/adapters/{name}.py"):
        shown = subprocess.run(["git", "-C", str(c.REPO), "show", f"{rev}:{path}"], capture_output=True, text=True)
        if shown.returncode == 0:
            break
    else:
        raise SystemExit(f"--before-rev {rev}: no adapter module {name!r} at that revision ({shown.stderr.strip()})")
    source = _OLD_FROM.sub(lambda m: f"from harness_ext.adapters.{MOVED[m[1]].split('.')[0]} import {m[1]}", shown.stdout)
    source = _OLD_IMPORT.sub(lambda m: f"harness_ext.adapters.{MOVED[m[1]]}", source)
    spec = importlib.util.spec_from_loader(f"_before_{name}", loader=None)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # dataclasses look their module up there
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)  # our own code from git
    return module


# --------------------------------------------------------------------------- CPU accounting per thread
class StageClock:
    """Wraps :func:`harness_ext.adapters.runtime.pipeline._call` to add up each thread's CPU time per stage.

    With these, the wall time of a pipelined call on an idle machine can be projected from
    CPU times, which a busy shared machine does not distort much (wall times it does)."""

    def __init__(self) -> None:
        import threading

        from harness_ext.adapters.runtime import pipeline

        self.pipeline, self.original, self.lock = pipeline, pipeline._call, threading.Lock()
        self.reset()
        pipeline._call = self._call

    def reset(self) -> None:
        self.worker_cpu: dict[str, float] = {}

    def _call(self, fn: Callable, *args: Any) -> Any:
        import threading

        start = time.thread_time()
        try:
            return self.original(fn, *args)
        finally:
            spent = time.thread_time() - start
            name = threading.current_thread().name.split("_")[0]
            if name.startswith("xtreme-"):
                with self.lock:
                    self.worker_cpu[name] = self.worker_cpu.get(name, 0.0) + spent


def projected_wall(model_time: float, main_cpu: float, process_cpu: float, clock: StageClock, pipelined: bool) -> float:
    """Wall time on an idle machine with a core per thread, from CPU times.

    In series: model time + all CPU time. Pipelined: the calling thread's CPU (which
    includes the first wave's encoding and first batch's padding, made there before the
    device starts) plus the model time, unless a worker needs longer than that."""
    if not pipelined:
        return model_time + process_cpu
    return max(model_time + main_cpu, *clock.worker_cpu.values(), 0.0)


# --------------------------------------------------------------------------- timing the real model
class Timed:
    """Wraps the real model: records the calling thread's CPU time of every forward pass, by batch shape."""

    def __init__(self, model: Any) -> None:
        self.model, self.times, self.calls = model, {}, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        shape = tuple(kwargs["input_ids"].shape)
        start = time.thread_time()
        out = self.model(*args, **kwargs)
        spent = time.thread_time() - start
        self.times[shape] = min(spent, self.times.get(shape, float("inf")))
        self.calls.append(shape)
        return out


class SimulatedDevice:
    """Stands in for the model: sleeps (CPU time of this batch) / F, returns ready-made outputs of the right shape.

    The CPU time of a batch is the measured one for a shape seen in calibration
    (``--plan cpu``), else padded tokens x ``per_token`` (the calibration's CPU seconds per
    padded token); with ``exact_shapes=False`` (``--plan gpu``) every batch is timed by tokens."""

    def __init__(self, real: Any, head: str, times: dict[tuple[int, int], float], speedup: float,
                 per_token: float, exact_shapes: bool = True) -> None:
        self.config, self.head, self.speedup = real.config, head, speedup
        self.times = times if exact_shapes else {}
        self.per_token = per_token
        self.n_out = int(getattr(real.config, "num_labels", 2))
        self.buffer = self._make(max(b for b, _ in times), max(n for _, n in times))
        self.slept = 0.0
        self.calls = 0
        self.unseen = 0

    def _make(self, max_b: int, max_l: int) -> Any:
        """Random outputs for every batch up to ``max_b`` x ``max_l`` (grown on demand, i.e. in the warm-up)."""
        import torch

        self.size = (max_b, max_l)
        width = {"sequence-classification": (self.n_out,), "token-classification": (max_l, self.n_out),
                 "question-answering": (max_l, 2), "encoder": (max_l, SIMULATED_HIDDEN)}[self.head]
        return torch.randn(max_b, *width, generator=torch.Generator().manual_seed(0))

    def parameters(self):
        import torch

        yield torch.zeros(1)

    def eval(self) -> "SimulatedDevice":
        return self

    def __call__(self, input_ids: Any, **kwargs: Any) -> Any:
        b, n = input_ids.shape
        floor = self.times.get((b, n))
        if floor is None:
            self.unseen += 1 if self.times else 0
            floor = self.per_token * b * n
        pause = floor / self.speedup
        time.sleep(pause)  # releases the GIL, as waiting for a device does
        self.slept += pause
        self.calls += 1
        if b > self.size[0] or n > self.size[1]:
            self.buffer = self._make(max(b, self.size[0]), max(n, self.size[1]))
        buf = self.buffer
        if self.head == "sequence-classification":
            return SimpleNamespace(logits=buf[:b])
        if self.head == "token-classification":
            return SimpleNamespace(logits=buf[:b, :n])
        if self.head == "question-answering":
            return SimpleNamespace(start_logits=buf[:b, :n, 0], end_logits=buf[:b, :n, 1])
        hidden = buf[:b, :n]
        return SimpleNamespace(hidden_states=(hidden,) * (self.config.num_hidden_layers + 1), last_hidden_state=hidden)


# --------------------------------------------------------------------------- the kinds
def workload(kind: str, args: argparse.Namespace) -> tuple[Any, list, str, Callable[[Any], Any]]:
    """(loaded real model, requests, head, settings factory) for one kind, inputs as in bench_adapters.py."""
    from harness_ext.adapters.runtime.settings import AdapterSettings

    def settings(pipelined: bool) -> AdapterSettings:
        extra = {"pipeline": pipelined, "waves": True}  # as on an accelerator (on the CPU: one wave)
        if kind == "embed":
            return AdapterSettings(batch_size=None, use_cache=False, pooling="mean", extra=extra)
        return AdapterSettings(batch_size=None, extra=extra)

    if kind == "classify":
        loaded = c.minilm_with_head("sequence-classification", XNLI)
        requests = [c.Request(t, "", tuple(XNLI.values())) for t in c.tatoeba_english(args.data, args.n_classify)]
        return loaded, requests, "sequence-classification", settings
    if kind == "tag":
        loaded = c.minilm_with_head("token-classification", dict(enumerate(UPOS)))
        requests = [c.Request(" ".join(w), tuple(w), UPOS) for w in c.ud_sentences(args.data, args.n_tag)]
        return loaded, requests, "token-classification", settings
    if kind == "extract_span":
        loaded = c.minilm_with_head("question-answering")
        requests = [c.Request(q, ctx) for q, ctx in c.xquad_pairs(args.data, args.n_qa)]
        return loaded, requests, "question-answering", settings
    loaded = c.minilm_with_head("encoder")
    requests = [c.Request(t) for t in c.tatoeba_pairs(args.data, args.n_embed)]
    return loaded, requests, "encoder", settings


def fresh(loaded: Any, model: Any, settings: Any = None, plan: str = "cpu") -> Any:
    """``loaded`` with ``model`` and nothing remembered; with ``plan='gpu'`` the adapters batch
    as on an accelerator (:func:`automatic_plan` for CUDA: up to 512 examples, 65536 tokens)."""
    import dataclasses

    from harness_ext.adapters.runtime.autobatch import automatic_plan, remember_plan

    out = dataclasses.replace(loaded, model=model, extra={})
    if plan == "gpu":
        remember_plan(out, settings, automatic_plan("cuda", max_batch_size=settings.max_batch_size))
    return out


def precise_sleep() -> str:
    """Ask Linux for a timer slack of 1 ns on this thread: the default 50 us slack (plus this VM's
    wake-up latency, ~135 us median per sleep measured here) is lateness of the simulated
    device's wait that a CUDA wait does not have. Returns what was done, for the report."""
    import ctypes

    try:
        if ctypes.CDLL(None).prctl(29, 1, 0, 0, 0) == 0:  # PR_SET_TIMERSLACK
            return "timer slack 1 ns"
    except (OSError, AttributeError):
        pass
    return "default timer slack"


def bench_kind(kind: str, args: argparse.Namespace, before: Any) -> list[str]:
    now = importlib.import_module(f"harness_ext.adapters.encoder.{MODULES[kind]}")
    loaded, requests, head, settings = workload(kind, args)

    # 1. calibration: the real model's CPU time per batch shape, with the CPU's own plan and one
    #    global length sort (sequential, so the threads don't blur it): the floor
    timed = Timed(loaded.model)
    cpu_settings = settings(False)
    cpu_settings.extra["waves"] = False
    # --plan cpu times every batch by its calibrated shape, so both contenders' shapes are needed;
    # --plan gpu times batches by tokens at the floor's rate, so today's floor is enough
    for module in (before, now, now) if args.plan == "cpu" else (now,):
        timed.calls = []
        module.answer(fresh(loaded, timed), requests, cpu_settings)
    floor = sum(timed.times[shape] for shape in timed.calls)
    per_token = floor / sum(b * n for b, n in timed.calls)
    print(f"   {kind}: {len(requests)} requests, {len(timed.times)} batch shapes, CPU floor {floor:.2f} s "
          f"(sum of forward passes, thread CPU time; {per_token * 1e6:.1f} us per padded token)", flush=True)

    lines = [f"[{kind}] {len(requests)} requests; CPU floor (real MiniLM forward passes) {floor:.2f} s; "
             f"{args.plan} batch plan"]
    for speedup in args.speedups:
        device = SimulatedDevice(loaded.model, head, timed.times, speedup, per_token, exact_shapes=args.plan == "cpu")
        stub = fresh(loaded, device)

        def run(module: Any, pipelined: bool) -> Any:
            chosen = settings(pipelined)
            return module.answer(fresh(stub, device, chosen, args.plan), requests, chosen)

        cases: dict[str, Callable[[], Any]] = {
            "before": lambda: run(before, False),
            "sequential": lambda: run(now, False),
            "pipelined": lambda: run(now, True),
        }
        for case in cases.values():  # warm-up (first-call imports, allocator)
            case()
        busy: dict[str, list[float]] = {name: [] for name in cases}
        device_time: dict[str, float] = {}
        projected: dict[str, list[float]] = {name: [] for name in cases}
        for r in range(args.rounds):
            names = list(cases)
            for name in names[r % 3:] + names[: r % 3]:
                device.slept = 0.0
                clock.reset()
                main: list[float] = []

                def timed_case(case: Callable[[], Any] = cases[name]) -> Any:
                    start = time.thread_time()  # inside time_once: its gc.collect() is not ours
                    try:
                        return case()
                    finally:
                        main.append(time.thread_time() - start)

                wall, cpu, _ = c.time_once(timed_case)
                main_cpu = main[0]
                busy[name].append(device.slept / wall)
                device_time[name] = device.slept
                idle_wall = projected_wall(device.slept, main_cpu, cpu, clock, name == "pipelined")
                projected[name].append(device.slept / idle_wall)
        model_time = floor / speedup
        best = {name: max(values) for name, values in busy.items()}
        proj = {name: max(values) for name, values in projected.items()}
        line = (f"F={speedup:g}: floor / F {model_time * 1000:.0f} ms; model time of its batches: before "
                f"{device_time['before'] * 1000:.0f} ms, sequential {device_time['sequential'] * 1000:.0f} ms, "
                f"pipelined {device_time['pipelined'] * 1000:.0f} ms; device busy, measured here (model time / "
                f"wall, best of {args.rounds}): before {best['before']:.2f}, sequential "
                f"{best['sequential']:.2f}, pipelined {best['pipelined']:.2f}; "
                f"projected for an idle machine from CPU times: before "
                f"{proj['before']:.2f}, sequential {proj['sequential']:.2f}, pipelined {proj['pipelined']:.2f}")
        if device.unseen:
            line += f" [{device.unseen} calls of an uncalibrated shape, timed by tokens]"
        print(f"   {line}", flush=True)
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="classify,tag,extract_span,embed")
    parser.add_argument("--speedup", default="20,50,100", help="F: the simulated device is F x this CPU's floor")
    parser.add_argument("--sizes", choices=tuple(SIZES), default="small",
                        help="requests per kind: 'small' (1000 / 1000 / 120 / 1000) or 'task' (what one task of "
                             "one language sends to the adapter: an XNLI language's 5010 pairs, English EWT's 2077 "
                             "sentences, an XQuAD language's 1190 questions, both sides of a Tatoeba pair)")
    parser.add_argument("--n-classify", type=int)
    parser.add_argument("--n-tag", type=int)
    parser.add_argument("--n-qa", type=int)
    parser.add_argument("--n-embed", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--before-rev", default=BEFORE_REV, help="git revision of the adapters 'before'")
    parser.add_argument("--plan", choices=("gpu", "cpu"), default="gpu",
                        help="batch plan of the simulated runs: an accelerator's (default) or the CPU's small batches")
    parser.add_argument("--data", type=Path, default=c.DEFAULT_DATA)
    args = parser.parse_args(argv)
    for name, value in SIZES[args.sizes].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.speedups = [float(x) for x in args.speedup.split(",")]
    global clock
    clock = StageClock()
    c.set_threads(args.threads)
    c.quiet_transformers()
    print(f"{c.machine_line()}; {precise_sleep()}")
    report: list[str] = []
    for kind in args.kinds.split(","):
        kind = kind.strip()
        print(f"\n-- {kind}", flush=True)
        report += bench_kind(kind, args, module_at(args.before_rev, MODULES[kind]))
    print("\n== all results (device busy = simulated model time / wall time; 1.0 = never idle)")
    print(c.machine_line())
    for line in report:
        print(f"   {line}")


if __name__ == "__main__":
    main()
