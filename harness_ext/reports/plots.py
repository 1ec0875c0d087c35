"""The scaling plot: gain from intermediate-task training against model size.

One panel per task (and one for the XTREME score) that has gains; one line per
(family, intermediate task); x = parameters on a log scale (sizes span orders of
magnitude); error bars = the bootstrap interval of the mean gain when there is one,
else the seed spread (± std), else none; a dashed line at zero so "no gain" is
visible. Written as PNG (for reading) and SVG (for papers). matplotlib's Agg
backend is forced: reports are made on headless machines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from harness_ext.reports.efficacy import OVERALL, Efficacy, GroupGain
from harness_ext.reports.escape import mathtext_literal, natural_key


def _panels(groups: Sequence[GroupGain], order: Sequence[str]) -> list[str]:
    keys = [OVERALL] + list(order)
    return [k for k in keys if any(g.task == k for g in groups)]


def plot_scaling(eff: Efficacy, stem: Path, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg``; returns the paths. ``ValueError`` when there is nothing to plot."""
    import matplotlib.pyplot as plt

    fig = scaling_figure(eff)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, dpi=150)
        tmp.replace(path)
        written.append(path)
    plt.close(fig)
    return written


def scaling_svg(eff: Efficacy) -> bytes:
    """The same figure as SVG bytes (for the static page); ``ValueError`` when there is nothing to plot."""
    import io

    import matplotlib.pyplot as plt

    fig = scaling_figure(eff)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")
    plt.close(fig)
    return buffer.getvalue()


def scaling_figure(eff: Efficacy):
    """The matplotlib figure. Family and task names are printed literally (a ``$`` in a
    name from checkpoints.yaml is not mathtext)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = _panels(eff.groups, eff.task_order)
    if not panels:
        raise ValueError("no gains by size to plot: the results hold no system with an intermediate task and a baseline")
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(max(5.5, 4.2 * columns), 3.4 * rows + 0.8), squeeze=False)
    lines = sorted({(g.family, g.intermediate_task) for g in eff.groups}, key=lambda l: (natural_key(l[0]), natural_key(l[1])))
    for ax, key in zip(axes.flat, panels):
        for family, intermediate in lines:
            points = sorted((g for g in eff.groups if g.task == key and (g.family, g.intermediate_task) == (family, intermediate)),
                            key=lambda g: g.size)
            if not points:
                continue
            xs = [g.size for g in points]
            ys = [g.mean for g in points]
            low, high = [], []
            for g in points:
                if g.interval is not None:
                    low.append(g.mean - g.interval.low)
                    high.append(g.interval.high - g.mean)
                elif g.std is not None:
                    low.append(g.std)
                    high.append(g.std)
                else:
                    low.append(0.0)
                    high.append(0.0)
            ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=mathtext_literal(f"{family} + {intermediate}"))
        ax.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{eff.title(key)} score" if key == OVERALL else eff.title(key))
        ax.set_xlabel("parameters")
        ax.set_ylabel("gain (points)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(handles)), frameon=False)
    title = f"Gain over baseline vs. model size\n(bars: {eff.level:.0%} bootstrap CI of the mean gain, else seed std)"
    if eff.limited:
        title += "\nruns made with --limit: a subset of each test set, not XTREME numbers"
    fig.suptitle(mathtext_literal(title), fontsize=10, color="firebrick" if eff.limited else "black")
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 0.92 if eff.limited else 0.95))
    return fig
