"""Pitch accuracy of a reconstruction: F0 RMSE in cents on frames voiced in both, plus the V/UV error.

STOI and the mel distances are nearly blind to pitch (a monotone reconstruction can score STOI 0.75),
so a codec that loses intonation needs its own number. Both signals are tracked with WORLD (dio +
StoneMask, ``ns3.data.pitch``) on the codec's 12.5 ms grid. The headline value is the RMSE of
1200 log2(f0_degraded / f0_reference) over frames both call voiced; ``detail`` carries ``vuv_error``
(fraction of frames whose voicing decisions disagree) and ``gross_error`` (fraction of the
commonly voiced frames more than 50 cents off).
"""
from __future__ import annotations

import numpy as np

from .base import MetricValue, PairwiseMetric, register
from .pesq_metric import trim_to_common_length

MIN_COMMON_VOICED = 10


@register("f0_rmse")
class F0RMSE(PairwiseMetric):
    """F0 RMSE in cents between reference and degraded speech (lower is better)."""

    name = "f0_rmse"
    higher_is_better = False

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        from ns3.data.pitch import extract_pitch

        ref, deg = trim_to_common_length(reference, degraded)
        a, b = extract_pitch(ref), extract_pitch(deg)
        both = (a.uv > 0) & (b.uv > 0)
        vuv = float(np.mean(a.uv != b.uv)) if len(a.uv) else 0.0
        if int(both.sum()) < MIN_COMMON_VOICED:
            return MetricValue.unavailable(
                f"F0 RMSE: only {int(both.sum())} frames voiced in both signals (need {MIN_COMMON_VOICED})",
                vuv_error=vuv)
        cents = 1200.0 * np.log2(b.f0[both] / a.f0[both])
        return MetricValue.of(float(np.sqrt(np.mean(cents ** 2))), vuv_error=vuv,
                              gross_error=float(np.mean(np.abs(cents) > 50.0)))
