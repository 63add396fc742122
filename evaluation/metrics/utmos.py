"""UTMOS (UTMOS22 strong learner, as cited by NS3 via SpeechMOS) from a local checkpoint.

Checkpoint format: SpeechMOS's released state dict (``utmos22_strong_step7459_v1.pt``, a plain
``{name: tensor}`` dict for ``UTMOS22Strong``), loaded with ``weights_only=True`` and ``strict=True``.
Inputs are scored one utterance at a time (padding would shift the time-mean score) at 16 kHz, which
is the rate SpeechMOS resamples to internally.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import LocalModel, MetricValue, SignalMetric, cpu_inference, register

MIN_SAMPLES = 400  # the conv front end needs 400 samples (25 ms) for one frame


def load_utmos(path: str | Path, device: str = "cpu", num_heads: int | None = None):
    """Build ``UTMOS22Strong`` with sizes read from the checkpoint and load it strictly."""
    import torch

    from .utmos_model import UTMOS22Strong, UTMOSConfig, upgrade_weight_norm_keys

    path = Path(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: cannot read UTMOS checkpoint ({type(e).__name__}: {e})") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or "wav2vec2.post_extract_proj.weight" not in sd:
        raise ValueError(f"{path}: not a SpeechMOS UTMOS22-strong state dict (no 'wav2vec2.post_extract_proj.weight'); "
                         "use utmos22_strong_step7459_v1.pt from the SpeechMOS release")
    sd = upgrade_weight_norm_keys(sd)
    model = UTMOS22Strong(UTMOSConfig.from_state_dict(sd, num_heads=num_heads))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: UTMOS state dict does not match the UTMOS22-strong layout: {e}") from e
    return model.to(device).eval()


@register("utmos")
class UTMOS(LocalModel, SignalMetric):
    """Predicted naturalness MOS (1..5) of one waveform."""

    name = "utmos"
    higher_is_better = True
    model_description = "UTMOS checkpoint (SpeechMOS utmos22_strong .pt)"

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", num_heads: int | None = None) -> None:
        self._init_local(checkpoint, device)
        self.num_heads = num_heads

    def _load_model(self):
        return load_utmos(self.checkpoint, self.device, self.num_heads)

    def _score(self, wav: np.ndarray) -> MetricValue:
        import torch

        if len(wav) < MIN_SAMPLES:
            return MetricValue.unavailable(f"utmos: {len(wav)} samples is shorter than one wav2vec 2.0 frame")
        with cpu_inference():
            score = self._load()(torch.from_numpy(wav).to(self.device)[None])
        return MetricValue.of(float(score[0]))
