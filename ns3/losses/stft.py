"""Multi-resolution STFT loss (spectral convergence + log magnitude), the usual companion of an iSTFT head.

The mel loss compares perceptual bands; this one compares the linear-frequency magnitudes, where a
voice's harmonics are separate peaks, so a head that predicts the STFT gets a direct signal for each of
them. Per resolution:
  spectral convergence  ||  |S(x)| - |S(x̂)|  ||_F / || |S(x)| ||_F
  log magnitude         mean | log |S(x)| - log |S(x̂)| |
summed over both and averaged over resolutions (Yamamoto et al. 2020, Parallel WaveGAN).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# (n_fft, hop): 16, 32 and 64 ms windows with 75 % overlap at 16 kHz.
STFT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((256, 64), (512, 128), (1024, 256))


class MultiResolutionSTFTLoss(nn.Module):
    """``forward(wav_hat [B, T], wav [B, T]) -> scalar``; loss(x, x) is exactly 0."""

    def __init__(self, resolutions: Sequence[tuple[int, int]] = STFT_RESOLUTIONS, eps: float = 1e-5) -> None:
        super().__init__()
        if not resolutions:
            raise ValueError("MultiResolutionSTFTLoss needs at least one (n_fft, hop) resolution")
        self.resolutions = tuple((int(n), int(h)) for n, h in resolutions)
        self.eps = eps
        for i, (n, _) in enumerate(self.resolutions):
            self.register_buffer(f"win{i}", torch.hann_window(n), persistent=False)

    def _magnitude(self, wav: torch.Tensor, index: int) -> torch.Tensor:
        n, hop = self.resolutions[index]
        spec = torch.stft(wav.float(), n_fft=n, hop_length=hop, window=getattr(self, f"win{index}"),
                          center=True, return_complex=True)
        return spec.abs().clamp_min(self.eps)

    def forward(self, wav_hat: torch.Tensor, wav: torch.Tensor) -> torch.Tensor:
        if wav_hat.shape != wav.shape or wav.dim() != 2:
            raise ValueError(f"MultiResolutionSTFTLoss expects two [B, T] waveforms, got {tuple(wav_hat.shape)} "
                             f"and {tuple(wav.shape)}")
        total = wav.new_zeros(())
        for i in range(len(self.resolutions)):
            ref, est = self._magnitude(wav, i), self._magnitude(wav_hat, i)
            convergence = torch.linalg.norm(ref - est) / torch.linalg.norm(ref).clamp_min(self.eps)
            log_mag = (ref.log() - est.log()).abs().mean()
            total = total + convergence + log_mag
        return total / len(self.resolutions)
