"""The ECAPA-TDNN speaker head (Desplanques et al. 2020) of UniSpeech's ``ECAPA_TDNN_SMALL``, in its checkpoint layout.

It turns frame features ``[B, D, T]`` into one speaker embedding per utterance:
conv (k=5) -> three SE-Res2Net blocks (dilations 2, 3, 4) -> the three blocks' outputs concatenated -> 1x1 conv ->
attentive statistics pooling (attention-weighted mean and std per channel) -> BatchNorm -> linear.
Attribute names (``layer1``, ``Conv1dReluBn1``, ``SE_Connect``, ``pooling.linear1`` ...) are the checkpoint's keys,
not our naming style. UniSpeech's activation order is conv -> ReLU -> BatchNorm, and that order is kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class EcapaDims:
    """Sizes of the head; the defaults are ``ECAPA_TDNN_SMALL(feat_dim=1024)``'s. All are readable from shapes."""

    in_dim: int = 1024        # frame feature size (WavLM-Large's hidden size)
    channels: int = 512       # width of the SE-Res2Net blocks
    first_kernel: int = 5
    res2_kernel: int = 3
    scale: int = 8            # Res2Net splits per block
    se_dim: int = 128         # squeeze-excitation bottleneck
    pooled: int = 1536        # channels entering the pooling (fixed at 1536 in UniSpeech, not 3 x channels)
    attention: int = 128      # attentive pooling bottleneck
    embedding: int = 256
    dilations: tuple[int, int, int] = (2, 3, 4)

    def __post_init__(self) -> None:
        if self.channels % self.scale:
            raise ValueError(f"channels ({self.channels}) must divide by the Res2Net scale ({self.scale})")


class Conv1dReluBn(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int = 1, padding: int = 0, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(F.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    """Res2Net: the channels are cut into ``scale`` groups; group i is convolved after adding group i-1's output,
    so later groups see growing receptive fields. The last group passes through unchanged."""

    def __init__(self, channels: int, kernel: int, dilation: int, scale: int) -> None:
        super().__init__()
        self.width = channels // scale
        n = scale - 1 if scale > 1 else 1
        pad = dilation * (kernel - 1) // 2
        self.convs = nn.ModuleList(nn.Conv1d(self.width, self.width, kernel, padding=pad, dilation=dilation)
                                   for _ in range(n))
        self.bns = nn.ModuleList(nn.BatchNorm1d(self.width) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        groups = torch.split(x, self.width, dim=1)
        out, y = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y = groups[i] if y is None else y + groups[i]
            y = bn(F.relu(conv(y)))
            out.append(y)
        out.extend(groups[len(self.convs):])
        return torch.cat(out, dim=1)


class SEConnect(nn.Module):
    """Squeeze-excitation: rescale each channel by a gate computed from the utterance mean."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(channels, bottleneck), nn.Linear(bottleneck, channels)

    def forward(self, x: Tensor) -> Tensor:
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * gate.unsqueeze(2)


class SERes2Block(nn.Module):
    def __init__(self, dims: EcapaDims, dilation: int) -> None:
        super().__init__()
        c = dims.channels
        self.Conv1dReluBn1 = Conv1dReluBn(c, c)
        self.Res2Conv1dReluBn = Res2Conv1dReluBn(c, dims.res2_kernel, dilation, dims.scale)
        self.Conv1dReluBn2 = Conv1dReluBn(c, c)
        self.SE_Connect = SEConnect(c, dims.se_dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.SE_Connect(self.Conv1dReluBn2(self.Res2Conv1dReluBn(self.Conv1dReluBn1(x))))


class AttentiveStatsPool(nn.Module):
    """``[B, C, T]`` -> ``[B, 2C]``: per-channel softmax attention over time, then the weighted mean and std."""

    def __init__(self, channels: int, attention: int) -> None:
        super().__init__()
        # 1x1 convs act as per-frame linear layers without transposing
        self.linear1 = nn.Conv1d(channels, attention, kernel_size=1)
        self.linear2 = nn.Conv1d(attention, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        alpha = torch.softmax(self.linear2(torch.tanh(self.linear1(x))), dim=2)
        mean = (alpha * x).sum(dim=2)
        var = (alpha * x * x).sum(dim=2) - mean * mean
        # E[x^2] - E[x]^2 can round below zero; the floor keeps sqrt finite (UniSpeech's 1e-9)
        return torch.cat([mean, var.clamp(min=1e-9).sqrt()], dim=1)


class EcapaTdnn(nn.Module):
    """Frame features ``[B, in_dim, T]`` -> speaker embeddings ``[B, embedding]``."""

    def __init__(self, dims: EcapaDims) -> None:
        super().__init__()
        self.ecapa_dims = dims
        c = dims.channels
        self.layer1 = Conv1dReluBn(dims.in_dim, c, dims.first_kernel, padding=(dims.first_kernel - 1) // 2)
        self.layer2, self.layer3, self.layer4 = (SERes2Block(dims, d) for d in dims.dilations)
        self.conv = nn.Conv1d(3 * c, dims.pooled, kernel_size=1)
        self.pooling = AttentiveStatsPool(dims.pooled, dims.attention)
        self.bn = nn.BatchNorm1d(2 * dims.pooled)
        self.linear = nn.Linear(2 * dims.pooled, dims.embedding)

    def head(self, feats: Tensor) -> Tensor:
        """``[B, in_dim, T]`` -> ``[B, embedding]``. Eval mode: the BatchNorms use their running statistics."""
        out1 = self.layer1(feats)
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        out = F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))
        return self.linear(self.bn(self.pooling(out)))
