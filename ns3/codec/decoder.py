"""Waveform generator mirroring the encoder: [B, D, F] -> [B, 1, F * prod(strides)] in (-1, 1)."""
from __future__ import annotations

from torch import Tensor, nn

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
    """conv7 (D -> C) -> DecoderBlocks (C halves per stride) -> act -> conv7 to 1 channel -> tanh."""

    def __init__(self, in_dim: int, channels: int, up_strides: tuple[int, ...], anti_alias: bool = True):
        super().__init__()
        layers: list[nn.Module] = [WNConv1d(in_dim, channels, 7, padding=3)]
        width = channels
        for s in up_strides:
            layers.append(DecoderBlock(width, width // 2, s, anti_alias))
            width //= 2
        layers += [AntiAliasedSnake(width, anti_alias), WNConv1d(width, 1, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """x [B, D, F] (already timbre-conditioned) -> wav [B, 1, F * hop]"""
        return self.model(x)
