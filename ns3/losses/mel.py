"""Multi-scale mel reconstruction loss (the DAC-style reconstruction term of FACodec).

L1 between log-mel spectrograms at several STFT resolutions, summed over scales: short windows see
transients, long windows see pitch harmonics, and no single resolution trades one for the other.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ns3.audio import SAMPLE_RATE


@dataclass(frozen=True)
class MelScale:
    """One STFT resolution: window/FFT size, hop and number of mel bands."""

    n_fft: int
    hop_length: int
    n_mels: int


# DAC's seven resolutions (window 32..2048, hop = window / 4, 5..320 mels).
DAC_SCALES: tuple[MelScale, ...] = tuple(
    MelScale(n, n // 4, m) for n, m in zip((32, 64, 128, 256, 512, 1024, 2048), (5, 10, 20, 40, 80, 160, 320))
)
# Three resolutions: enough structure for CPU smoke runs at a fraction of the cost.
MINI_SCALES: tuple[MelScale, ...] = (MelScale(256, 64, 40), MelScale(512, 128, 80), MelScale(1024, 256, 80))


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    import librosa

    with warnings.catch_warnings():
        # Small FFTs with many bands leave some filters empty; those bands are simply constant (zero loss).
        warnings.simplefilter("ignore", UserWarning)
        fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=sample_rate / 2)
    return torch.from_numpy(fb).float()  # [n_mels, n_fft // 2 + 1]


class MultiScaleMelLoss(nn.Module):
    """``forward(wav_hat [B, T], wav [B, T]) -> scalar``: sum over scales of mean |log mel(x̂) − log mel(x)|.

    Magnitudes are clamped at ``clamp_eps`` before the log so silence does not dominate.
    loss(x, x) is exactly 0.
    """

    def __init__(
        self,
        scales: Sequence[MelScale] = DAC_SCALES,
        sample_rate: int = SAMPLE_RATE,
        clamp_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if not scales:
            raise ValueError("MultiScaleMelLoss needs at least one MelScale")
        self.scales = tuple(scales)
        self.clamp_eps = clamp_eps
        for i, s in enumerate(self.scales):
            self.register_buffer(f"fb{i}", _mel_filterbank(sample_rate, s.n_fft, s.n_mels), persistent=False)
            self.register_buffer(f"win{i}", torch.hann_window(s.n_fft), persistent=False)

    def log_mel(self, wav: torch.Tensor, index: int) -> torch.Tensor:
        """[B, T] -> [B, n_mels, frames] log-mel at scale ``index``."""
        s = self.scales[index]
        spec = torch.stft(
            wav.float(), n_fft=s.n_fft, hop_length=s.hop_length, window=getattr(self, f"win{index}"),
            center=True, return_complex=True,
        ).abs()
        mel = torch.matmul(getattr(self, f"fb{index}"), spec)
        return mel.clamp_min(self.clamp_eps).log()

    def forward(self, wav_hat: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
        if wav_hat.shape != wav.shape or wav.dim() != 2:
            raise ValueError(f"MultiScaleMelLoss expects two [B, T] waveforms, got {tuple(wav_hat.shape)} and {tuple(wav.shape)}")
        loss = wav.new_zeros((), dtype=torch.float32)
        for i in range(len(self.scales)):
            loss = loss + F.l1_loss(self.log_mel(wav_hat, i), self.log_mel(wav, i))
        return loss
