"""Speech-like test signals for the metric tests: espeak-ng utterances at 16 kHz, noise at a given SNR."""
from __future__ import annotations

import numpy as np

from ns3.audio import SAMPLE_RATE, resample
from ns3.text.espeak import Voice, synthesize

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
OTHER_SENTENCE = "Seven silver spoons were left on the kitchen table yesterday."


def speak(text: str, voice: str = "en-us", **params: int) -> np.ndarray:
    s = synthesize(text, Voice(voice, **params))
    return resample(s.audio, s.sample_rate, SAMPLE_RATE)


def add_noise(wav: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise at ``snr_db`` relative to the signal's mean power."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(np.mean(wav.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    return (wav + scale * rng.standard_normal(len(wav))).astype(np.float32)


