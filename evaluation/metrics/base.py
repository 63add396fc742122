"""What every metric shares: result types, input checks, corpus aggregation and the name registry.

A metric either produces a number or says why it could not (``unavailable`` + reason). There is no
third state: a missing model, a silent utterance or an empty transcript never turns into a zero that
would quietly pull a corpus mean down. The metric's ``name`` is the one key used everywhere: the
MLflow metric (``eval/<name>``), the metrics JSON and the report column.

Three input shapes cover the paper's metrics:
- ``PairwiseMetric.score(reference, degraded)``: two waveforms (PESQ, STOI, MSTFT, MCD, SIM);
- ``SignalMetric.score(wav)``: one waveform (UTMOS);
- ``TranscriptMetric.score(wav, reference)``: a waveform against a text or phone sequence (WER, PER).
Waveforms are ``[T]`` float32 numpy arrays at 16 kHz (``ns3.audio.SAMPLE_RATE``).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Iterable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

from ns3.audio import SAMPLE_RATE  # noqa: F401  (re-exported: every metric input is at this rate)

Detail = Mapping[str, "float | int | str"]


@dataclass(frozen=True)
class MetricValue:
    """One utterance's score: ``value`` or, when it cannot be computed, ``reason`` (exactly one is set).

    ``detail`` carries what a report or a corpus-level aggregate needs besides the headline number
    (error counts for WER, the predicted label for MCD-Acc, the ASR hypothesis, ...).
    """

    value: float | None
    reason: str | None = None
    detail: Detail = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.value is None) == (self.reason is None):
            raise ValueError("MetricValue needs exactly one of value / reason")
        if self.value is not None:
            if not math.isfinite(self.value):
                raise ValueError(f"metric value must be finite, got {self.value}")
            object.__setattr__(self, "value", float(self.value))

    @classmethod
    def of(cls, value: float, **detail: float | int | str) -> "MetricValue":
        return cls(value=float(value), detail=detail)

    @classmethod
    def unavailable(cls, reason: str, **detail: float | int | str) -> "MetricValue":
        return cls(value=None, reason=reason, detail=detail)

    @property
    def available(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason, **dict(self.detail)}


@dataclass(frozen=True)
class CorpusResult:
    """A metric over a set of utterances.

    ``value`` is the headline corpus number (the mean of available utterances unless the metric
    defines a corpus-level statistic, e.g. WER = total errors / total words); ``extras`` holds further
    named corpus numbers (``wer_utt_mean``); ``reason`` explains a ``None`` value.
    """

    name: str
    value: float | None
    per_utterance: list[MetricValue]
    reason: str | None = None
    extras: dict[str, float] = field(default_factory=dict)

    @property
    def n_available(self) -> int:
        return sum(v.available for v in self.per_utterance)

    @property
    def n_unavailable(self) -> int:
        return len(self.per_utterance) - self.n_available

    def as_metrics(self, prefix: str = "eval/") -> dict[str, float]:
        """Numbers for ``ns3.tracking.log_metrics``; unavailable values are left out, never zero-filled."""
        out = {f"{prefix}{self.name}": self.value} if self.value is not None else {}
        out.update({f"{prefix}{k}": v for k, v in self.extras.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for ``metrics/*.json``; per-utterance entries keep their reasons."""
        return {
            "name": self.name, "value": self.value, "reason": self.reason, "extras": dict(self.extras),
            "n": len(self.per_utterance), "n_available": self.n_available,
            "per_utterance": [v.to_dict() for v in self.per_utterance],
        }


def check_waveform(wav: np.ndarray, what: str = "waveform") -> np.ndarray:
    """Validate a ``[T]`` float waveform and return it as float32 (raises ValueError naming ``what``)."""
    a = np.asarray(wav)
    if a.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D [T] waveform, got shape {a.shape} (mix down to mono first)")
    if a.dtype.kind != "f":
        raise ValueError(f"{what}: expected float samples in [-1, 1], got dtype {a.dtype} (see ns3.audio.to_mono_float)")
    if a.size == 0:
        raise ValueError(f"{what}: empty waveform")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: contains NaN or inf samples")
    return a


def check_same_length(reference: np.ndarray, degraded: np.ndarray, metric: str) -> None:
    """Sample-aligned metrics (PESQ, STOI) compare the two signals sample by sample: a length mismatch is
    the caller's misalignment, and truncating it away here would hide it. Callers align explicitly
    (e.g. ``evaluation.codec_eval.match_length`` for a codec's whole-frame output)."""
    if len(reference) != len(degraded):
        raise ValueError(f"{metric}: reference has {len(reference)} samples, degraded {len(degraded)}; "
                         "align the two signals before scoring (trim or pad explicitly where they are produced)")


def mean_of_available(name: str, values: Sequence[MetricValue]) -> CorpusResult:
    """Default corpus aggregation: arithmetic mean over the utterances that have a value."""
    values = list(values)
    got = [v.value for v in values if v.value is not None]
    if not got:
        reasons = sorted({v.reason for v in values if v.reason})
        reason = "; ".join(reasons) if reasons else "no utterances"
        return CorpusResult(name, None, values, reason=f"no utterance could be scored: {reason}")
    return CorpusResult(name, float(np.mean(got)), values)


class Metric(ABC):
    """Common surface. Subclasses set ``name`` (the registry / MLflow key) and ``higher_is_better``."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    @property
    def unavailable_reason(self) -> str | None:
        """Why this metric cannot run at all (e.g. no checkpoint configured); None when it can."""
        return None

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        if self.unavailable_reason is not None and not any(v.available for v in values):
            return CorpusResult(self.name, None, list(values), reason=self.unavailable_reason)
        return mean_of_available(self.name, values)


class PairwiseMetric(Metric):
    """Reference vs degraded (or generated vs prompt) waveform, both ``[T]`` float32 at 16 kHz."""

    def score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        if self.unavailable_reason is not None:
            return MetricValue.unavailable(self.unavailable_reason)
        return self._score(check_waveform(reference, "reference"), check_waveform(degraded, "degraded"))

    def score_corpus(self, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> CorpusResult:
        return self.aggregate([self.score(r, d) for r, d in pairs])

    @abstractmethod
    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue: ...


class SignalMetric(Metric):
    """A single ``[T]`` float32 waveform at 16 kHz (non-intrusive metrics such as UTMOS)."""

    def score(self, wav: np.ndarray) -> MetricValue:
        if self.unavailable_reason is not None:
            return MetricValue.unavailable(self.unavailable_reason)
        return self._score(check_waveform(wav))

    def score_corpus(self, wavs: Iterable[np.ndarray]) -> CorpusResult:
        return self.aggregate([self.score(w) for w in wavs])

    @abstractmethod
    def _score(self, wav: np.ndarray) -> MetricValue: ...


R = TypeVar("R")


class TranscriptMetric(Metric, Generic[R]):
    """A ``[T]`` waveform against a symbolic reference ``R`` (text for WER, phone list for PER)."""

    def score(self, wav: np.ndarray, reference: R) -> MetricValue:
        if self.unavailable_reason is not None:
            return MetricValue.unavailable(self.unavailable_reason)
        return self._score(check_waveform(wav), reference)

    def score_corpus(self, items: Iterable[tuple[np.ndarray, R]]) -> CorpusResult:
        return self.aggregate([self.score(w, r) for w, r in items])

    @abstractmethod
    def _score(self, wav: np.ndarray, reference: R) -> MetricValue: ...


class LocalModel:
    """Mixin for metrics whose model loads lazily from a local path (weights are never downloaded).

    Without a usable path the metric is unavailable, with the reason; subclasses name the expected format in
    ``model_description`` and implement ``_load_model`` (validate the path's format, build the model).
    List it before the metric base class so its ``unavailable_reason`` wins.
    """

    model_description: ClassVar[str]

    def _init_local(self, checkpoint: str | Path | None, device: str) -> None:
        self.checkpoint = checkpoint
        self.device = device
        self._reason = local_model_reason(checkpoint, self.model_description)
        self._model = None

    @property
    def unavailable_reason(self) -> str | None:
        return self._reason

    def _load(self):
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def _load_model(self):
        raise NotImplementedError


def local_model_reason(path: str | Path | None, what: str) -> str | None:
    """Why a weight-needing metric cannot run: no path configured or the path is absent; None if usable."""
    if path is None or str(path) == "":
        return f"no {what} configured (give a local path; weights are never downloaded)"
    if not Path(path).exists():
        return f"{what} not found at {path}"
    return None


# ---------------------------------------------------------------------------------------------
# registry

_REGISTRY: dict[str, Callable[..., Metric]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make ``build_metric(name, **kwargs)`` construct this metric."""

    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} registered twice")
        if getattr(cls, "name", None) != name:
            raise ValueError(f"{cls.__name__}.name must be {name!r} to be registered under it")
        _REGISTRY[name] = cls
        return cls

    return deco


def metric_names() -> list[str]:
    return sorted(_REGISTRY)


def build_metric(name: str, **kwargs: Any) -> Metric:
    """Construct a metric by its key from plain kwargs (e.g. ``checkpoint="/models/whisper.pt"``)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(metric_names())}") from None
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise TypeError(f"metric {name!r}: bad arguments {sorted(kwargs)} ({e})") from e



def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two ``[D]`` embeddings (speaker similarity is reported this way everywhere)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    if denom == 0.0:
        raise ValueError("cosine similarity of a zero embedding is undefined")
    return float(np.clip(a @ b / denom, -1.0, 1.0))


@contextmanager
def cpu_inference(single_thread: bool = False) -> Iterator[None]:
    """``torch.inference_mode`` for scoring one utterance at a time, with CPU pitfalls avoided:

    - denormal floats: recurrent speaker encoders drift into subnormal activations, which the CPU
      handles ~100x slower; flushing them to zero changes no printed digit. The flag is per thread
      and torch's worker threads do not inherit it, so small recurrent models (``single_thread``)
      run on the calling thread only -- for them that is also faster than fanning out;
    - oneDNN LSTM kernels are rebuilt for every new input length (1-4 CPU-seconds each), and
      utterance lengths always differ; torch's native kernel has no such cost.
    torch offers no getter for the denormal mode, so it is restored to the default (off) afterwards.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    if single_thread:
        torch.set_num_threads(1)
    try:
        with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
            yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)
