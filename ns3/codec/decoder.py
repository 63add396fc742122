"""Waveform generator mirroring the encoder: [B, D, F] -> [B, 1, F * prod(strides)] in (-1, 1)."""
from __future__ import annotations

import math

from torch import Tensor, nn

from ns3.codec.excitation import HarmonicExcitation
from ns3.codec.layers import AntiAliasedSnake, ResidualUnit, WNConv1d, WNConvTranspose1d


class DecoderBlock(nn.Module):
    """act -> transposed conv (x stride, exact) -> three dilated residual units. [B, Ci, L] -> [B, Co, sL]"""

    def __init__(self, in_ch: int, out_ch: int, stride: int, anti_alias: bool = True):
        super().__init__()
        self.block = nn.Sequential(
            AntiAliasedSnake(in_ch, anti_alias),
            # kernel 2s, padding ceil(s/2), output_padding s % 2: output length is exactly s * L.
            WNConvTranspose1d(in_ch, out_ch, 2 * stride, stride, stride // 2 + stride % 2, stride % 2),
            ResidualUnit(out_ch, 1, anti_alias),
            ResidualUnit(out_ch, 3, anti_alias),
            ResidualUnit(out_ch, 9, anti_alias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class WaveGenerator(nn.Module):
    """conv7 (D -> C) -> DecoderBlocks (C halves per stride) -> act -> conv7 to 1 channel -> tanh.

    With ``excitation`` a harmonic source at the frame F0 (``ns3.codec.excitation``) is brought to each
    block's output rate by a strided conv and added to the block's output, as in NSF-HiFiGAN.
    """

    def __init__(self, in_dim: int, channels: int, up_strides: tuple[int, ...], anti_alias: bool = True,
                 excitation: bool = False, sample_rate: int = 16_000, harmonics: int = 8):
        super().__init__()
        layers: list[nn.Module] = [WNConv1d(in_dim, channels, 7, padding=3)]
        width = channels
        self.source = HarmonicExcitation(math.prod(up_strides), sample_rate, harmonics) if excitation else None
        self.source_convs = nn.ModuleList() if excitation else None
        for i, s in enumerate(up_strides):
            layers.append(DecoderBlock(width, width // 2, s, anti_alias))
            width //= 2
            if self.source_convs is not None:
                # the source at this block's output rate: downsample by the strides still to come
                down = math.prod(up_strides[i + 1:])
                # kernel 2d, padding ceil(d/2): exactly T / d output samples, odd d too
                conv = WNConv1d(1, width, 2 * down, down, padding=(down + 1) // 2) if down > 1 else WNConv1d(1, width, 1)
                self.source_convs.append(conv)
        layers += [AntiAliasedSnake(width, anti_alias), WNConv1d(width, 1, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)  # keeps the release's state-dict keys (model.N...)

    def forward(self, x: Tensor, f0: Tensor | None = None) -> Tensor:
        """x [B, D, F] (already timbre-conditioned) -> wav [B, 1, F * hop].

        f0 [B, F] Hz (0 = unvoiced) drives the excitation; only a pitch-excited decoder takes it."""
        if self.source is None:
            return self.model(x)
        if f0 is None or tuple(f0.shape) != (x.shape[0], x.shape[2]):
            raise ValueError(f"this decoder is pitch-excited: it needs f0 [B, F] = {(x.shape[0], x.shape[2])}, "
                             f"got {None if f0 is None else tuple(f0.shape)}")
        e = self.source(f0)
        h = self.model[0](x)
        for k, conv in enumerate(self.source_convs):
            h = self.model[1 + k](h) + conv(e)
        for layer in self.model[1 + len(self.source_convs):]:
            h = layer(h)
        return h
