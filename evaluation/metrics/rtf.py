"""Real-time factor: processing seconds / seconds of audio produced (lower is faster; < 1 is faster than real time).

Usage::

    rtf = RealTimeFactor(synchronize=torch.cuda.synchronize)   # synchronize: GPU work is asynchronous
    for text in texts:
        with rtf.measure() as m:
            wav = tts(text)
            m.audio_samples = len(wav)
    rtf.result()   # CorpusResult: Σ processing / Σ audio, plus the per-utterance mean as ``rtf_utt_mean``

The clock is injectable so the arithmetic can be tested without timing anything.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from .base import SAMPLE_RATE, CorpusResult, Metric, MetricValue, mean_of_available, register


@dataclass
class Measurement:
    """Filled in inside ``measure()``: how much audio the timed block produced."""

    audio_samples: int | None = None
    sample_rate: int = SAMPLE_RATE

    @property
    def audio_seconds(self) -> float | None:
        return None if self.audio_samples is None else self.audio_samples / self.sample_rate


@register("rtf")
class RealTimeFactor(Metric):
    """Accumulates (processing time, audio duration) pairs; see module doc."""

    name = "rtf"
    higher_is_better = False

    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 synchronize: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self.synchronize = synchronize
        self.values: list[MetricValue] = []

    @contextmanager
    def measure(self) -> Iterator[Measurement]:
        m = Measurement()
        if self.synchronize:
            self.synchronize()
        start = self.clock()
        yield m
        if self.synchronize:
            self.synchronize()
        self.add(self.clock() - start, m.audio_seconds)

    def add(self, processing_seconds: float, audio_seconds: float | None) -> MetricValue:
        """Record one utterance timed elsewhere."""
        if audio_seconds is None:
            v = MetricValue.unavailable("rtf: the timed block did not report how much audio it produced")
        elif audio_seconds <= 0:
            v = MetricValue.unavailable("rtf: the timed block produced no audio")
        else:
            v = MetricValue.of(processing_seconds / audio_seconds, processing_seconds=processing_seconds,
                               audio_seconds=audio_seconds)
        self.values.append(v)
        return v

    def result(self) -> CorpusResult:
        return self.aggregate(self.values)

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        scored = [v for v in values if v.available]
        if not scored:
            return mean_of_available(self.name, values)
        processing = sum(float(v.detail["processing_seconds"]) for v in scored)
        audio = sum(float(v.detail["audio_seconds"]) for v in scored)
        return CorpusResult(self.name, processing / audio, list(values),
                            extras={"rtf_utt_mean": float(np.mean([v.value for v in scored]))})
