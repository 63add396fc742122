"""Frame-rate iSTFT waveform head (the Vocos design), an alternative to the DAC-style WaveGenerator.

The sample-rate decoder must learn to place glottal pulses in the time domain through four transposed
convolutions, which is slow to learn and most of the codec's CPU cost. This head runs its whole network
at the frame rate (80 frames/s): a ConvNeXt stack whose layer norms are conditioned on the timbre, then a
linear projection to the log-magnitude and phase of an STFT whose hop is the codec's hop, inverted with
``torch.istft``. Pitch is then harmonic peaks in the magnitude: with n_fft 800 (50 ms at 16 kHz) the bins
are 20 Hz apart, fine enough to resolve the harmonics of a 100 Hz voice.

Framing: STFT frame t is centred on sample t * hop (``center=True``) and the output is cut to exactly
F * hop samples; each output sample depends only on the frames whose window covers it, plus the
trunk's receptive field (non-causal, like the DAC decoder's convolutions). Every operation is per item,
so an utterance decodes the same alone or in a batch.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ns3.codec.timbre import ConditionalLayerNorm


class ConvNeXtBlock(nn.Module):
    """depthwise conv7 -> timbre-conditioned LayerNorm -> pointwise C -> mult*C -> GELU -> C, scaled residual.

    x [B, C, F], timbre [B, Dt] -> [B, C, F]
    """

    def __init__(self, channels: int, timbre_dim: int, mult: int = 3, layer_scale: float = 0.1):
        super().__init__()
        self.dwconv = nn.Conv1d(channels, channels, 7, padding=3, groups=channels)
        self.norm = ConditionalLayerNorm(channels, timbre_dim)
        self.pw1 = nn.Linear(channels, mult * channels)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(mult * channels, channels)
        # a small residual scale keeps the deep stack near identity at the start (ConvNeXt's layer scale)
        self.gamma = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: Tensor, timbre: Tensor) -> Tensor:
        h = self.norm(self.dwconv(x), timbre).transpose(1, 2)  # [B, F, C]
        h = self.pw2(self.act(self.pw1(h))) * self.gamma
        return x + h.transpose(1, 2)


class ISTFTGenerator(nn.Module):
    """conv7 (D -> C) -> ConvNeXt blocks -> LayerNorm -> linear to (log|S|, phase) -> istft.

    forward(x [B, D, F] (already timbre-conditioned), timbre [B, D]) -> wav [B, 1, F * hop].
    In eval mode the waveform is clipped to [-1, 1] (a valid PCM signal); in training it is not, so the
    losses keep their gradient where the head overshoots.
    """

    max_log_magnitude = 4.6  # exp(4.6) ~ 100: caps the magnitude as Vocos does, so early steps cannot overflow

    def __init__(self, in_dim: int, channels: int, layers: int, hop_length: int, n_fft: int, timbre_dim: int):
        super().__init__()
        if n_fft < hop_length:
            raise ValueError(f"istft n_fft={n_fft} must be >= the hop {hop_length} (windows must overlap)")
        self.hop_length, self.n_fft = hop_length, n_fft
        self.embed = nn.Conv1d(in_dim, channels, 7, padding=3)
        self.blocks = nn.ModuleList(ConvNeXtBlock(channels, timbre_dim, layer_scale=1.0 / layers) for _ in range(layers))
        self.norm = nn.LayerNorm(channels)
        self.bins = n_fft // 2 + 1
        self.head = nn.Linear(channels, 2 * self.bins)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def spectrum(self, x: Tensor, timbre: Tensor) -> Tensor:
        """x [B, D, F], timbre [B, D] -> complex STFT [B, n_fft // 2 + 1, F]."""
        h = self.embed(x)
        for block in self.blocks:
            h = block(h, timbre)
        out = self.head(self.norm(h.transpose(1, 2))).transpose(1, 2)  # [B, 2K, F]
        log_mag, phase = out.float().split(self.bins, dim=1)
        mag = log_mag.clamp(max=self.max_log_magnitude).exp()
        # cos/sin of an unconstrained angle: the phase wraps freely and the real/imaginary parts stay bounded
        return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))

    def forward(self, x: Tensor, timbre: Tensor) -> Tensor:
        frames = x.shape[-1]
        wav = torch.istft(self.spectrum(x, timbre), self.n_fft, self.hop_length, self.n_fft, window=self.window,
                          center=True, length=frames * self.hop_length)
        if not self.training:
            wav = wav.clamp(-1.0, 1.0)
        return wav.unsqueeze(1)
