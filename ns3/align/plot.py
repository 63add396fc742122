"""Alignment picture for the tracker: log-mel spectrogram, phone boundaries and labels, F0 track."""
from __future__ import annotations

import numpy as np

from ns3.align.types import Alignment
from ns3.audio import log_mel
from ns3.data.pitch import PitchTrack
from ns3.text.phones import SIL


def plot_alignment(audio: np.ndarray, alignment: Alignment, pitch: PitchTrack | None = None, title: str = "",
                   reference: list[dict] | None = None):
    """[T] 16 kHz audio -> matplotlib Figure. ``reference``: optional [{"phone", "start"}] (seconds) drawn in red."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    mel = log_mel(audio)
    fr = alignment.frame_rate
    dur = mel.shape[1] / fr
    fig, ax = plt.subplots(figsize=(max(6.0, 2.5 * dur), 4.0))
    ax.imshow(mel, origin="lower", aspect="auto", extent=(0, dur, 0, mel.shape[0]), cmap="magma")
    for phone, start, end in alignment.times():
        ax.axvline(start, color="white", lw=0.6, alpha=0.8)
        if phone != SIL:
            ax.text((start + end) / 2, mel.shape[0] * 0.93, phone, color="white", ha="center", fontsize=7)
    for r in reference or []:
        ax.axvline(float(r["start"]), color="red", lw=0.6, ls="--", alpha=0.8)
    ax.set_xlabel("seconds")
    ax.set_ylabel("mel bin")
    if pitch is not None and len(pitch.f0):
        ax2 = ax.twinx()
        t = np.arange(len(pitch.f0)) / fr
        f0 = np.where(pitch.uv.astype(bool), pitch.f0, np.nan)
        ax2.plot(t, f0, color="cyan", lw=1.2)
        ax2.set_ylabel("F0 (Hz)")
        ax2.set_ylim(0, max(400.0, float(np.nanmax(f0)) * 1.1) if np.isfinite(f0).any() else 400.0)
    ax.set_title(title or "alignment")
    fig.tight_layout()
    return fig
