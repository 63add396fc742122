"""Speaker similarity with Resemblyzer's d-vector encoder: the offline stand-in that always works.

The ``resemblyzer`` wheel ships its weights (a 3-layer LSTM, 256-d L2-normalised embeddings over
40-band mels in 1.6 s partials), so nothing needs downloading. It is *not* the WavLM verification
model the paper used, and its numbers are not comparable to the paper's SIM (notes/evaluation.md §7).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import MetricValue, PairwiseMetric, cosine, cpu_inference, register


@register("sim_resemblyzer")
class ResemblyzerSimilarity(PairwiseMetric):
    """cos(embedding(prompt or reference), embedding(generated)) in [-1, 1]."""

    name = "sim_resemblyzer"
    higher_is_better = True

    def __init__(self, weights: str | Path | None = None, device: str = "cpu") -> None:
        self.weights = weights
        self.device = device
        self._encoder = None

    def _load(self):
        if self._encoder is None:
            from resemblyzer import VoiceEncoder

            self._encoder = VoiceEncoder(device=self.device, verbose=False,
                                         weights_fpath=None if self.weights is None else Path(self.weights))
        return self._encoder

    def embed(self, wav: np.ndarray) -> np.ndarray | str:
        """``[T]`` 16 kHz -> ``[256]`` embedding, or the reason there is no speech to embed."""
        from resemblyzer import preprocess_wav

        speech = preprocess_wav(wav)  # volume normalisation + VAD trimming of long silences
        if len(speech) == 0:
            return "Resemblyzer found no voiced audio after silence trimming"
        with cpu_inference(single_thread=True):
            return self._load().embed_utterance(speech)

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        ref, deg = self.embed(reference), self.embed(degraded)
        for e in (ref, deg):
            if isinstance(e, str):
                return MetricValue.unavailable(e)
        return MetricValue.of(cosine(ref, deg))
