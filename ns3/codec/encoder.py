"""DAC-style convolutional waveform encoder: [B, 1, T] -> [B, D, F] with F = T / prod(strides)."""
from __future__ import annotations

from torch import Tensor, nn

from ns3.codec.layers import AntiAliasedSnake, ResidualUnit, WNConv1d


def _stride_padding(stride: int) -> int:
    # ceil(stride / 2) with kernel 2*stride: a multiple of the stride maps to exactly L / stride.
    return stride // 2 + stride % 2


class EncoderBlock(nn.Module):
    """Three dilated residual units on C/2 channels, then a strided conv to C. [B, C/2, L] -> [B, C, L/s]"""

    def __init__(self, channels: int, stride: int, anti_alias: bool = True):
        super().__init__()
        half = channels // 2
        self.block = nn.Sequential(
            ResidualUnit(half, 1, anti_alias),
            ResidualUnit(half, 3, anti_alias),
            ResidualUnit(half, 9, anti_alias),
            AntiAliasedSnake(half, anti_alias),
            WNConv1d(half, channels, 2 * stride, stride=stride, padding=_stride_padding(stride)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class ConvEncoder(nn.Module):
    """conv7 -> EncoderBlock per stride (width doubles) -> act -> conv3 to ``out_dim``."""

    def __init__(self, channels: int, strides: tuple[int, ...], out_dim: int, anti_alias: bool = True):
        super().__init__()
        layers: list[nn.Module] = [WNConv1d(1, channels, 7, padding=3)]
        width = channels
        for s in strides:
            width *= 2
            layers.append(EncoderBlock(width, s, anti_alias))
        layers += [AntiAliasedSnake(width, anti_alias), WNConv1d(width, out_dim, 3, padding=1)]
        self.block = nn.Sequential(*layers)

    def forward(self, wav: Tensor) -> Tensor:
        """wav [B, 1, T] -> latent [B, D, F]"""
        return self.block(wav)
