"""Multi-resolution STFT distance (MSTFT), the codec table's spectral distance.

Definition (ParallelWaveGAN resolutions, as Amphion's ``extract_mstft(version="pwg")`` computes it,
notes/evaluation.md §5): for (n_fft, hop, win) in (1024, 120, 600), (2048, 240, 1200), (512, 50, 240),
take magnitudes ``|X| = sqrt(max(re² + im², 1e-7))`` of centred, reflect-padded STFTs and compute

    SC  = ||Y| - |X||_F / ||Y||_F          (spectral convergence, Y = reference)
    MAG = mean |log|Y| - log|X||           (L1 of log magnitudes)

each averaged over the three resolutions; MSTFT = SC + MAG. Amphion passes no window to
``torch.stft`` (a rectangular ``win``-long window, zero-padded to n_fft); PWG's training loss uses
Hann. We default to the rectangular window for parity with the paper's table and expose ``window``.
Lower is better; identical signals give exactly 0.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import MetricValue, PairwiseMetric, register
from .pesq_metric import trim_to_common_length

PWG_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
_POWER_FLOOR = 1e-7


def analysis_window(n_fft: int, win: int, window: str) -> np.ndarray:
    """``[n_fft]`` window: ``win`` taps centred in ``n_fft`` (as ``torch.stft`` pads a short window)."""
    if window == "rect":
        w = np.ones(win)
    else:  # periodic Hann, torch.hann_window's default
        w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)
    left = (n_fft - win) // 2
    return np.pad(w, (left, n_fft - win - left))


def stft_magnitude(wav: np.ndarray, n_fft: int, hop: int, win: int, window: str) -> np.ndarray:
    """``[T]`` -> ``[frames, n_fft // 2 + 1]`` floored magnitude of the centred, reflect-padded STFT.

    Same frames as ``torch.stft(center=True, pad_mode="reflect")``; numpy keeps it single-threaded
    and free of torch start-up cost.
    """
    x = np.pad(wav.astype(np.float64), n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]  # [1 + T // hop, n_fft]
    spec = np.fft.rfft(frames * analysis_window(n_fft, win, window), axis=-1)
    return np.sqrt(np.maximum(spec.real**2 + spec.imag**2, _POWER_FLOOR))


@register("mstft")
class MultiResolutionSTFTDistance(PairwiseMetric):
    """Spectral convergence + log-magnitude L1, averaged over STFT resolutions (see module doc)."""

    name = "mstft"
    higher_is_better = False

    def __init__(self, resolutions: Sequence[Sequence[int]] = PWG_RESOLUTIONS, window: str = "rect") -> None:
        if window not in ("rect", "hann"):
            raise ValueError(f"mstft: window must be 'rect' (Amphion parity) or 'hann', got {window!r}")
        self.resolutions = [tuple(int(v) for v in r) for r in resolutions]
        self.window = window

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        ref, deg = trim_to_common_length(reference, degraded)
        # reflect padding needs more than n_fft // 2 samples
        if len(ref) <= max(n_fft // 2 for n_fft, _, _ in self.resolutions):
            return MetricValue.unavailable(f"mstft: signal of {len(ref)} samples is shorter than the largest FFT half-window")
        sc, mag = [], []
        for n_fft, hop, win in self.resolutions:
            y = stft_magnitude(ref, n_fft, hop, win, self.window)
            x = stft_magnitude(deg, n_fft, hop, win, self.window)
            sc.append(np.linalg.norm(y - x) / np.linalg.norm(y))
            mag.append(np.mean(np.abs(np.log(y) - np.log(x))))
        sc_mean, mag_mean = float(np.mean(sc)), float(np.mean(mag))
        return MetricValue.of(sc_mean + mag_mean, spectral_convergence=sc_mean, log_magnitude=mag_mean)
