"""Mel-cepstral distortion (MCD) with DTW alignment, in dB.

Definition (Kubichek 1993; Kominek et al. 2008; notes/evaluation.md §3):

    MCD = mean over aligned frame pairs of (10 / ln 10) * sqrt(2 * sum_{d=1..D} (c_d - ĉ_d)²)

- features: WORLD spectral envelope (DIO + StoneMask F0, CheapTrick, 5 ms frames) converted to an
  order-D mel-cepstrum with SPTK's ``sp2mc`` at the all-pass constant α suited to the sample rate
  (``pysptk.util.mcepalpha``: 0.41 at 16 kHz);
- c0 (energy) is excluded, so a pure gain change costs nothing;
- frames are aligned by DTW (steps (1,1), (1,0), (0,1), unit weights) on the Euclidean distance of
  c1..cD, and the distortion is averaged over the path.

Implementations in the literature differ (ESPnet keeps c0; pymcd uses α=0.65, order 13); the report
states ours: WORLD + sp2mc, order 24, α=mcepalpha(fs), no c0, DTW.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import SAMPLE_RATE, MetricValue, PairwiseMetric, register

MCD_CONSTANT = 10.0 / math.log(10.0) * math.sqrt(2.0)  # ≈ 6.1418 dB per unit of cepstral distance


@dataclass(frozen=True)
class MCDAlignment:
    """MCD of two mel-cepstra plus the DTW path that produced it (``path`` is ``[L, 2]`` (ref, deg) frames)."""

    value: float
    path: np.ndarray


def dtw_path(cost: np.ndarray) -> np.ndarray:
    """Minimum-cost monotonic alignment of a ``[N, M]`` cost matrix -> ``[L, 2]`` index pairs, start to end.

    Steps (1,1), (1,0), (0,1) with unit weights (the classic symmetric DTW librosa also defaults to).
    The table is filled one anti-diagonal at a time so each step is a vectorised numpy operation.
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for k in range(2, n + m + 1):  # cells with i + j = k (1-based) depend only on diagonals k-1, k-2
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        acc[i, j] = cost[i - 1, j - 1] + np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
    i, j = n, m
    path = [(n - 1, m - 1)]
    while (i, j) != (1, 1):
        i, j = min(((i - 1, j - 1), (i - 1, j), (i, j - 1)), key=lambda c: acc[c])
        path.append((i - 1, j - 1))
    return np.asarray(path[::-1], dtype=np.int64)


def dtw_mcd(reference: np.ndarray, degraded: np.ndarray) -> MCDAlignment:
    """MCD of two ``[frames, D]`` mel-cepstra that already exclude c0, aligned by DTW on their Euclidean distance."""
    from scipy.spatial.distance import cdist

    if reference.ndim != 2 or degraded.ndim != 2 or reference.shape[1] != degraded.shape[1]:
        raise ValueError(f"mel-cepstra must be [frames, D] with equal D, got {reference.shape} and {degraded.shape}")
    if len(reference) == 0 or len(degraded) == 0:
        raise ValueError("mel-cepstra must have at least one frame")
    cost = cdist(reference.astype(np.float64), degraded.astype(np.float64))  # [Tr, Td]
    path = dtw_path(cost)
    return MCDAlignment(float(MCD_CONSTANT * cost[path[:, 0], path[:, 1]].mean()), path)


@register("mcd")
class MelCepstralDistortion(PairwiseMetric):
    """DTW-aligned MCD in dB between reference and degraded speech (see module doc)."""

    name = "mcd"
    higher_is_better = False

    def __init__(self, sample_rate: int = SAMPLE_RATE, order: int = 24, alpha: float | None = None,
                 frame_period_ms: float = 5.0) -> None:
        import pysptk

        self.sample_rate = sample_rate
        self.order = order
        self.alpha = float(pysptk.util.mcepalpha(sample_rate)) if alpha is None else float(alpha)
        self.frame_period_ms = frame_period_ms

    def mel_cepstrum(self, wav: np.ndarray) -> np.ndarray:
        """``[T]`` float waveform -> ``[frames, order]`` mel-cepstrum c1..c_order (c0 dropped)."""
        import pysptk
        import pyworld

        x = wav.astype(np.float64)
        f0, t = pyworld.dio(x, self.sample_rate, frame_period=self.frame_period_ms)
        f0 = pyworld.stonemask(x, f0, t, self.sample_rate)
        sp = pyworld.cheaptrick(x, f0, t, self.sample_rate)
        mc = pysptk.sp2mc(sp, order=self.order, alpha=self.alpha)
        return mc[:, 1:]

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        alignment = dtw_mcd(self.mel_cepstrum(reference), self.mel_cepstrum(degraded))
        return MetricValue.of(alignment.value, path_length=len(alignment.path))
