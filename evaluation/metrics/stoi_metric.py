"""STOI (Taal et al. 2011) and its extended variant through ``pystoi``.

pystoi resamples to 10 kHz and drops silent frames; when too little speech is left it warns and
returns 1e-5. That sentinel is not a score, so we report the utterance unavailable instead. Both signals
must have the same length (a ValueError names both otherwise); pystoi itself would refuse them.
"""
from __future__ import annotations

import warnings

import numpy as np

from .base import SAMPLE_RATE, MetricValue, PairwiseMetric, check_same_length, register


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

        check_same_length(reference, degraded, self.name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = stoi(reference.astype(np.float64), degraded.astype(np.float64), self.sample_rate,
                         extended=self.extended)
        for w in caught:
            if "Not enough STFT frames" in str(w.message):
                return MetricValue.unavailable("STOI: too little non-silent speech left for its 384 ms analysis segments")
        return MetricValue.of(value)
