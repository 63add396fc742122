"""Phone error rate from a phone recogniser supplied by the caller.

The recogniser is any callable ``recognize(wav [T] float32 16 kHz) -> list[str]`` of phone symbols
(the pipeline's own aligner / phone classifier provides one). References are phone lists in the same
inventory. PER is the offline intelligibility stand-in when no ASR checkpoint is available.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .base import CorpusResult, MetricValue, TranscriptMetric, register
from .error_rate import aggregate_error_rate, token_errors

PhoneRecognizer = Callable[[np.ndarray], Sequence[str]]


@register("per")
class PhoneErrorRate(TranscriptMetric[Sequence[str]]):
    """Edit distance between recognised and reference phones / number of reference phones."""

    name = "per"
    higher_is_better = False

    def __init__(self, recognize: PhoneRecognizer | None = None) -> None:
        self.recognize = recognize

    @property
    def unavailable_reason(self) -> str | None:
        return None if self.recognize is not None else "no phone recogniser configured"

    def _score(self, wav: np.ndarray, reference: Sequence[str]) -> MetricValue:
        if isinstance(reference, str):
            raise TypeError("per: reference must be a list of phone symbols, not a string")
        hypothesis = list(self.recognize(wav))
        return token_errors(list(reference), hypothesis, unit="phone", hypothesis_text=" ".join(hypothesis))

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        if not any(v.available for v in values) and self.unavailable_reason:
            return super().aggregate(values)
        return aggregate_error_rate(self.name, values)
