"""FACodec's GAN discriminators: multi-period (HiFi-GAN) + multi-scale STFT (EnCodec/DAC style).

The period discriminators fold the waveform into [T/p, p] so 2-D convolutions see periodic structure;
the STFT discriminators look at complex spectrograms (real and imaginary parts as two channels) at
several resolutions, which catches phase and high-band artefacts the period view misses.

Every sub-discriminator returns its logits and its intermediate activations (for feature matching);
`CodecDiscriminator` concatenates them into one typed `DiscriminatorOutput`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

LEAKY_SLOPE = 0.1


@dataclass
class DiscriminatorOutput:
    """logits[k]: sub-discriminator k's real/fake map (any shape, batch first); features[k]: its hidden
    activations, input side first; names[k]: e.g. 'mpd/p5', 'stft/n1024' (for per-discriminator metrics)."""

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]
    names: list[str]

    def split(self, sizes: Sequence[int]) -> list["DiscriminatorOutput"]:
        """Undo a batch concatenation: one output per chunk of the batch dimension."""
        logit_parts = [torch.split(t, list(sizes)) for t in self.logits]
        feat_parts = [[torch.split(t, list(sizes)) for t in fs] for fs in self.features]
        return [
            DiscriminatorOutput(
                logits=[p[i] for p in logit_parts],
                features=[[p[i] for p in fs] for fs in feat_parts],
                names=list(self.names),
            )
            for i in range(len(sizes))
        ]


def _channels(base: int, max_channels: int, n: int, growth: int) -> list[int]:
    return [min(base * growth**i, max_channels) for i in range(n)]


class PeriodDiscriminator(nn.Module):
    """[B, 1, T] -> logits [B, 1, T'/p... flattened], features. Folds time by ``period``."""

    def __init__(self, period: int, channels: int = 32, max_channels: int = 1024, n_layers: int = 4) -> None:
        super().__init__()
        self.period = period
        chans = _channels(channels, max_channels, n_layers, 4)
        layers, c_in = [], 1
        for c in chans:
            layers.append(weight_norm(nn.Conv2d(c_in, c, (5, 1), (3, 1), padding=(2, 0))))
            c_in = c
        layers.append(weight_norm(nn.Conv2d(c_in, c_in, (5, 1), 1, padding=(2, 0))))
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(c_in, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        x = x.view(b, c, -1, self.period)
        x, feats = _conv_stack(self.convs, self.out, x)
        return x.flatten(1), feats


def _conv_stack(convs: nn.ModuleList, out: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """leaky-ReLU conv stack + output conv; every activation is a feature-matching feature."""
    feats = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        feats.append(x)
    x = out(x)
    feats.append(x)
    return x, feats


class STFTDiscriminator(nn.Module):
    """[B, 1, T] -> logits [B, 1, frames, bins], features; input = complex STFT as 2 channels."""

    def __init__(self, n_fft: int, channels: int = 32, max_channels: int = 1024, dilations: Sequence[int] = (1, 2, 4)) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [weight_norm(nn.Conv2d(2, channels, (3, 9), padding=(1, 4)))]
        c_in = channels
        for i, d in enumerate(dilations):
            c_out = min(channels * 2 ** (i + 1), max_channels)
            # Dilate along time, stride 2 along frequency (dims are [frames, bins]).
            layers.append(weight_norm(nn.Conv2d(c_in, c_out, (3, 9), stride=(1, 2), dilation=(d, 1), padding=(d, 4))))
            c_in = c_out
        layers.append(weight_norm(nn.Conv2d(c_in, c_in, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(layers)
        self.out = weight_norm(nn.Conv2d(c_in, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x.squeeze(1).float(), self.n_fft, self.hop_length, window=self.window,
                          center=True, return_complex=True)  # [B, bins, frames]
        x = torch.view_as_real(spec).permute(0, 3, 2, 1)  # [B, 2, frames, bins]
        return _conv_stack(self.convs, self.out, x)


class CodecDiscriminator(nn.Module):
    """Multi-period + multi-scale STFT discriminator. ``forward(wav [B, T]) -> DiscriminatorOutput``.

    Sizes: ``channels`` is the first layer width (doubling/quadrupling up to ``max_channels``). The
    paper-size settings are the defaults; `mini` is a CPU-cheap variant with the same structure.
    """

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        n_ffts: Sequence[int] = (2048, 1024, 512),
        mpd_channels: int = 32,
        mpd_max_channels: int = 1024,
        mpd_layers: int = 4,
        stft_channels: int = 32,
        stft_max_channels: int = 1024,
    ) -> None:
        super().__init__()
        if not periods and not n_ffts:
            raise ValueError("CodecDiscriminator needs at least one period or one STFT size")
        self.mpd = nn.ModuleList(PeriodDiscriminator(p, mpd_channels, mpd_max_channels, mpd_layers) for p in periods)
        self.stft = nn.ModuleList(STFTDiscriminator(n, stft_channels, stft_max_channels) for n in n_ffts)
        self.names = [f"mpd/p{p}" for p in periods] + [f"stft/n{n}" for n in n_ffts]

    @classmethod
    def mini(cls) -> "CodecDiscriminator":
        """Same five periods and three resolutions, narrow layers: a few hundred k parameters."""
        return cls(periods=(2, 3, 5, 7, 11), n_ffts=(1024, 512, 256), mpd_channels=8, mpd_max_channels=64,
                   mpd_layers=3, stft_channels=8, stft_max_channels=32)

    @classmethod
    def paper(cls) -> "CodecDiscriminator":
        return cls()

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        if wav.dim() != 2:
            raise ValueError(f"CodecDiscriminator expects wav [B, T], got {tuple(wav.shape)}")
        x = wav.unsqueeze(1)
        logits, feats = [], []
        for d in [*self.mpd, *self.stft]:
            lg, fs = d(x)
            logits.append(lg)
            feats.append(fs)
        return DiscriminatorOutput(logits=logits, features=feats, names=list(self.names))
