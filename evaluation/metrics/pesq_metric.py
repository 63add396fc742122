"""PESQ (ITU-T P.862) through the ``pesq`` package: wide-band, narrow-band, and raw narrow-band MOS.

``pesq`` returns MOS-LQO: P.862.2 for wide-band, the P.862.1 mapping for narrow-band. Amphion's codec
table used ``pypesq``, which returns *raw* narrow-band PESQ, so ``pesq_nb_raw`` inverts the P.862.1
mapping to make our numbers comparable with that column (notes/evaluation.md §5). Both signals must
have the same length (a ValueError names both otherwise): the caller aligns them, PESQ does not guess.
P.862 refuses silent or sub-quarter-second input; that utterance is reported unavailable with the
library's message instead of a number.
"""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .base import SAMPLE_RATE, MetricValue, PairwiseMetric, check_same_length, register


def trim_to_common_length(reference: np.ndarray, degraded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truncate both ``[T]`` signals to the shorter one (the reference toolkits' "cut" alignment; MSTFT and
    F0 RMSE use it, the sample-aligned PESQ and STOI refuse mismatched lengths instead)."""
    n = min(len(reference), len(degraded))
    return reference[:n], degraded[:n]


def raw_nb_from_mos_lqo(mos_lqo: float) -> float:
    """Invert P.862.1 (MOS-LQO = 0.999 + 4 / (1 + exp(-1.4945 x + 4.6607))) back to raw P.862 MOS x."""
    return (math.log(4.0 / (mos_lqo - 0.999) - 1.0) - 4.6607) / -1.4945


class PESQ(PairwiseMetric):
    """Base for the PESQ variants; ``mode`` is the ``pesq`` package's 'wb' or 'nb'."""

    mode: ClassVar[str]
    higher_is_better = True

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        if sample_rate not in (8000, 16000) or (sample_rate == 8000 and self.mode == "wb"):
            raise ValueError(f"{self.name}: PESQ needs 16000 Hz (or 8000 Hz for narrow-band), got {sample_rate}")
        self.sample_rate = sample_rate

    def _mos(self, reference: np.ndarray, degraded: np.ndarray) -> float | str:
        from pesq import PesqError, pesq

        check_same_length(reference, degraded, self.name)
        if not reference.any() or not degraded.any():  # pesq would divide by a zero peak before refusing it
            return "PESQ cannot score this pair: a signal is all zeros"
        try:
            return float(pesq(self.sample_rate, reference, degraded, self.mode))
        except PesqError as e:  # NoUtterancesError, BufferTooShortError, ...
            msg = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
            return f"PESQ cannot score this pair: {type(e).__name__}: {msg}"

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        mos = self._mos(reference, degraded)
        return MetricValue.unavailable(mos) if isinstance(mos, str) else MetricValue.of(mos)


@register("pesq_wb")
class PESQWideBand(PESQ):
    """Wide-band PESQ MOS-LQO (P.862.2), 16 kHz: the primary codec-quality number."""

    name = "pesq_wb"
    mode = "wb"


@register("pesq_nb")
class PESQNarrowBand(PESQ):
    """Narrow-band PESQ MOS-LQO (P.862.1 mapping)."""

    name = "pesq_nb"
    mode = "nb"


@register("pesq_nb_raw")
class PESQNarrowBandRaw(PESQ):
    """Raw narrow-band P.862 MOS (what ``pypesq`` and Amphion's codec evaluation report)."""

    name = "pesq_nb_raw"
    mode = "nb"

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        mos = self._mos(reference, degraded)
        return MetricValue.unavailable(mos) if isinstance(mos, str) else MetricValue.of(raw_nb_from_mos_lqo(mos))
