"""MCD-Acc: emotion accuracy of a 1-nearest-neighbour classifier under MCD (NS3 RAVDESS protocol).

For a generated utterance whose intended emotion is ``target``, the same speaker's ground-truth
recordings of the same sentence in every emotion are the candidates; the predicted emotion is the
candidate with the lowest MCD (notes/evaluation.md §3). Accuracy = share of correct predictions.
Each utterance's value is 1.0 / 0.0; its ``detail`` keeps the prediction and the MCD to the target
emotion's recording, whose mean is the table's "avg MCD" (``extras['mcd_target_mean']``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

import numpy as np

from .base import CorpusResult, Metric, MetricValue, check_waveform, mean_of_available, register
from .mcd import MelCepstralDistortion, dtw_mcd


@dataclass(frozen=True)
class EmotionPrediction:
    predicted: str
    distances: dict[str, float]  # emotion -> MCD (dB) between the generated speech and that recording


@register("mcd_acc")
class MCDAccuracy(Metric):
    """1-NN emotion classification by MCD against per-emotion ground-truth recordings."""

    name = "mcd_acc"
    higher_is_better = True

    def __init__(self, **mcd_kwargs: float) -> None:
        self.mcd = MelCepstralDistortion(**mcd_kwargs)

    def classify(self, generated: np.ndarray, candidates: Mapping[str, np.ndarray | None],
                 precomputed: Mapping[str, np.ndarray] | None = None) -> EmotionPrediction:
        """``candidates``: emotion -> ``[T]`` ground truth. ``precomputed``: emotion -> its mel-cepstrum,
        to reuse when the same recordings serve many generated utterances."""
        if not candidates:
            raise ValueError("mcd_acc: no candidate recordings to classify against")
        mc = self.mcd.mel_cepstrum(check_waveform(generated, "generated"))
        distances = {}
        for emotion, wav in candidates.items():
            ref = precomputed[emotion] if precomputed and emotion in precomputed else \
                self.mcd.mel_cepstrum(check_waveform(wav, f"reference[{emotion}]"))
            distances[emotion] = dtw_mcd(ref, mc).value
        return EmotionPrediction(min(distances, key=distances.__getitem__), distances)

    def score(self, generated: np.ndarray, target: str, candidates: Mapping[str, np.ndarray],
              precomputed: Mapping[str, np.ndarray] | None = None) -> MetricValue:
        if target not in candidates:
            return MetricValue.unavailable(f"mcd_acc: no ground-truth recording for target emotion {target!r}")
        pred = self.classify(generated, candidates, precomputed)
        return MetricValue.of(float(pred.predicted == target), predicted=pred.predicted, target=target,
                              mcd=pred.distances[target])

    def score_corpus(self, items: Iterable[tuple[np.ndarray, str, Mapping[str, np.ndarray]]]) -> CorpusResult:
        """``items``: (generated, target emotion, emotion -> ground truth). Recordings shared between
        items (the same actor's set) are analysed once."""
        cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id -> (array kept alive, mel-cepstrum)

        def mcep(wav: np.ndarray, emotion: str) -> np.ndarray:
            if id(wav) not in cache:
                cache[id(wav)] = (wav, self.mcd.mel_cepstrum(check_waveform(wav, f"reference[{emotion}]")))
            return cache[id(wav)][1]

        return self.aggregate([self.score(g, t, c, precomputed={e: mcep(w, e) for e, w in c.items()})
                               for g, t, c in items])

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        result = mean_of_available(self.name, values)
        mcds = [float(v.detail["mcd"]) for v in values if v.available]
        if not mcds:
            return result
        return replace(result, extras={"mcd_target_mean": float(np.mean(mcds))})
