"""Report figures: training curves from MLflow metric history, and reference-vs-reconstruction spectrograms.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend), so they
work in worker processes and never accumulate in pyplot's figure registry.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ns3.audio import HOP_LENGTH, SAMPLE_RATE, load_audio, log_mel

History = Sequence[tuple[int, float]]  # (step, value) pairs


def plot_curves(histories: Mapping[str, History], title: str | None = None, ncols: int = 2) -> Figure:
    """One panel per metric key (losses differ in scale by orders of magnitude, so no shared axis)."""
    if not histories:
        raise ValueError("no metric histories to plot")
    n = len(histories)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(5.0 * ncols, 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (key, points) in zip(axes, histories.items()):
        if points:
            steps, values = zip(*sorted(points))
            ax.plot(steps, values, lw=1.2)
        else:
            ax.text(0.5, 0.5, "no points logged", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def metric_histories(tracking_uri: str, run_id: str, keys: Sequence[str]) -> dict[str, list[tuple[int, float]]]:
    """(step, value) history of each key in one MLflow run; a key never logged raises with the keys that exist."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    logged = client.get_run(run_id).data.metrics
    missing = [k for k in keys if k not in logged]
    if missing:
        raise KeyError(f"run {run_id} has no metric {missing}; logged metrics: {sorted(logged)}")
    return {k: [(m.step, m.value) for m in client.get_metric_history(run_id, k)] for k in keys}


def plot_training_curves(tracking_uri: str, run_id: str, keys: Sequence[str], title: str | None = None) -> Figure:
    """Training curves of ``keys`` (e.g. ``codec/mel_loss``) from an MLflow run's metric history."""
    return plot_curves(metric_histories(tracking_uri, run_id, keys), title=title or f"run {run_id[:8]}")


def plot_spectrograms(reference: np.ndarray, reconstructions: Mapping[str, np.ndarray],
                      sample_rate: int = SAMPLE_RATE, hop_length: int = HOP_LENGTH, title: str | None = None) -> Figure:
    """Log-mel spectrograms stacked: reference first, then each reconstruction ``[T]``, on one colour scale."""
    waves = {"reference": reference, **reconstructions}
    for name, wav in waves.items():
        if wav.ndim != 1 or wav.size == 0:
            raise ValueError(f"{name}: expected a non-empty waveform [T], got shape {wav.shape}")
    mels = {name: log_mel(np.asarray(w, np.float32), sample_rate, hop_length=hop_length) for name, w in waves.items()}
    lo = min(float(m.min()) for m in mels.values())
    hi = max(float(m.max()) for m in mels.values())
    fig = Figure(figsize=(9.0, 1.9 * len(mels)), layout="constrained")
    axes = fig.subplots(len(mels), 1, squeeze=False).ravel()
    for ax, (name, mel) in zip(axes, mels.items()):
        seconds = mel.shape[1] * hop_length / sample_rate
        image = ax.imshow(mel, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma",
                          extent=(0.0, seconds, 0, mel.shape[0]))
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("mel bin")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="log mel")
    if title:
        fig.suptitle(title)
    return fig


def plot_spectrograms_from_files(reference: str | Path, reconstructions: Mapping[str, str | Path],
                                 title: str | None = None) -> Figure:
    """``plot_spectrograms`` for audio files (e.g. one ``ReconSample``), loaded at 16 kHz."""
    return plot_spectrograms(load_audio(reference), {k: load_audio(p) for k, p in reconstructions.items()},
                             title=title)
