"""Dashboard figures: each metric across variants as bars with the baseline as a line, and training curves.

Bars are coloured the way the delta tables mark them (the paper's direction followed, not followed, or no
stated direction), so a chart and its table never tell different stories. Like ``plots``, figures are built
on ``matplotlib.figure.Figure`` directly: no pyplot state, no GUI backend.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .ablation import AGREES, DISAGREES
from .plots import History

BASELINE_COLOUR = "#3b6ea8"
MARK_COLOURS = {AGREES: "#2e8b57", DISAGREES: "#c0392b"}
NEUTRAL = "#a0a0a0"  # no stated expectation, or the baseline's value is missing
LEGEND = ((BASELINE_COLOUR, "baseline (dashed line)"), (MARK_COLOURS[AGREES], "moves the way the paper expects"),
          (MARK_COLOURS[DISAGREES], "does not"), (NEUTRAL, "no expectation stated"))


def _grid(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def plot_metric_bars(values: Mapping[str, Mapping[str, float | None]], baseline: str,
                     marks: Mapping[str, Mapping[str, str]] | None = None, title: str | None = None,
                     ncols: int = 3) -> Figure:
    """One panel per metric (key -> variant -> value, variants in the order given).

    ``marks`` (key -> variant -> ✓ / ✗) colours each variant's bar; a missing value leaves a gap labelled n/a,
    never a zero-height bar. The baseline's bar is labelled with its value, the others with their delta, since
    an ablation's effect is often small beside the bar's height.
    """
    if not values:
        raise ValueError("no metrics to plot")
    fig, axes = _grid(len(values), ncols, (4.0, 2.9))
    for ax, (key, per_variant) in zip(axes, values.items()):
        names = list(per_variant)
        base = per_variant.get(baseline)
        for i, name in enumerate(names):
            value = per_variant[name]
            if value is None:
                ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8, color="#555")
                continue
            mark = (marks or {}).get(key, {}).get(name, "")
            colour = BASELINE_COLOUR if name == baseline else MARK_COLOURS.get(mark, NEUTRAL)
            ax.bar(i, value, width=0.7, color=colour)
            label = f"{value:.3g}" if name == baseline or base is None else f"{value - base:+.3g}"
            ax.text(i, value, label, ha="center", va="bottom" if value >= 0 else "top", fontsize=7, color="#333")
        ax.margins(y=0.12)  # room for the labels above the tallest bar
        if base is not None:
            ax.axhline(base, color=BASELINE_COLOUR, ls="--", lw=1)
        ax.axhline(0, color="#444", lw=0.6)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_title(key, fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.legend(handles=[Patch(color=c, label=t) for c, t in LEGEND], loc="outside lower center", ncols=len(LEGEND),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_variant_curves(histories: Mapping[str, Mapping[str, History]], baseline: str,
                        variants: Sequence[str] | None = None, title: str | None = None, ncols: int = 3) -> Figure:
    """One panel per metric key, one line per variant (variant -> key -> (step, value) points).

    Colours follow ``variants`` (default: the order of ``histories``), so a variant keeps its colour across
    figures; the baseline is drawn darker and thicker.
    """
    keys = list(dict.fromkeys(k for per_key in histories.values() for k in per_key))
    if not keys:
        raise ValueError("no metric histories to plot")
    order = list(variants or histories)
    fig, axes = _grid(len(keys), ncols, (4.0, 2.6))
    for ax, key in zip(axes, keys):
        for variant, per_key in histories.items():
            points = per_key.get(key)
            if not points:
                continue
            steps, values = zip(*sorted(points))
            colour = "#1f1f1f" if variant == baseline else f"C{order.index(variant) % 10}"
            ax.plot(steps, values, color=colour, lw=2.0 if variant == baseline else 1.3, label=variant,
                    marker="o" if len(points) < 3 else None, ms=3)  # a lone point is still visible
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    labelled = {}
    for ax in axes:
        for line in ax.get_lines():
            labelled.setdefault(line.get_label(), line)
    ranked = sorted(labelled, key=lambda v: order.index(v) if v in order else len(order))
    fig.legend([labelled[v] for v in ranked], ranked, loc="outside lower center", ncols=min(6, len(ranked)),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
