"""Figures of a generated utterance next to its ground truth: code maps per level and phone durations."""
from __future__ import annotations

import numpy as np


def code_map_figure(truth: np.ndarray, generated: np.ndarray, levels: tuple[str, ...], title: str = ""):
    """truth [L, T], generated [L, T'] -> a matplotlib Figure: one row per level, ground truth left."""
    from matplotlib.figure import Figure

    n = len(levels)
    fig = Figure(figsize=(12, 1.1 * n + 0.6))
    axes = fig.subplots(n, 2, squeeze=False, sharey="row")
    for q, name in enumerate(levels):
        for col, (codes, label) in enumerate(((truth, "ground truth"), (generated, "generated"))):
            ax = axes[q, col]
            ax.imshow(codes[q][None], aspect="auto", interpolation="nearest", cmap="tab20")
            ax.set_yticks([])
            ax.set_ylabel(name if col == 0 else "")
            if q == 0:
                ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def duration_figure(truth: np.ndarray, generated: np.ndarray, title: str = ""):
    """Per-phone durations in frames, ground truth vs generated (same phones)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 2.6))
    ax = fig.subplots()
    x = np.arange(len(truth))
    ax.bar(x - 0.2, truth, 0.4, label="ground truth")
    ax.bar(x + 0.2, generated, 0.4, label="generated")
    ax.set_xlabel("phone")
    ax.set_ylabel("frames")
    ax.legend(loc="upper right")
    ax.set_title(title)
    fig.tight_layout()
    return fig
