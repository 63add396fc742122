"""Speaker similarity with a WavLM x-vector verification model loaded from a local directory.

Format: a Hugging Face ``WavLMForXVector`` directory (``config.json``, weights and
``preprocessor_config.json``), e.g. a local copy of ``microsoft/wavlm-base-plus-sv`` -- the model
NS3 used for its VC SIM-O (App. B.3) and Amphion's ``wavlm_similarity``. Similarity is the cosine of
the x-vectors, as in the model card. No path, or a path that does not exist, makes the metric
unavailable with that reason; a directory that exists but is not in this format is an error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SAMPLE_RATE, LocalModel, MetricValue, PairwiseMetric, cosine, cpu_inference, register


@register("sim_wavlm")
class WavLMSimilarity(LocalModel, PairwiseMetric):
    """cos(x-vector(prompt or reference), x-vector(generated)) in [-1, 1]."""

    name = "sim_wavlm"
    higher_is_better = True
    model_description = "WavLM x-vector model directory"

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu") -> None:
        self._init_local(checkpoint, device)

    def _load_model(self):
        """-> (model, feature extractor)"""
        path = Path(self.checkpoint)
        for needed in ("config.json", "preprocessor_config.json"):
            if not (path / needed).is_file():
                raise ValueError(f"{path}: not a Hugging Face WavLMForXVector directory (no {needed}); point "
                                 "sim_wavlm.checkpoint at a full local copy of microsoft/wavlm-base-plus-sv")
        from transformers import Wav2Vec2FeatureExtractor, WavLMForXVector

        model = WavLMForXVector.from_pretrained(str(path)).to(self.device).eval()
        # the feature extractor's settings (e.g. input normalisation) belong to the checkpoint
        return model, Wav2Vec2FeatureExtractor.from_pretrained(str(path))

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """``[T]`` 16 kHz -> ``[xvector_output_dim]`` x-vector."""
        model, extractor = self._load()
        inputs = extractor(wav, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with cpu_inference():
            out = model(**{k: v.to(self.device) for k, v in inputs.items()})
        return out.embeddings[0].float().cpu().numpy()

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        return MetricValue.of(cosine(self.embed(reference), self.embed(degraded)))
