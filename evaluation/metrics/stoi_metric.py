"""STOI (Taal et al. 2011) and its extended variant through ``pystoi``.

pystoi resamples to 10 kHz and drops silent frames; when too little speech is left it warns and
returns 1e-5. That sentinel is not a score, so we report the utterance unavailable instead.
"""
from __future__ import annotations

import warnings

import numpy as np

from .base import SAMPLE_RATE, MetricValue, PairwiseMetric, register
from .pesq_metric import trim_to_common_length


@register("stoi")
class STOI(PairwiseMetric):
    """Short-time objective intelligibility in [0, 1] (``extended=True`` gives ESTOI)."""

    name = "stoi"
    higher_is_better = True

    def __init__(self, sample_rate: int = SAMPLE_RATE, extended: bool = False) -> None:
        self.sample_rate = sample_rate
        self.extended = extended

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        from pystoi import stoi

        ref, deg = trim_to_common_length(reference, degraded)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = stoi(ref.astype(np.float64), deg.astype(np.float64), self.sample_rate, extended=self.extended)
        for w in caught:
            if "Not enough STFT frames" in str(w.message):
                return MetricValue.unavailable("STOI: too little non-silent speech left for its 384 ms analysis segments")
        return MetricValue.of(value)
