"""Harmonic excitation for the decoder: an explicit pitch source (neural source-filter style).

A waveform decoder that sees only 80 frames/s codes has to invent the phase of every glottal pulse.
Trained for minutes rather than days it does not: it emits one pulse per frame, i.e. a monotone buzz at
exactly the frame rate whatever the speaker's pitch (measured on the mini codec: F0 locked at 80.0 Hz).
With ``FACodecHParams.excitation`` the decoder is also given a sine source at the frame F0, so pitch and
its phase come for free and the decoder only shapes the spectrum.

F0 is not side information: it is predicted from what the codec transmits, i.e. normalised log-F0 and
voicing from the prosody codes (the prosody head) and the speaker's register (mean, std of voiced log-F0)
from the timbre vector (``RegisterHead``). Voice conversion therefore takes the prompt's register with its
timbre. In training the decoder is driven by the ground-truth F0 (teacher forcing), as NSF vocoders are.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class RegisterHead(nn.Module):
    """Timbre vector [B, D] -> the speaker's pitch register [B, 2]: (mean, std) of voiced natural-log F0."""

    # Centre the untrained output on a typical register so early predictions are plausible voices.
    PRIOR_MEAN, PRIOR_STD = math.log(120.0), 0.15

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, timbre: Tensor) -> Tensor:
        out = self.proj(timbre)
        mean = self.PRIOR_MEAN + out[:, 0]
        std = self.PRIOR_STD * torch.exp(out[:, 1].clamp(-4.0, 4.0))
        return torch.stack([mean, std], dim=1)


class HarmonicExcitation(nn.Module):
    """F0 [B, F] Hz (0 = unvoiced) -> excitation [B, 1, F * hop] in (-1, 1).

    ``harmonics`` sines at k * F0 (k = 1..H, those under Nyquist), merged by a learnt linear layer and tanh;
    Gaussian noise everywhere (louder where unvoiced). F0 is held per frame (nearest upsampling) and the
    phase is integrated sample by sample, so the pitch is continuous across frames.
    """

    def __init__(self, hop_length: int, sample_rate: int, harmonics: int = 8, sine_amp: float = 0.1,
                 noise_std: float = 0.003):
        super().__init__()
        self.hop_length, self.sample_rate, self.harmonics = hop_length, sample_rate, harmonics
        self.sine_amp, self.noise_std = sine_amp, noise_std
        self.merge = nn.Linear(harmonics, 1)
        # Start as the plain sum of the harmonics (a pulse-like source of amplitude ~0.5), not a random mix
        # that can nearly cancel: the decoder should find a clear pitch signal from the first step.
        nn.init.constant_(self.merge.weight, 1.0)
        nn.init.zeros_(self.merge.bias)
        self.register_buffer("orders", torch.arange(1, harmonics + 1, dtype=torch.float32), persistent=False)

    def forward(self, f0: Tensor) -> Tensor:
        if f0.dim() != 2:
            raise ValueError(f"HarmonicExcitation expects frame F0 [B, F], got {tuple(f0.shape)}")
        f = f0.float().repeat_interleave(self.hop_length, dim=1)  # [B, T]
        voiced = (f > 0).float().unsqueeze(-1)  # [B, T, 1]
        freqs = f.unsqueeze(-1) * self.orders  # [B, T, H]
        # Integrate in float64: a 20 s utterance is ~10^5 cycles, beyond float32's fractional precision.
        cycles = torch.cumsum(freqs.double() / self.sample_rate, dim=1)
        if self.training:  # a random start phase per harmonic: the decoder must not rely on absolute phase
            cycles = cycles + torch.rand(f.shape[0], 1, self.harmonics, device=f.device, dtype=cycles.dtype)
        sines = torch.sin(2 * math.pi * torch.frac(cycles)).float()
        sines = sines * (freqs < self.sample_rate / 2).float() * self.sine_amp * voiced
        noise_amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
        if self.training:
            noise = torch.randn_like(sines)
        else:  # decoding is deterministic: a fixed noise draw
            g = torch.Generator(device=sines.device).manual_seed(0)
            noise = torch.randn(sines.shape, generator=g, device=sines.device, dtype=sines.dtype)
        source = sines + noise_amp * noise
        return torch.tanh(self.merge(source)).transpose(1, 2)  # [B, 1, T]
