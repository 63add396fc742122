"""Convolutional building blocks shared by the FACodec encoder, decoder and heads.

Weight-normed convolutions keep their direction/magnitude split as the parameters ``weight_v`` and
``weight_g`` (the legacy PyTorch weight-norm layout), so the public checkpoints map onto these
modules name for name. Activations are SnakeBeta applied at twice the sample rate between two
Kaiser-windowed sinc filters (anti-aliasing, as in BigVGAN); the filters are buffers so a loaded
checkpoint carries the exact taps it was trained with.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _norm_except_dim0(v: Tensor) -> Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


class _WeightNormed(nn.Module):
    """weight = g * v / ||v|| with the norm over everything but dim 0, stored as legacy weight norm does
    (``weight_g``, ``weight_v``), so the release's state dicts load by name."""

    def _adopt(self, conv: nn.Module) -> None:
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(_norm_except_dim0(conv.weight.detach()).clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    @property
    def weight(self) -> Tensor:
        return self.weight_g * self.weight_v / _norm_except_dim0(self.weight_v)


class WNConv1d(_WeightNormed):
    """Conv1d with weight = g * v / ||v|| (norm over everything but the output channel). [B, Ci, L] -> [B, Co, L']"""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self._adopt(nn.Conv1d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, dilation=dilation))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(_WeightNormed):
    """Weight-normed ConvTranspose1d. As in legacy weight norm, the magnitude is per *input* channel
    (dim 0 of a transposed-conv weight), which is why the release stores weight_g as (in, 1, 1)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, padding: int, output_padding: int):
        super().__init__()
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self._adopt(nn.ConvTranspose1d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                                       output_padding=output_padding))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)


class _SnakeBetaFunction(torch.autograd.Function):
    """y = x + sin^2(a x) / b with a = exp(alpha), b = exp(beta) + eps, differentiated by hand.

    Autograd's version keeps four intermediates and makes about ten passes over the activation in
    the backward; this one saves only x and recomputes sin/cos(2ax), which makes this activation, the
    codec's largest CPU cost in training, ~2.4x faster (benchmarks/snake_activation.py). Uses sin^2(u) = (1 - cos 2u) / 2.
    """

    @staticmethod
    def forward(ctx, x: Tensor, alpha: Tensor, beta: Tensor) -> Tensor:  # type: ignore[override]
        a = alpha.exp()[None, :, None]
        inv_b = 1.0 / (beta.exp()[None, :, None] + 1e-9)
        ctx.save_for_backward(x, alpha, beta)
        s = torch.mul(x, a).sin_()
        return torch.addcmul(x, s.mul_(s), inv_b)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        x, alpha, beta = ctx.saved_tensors
        a = alpha.exp()[None, :, None]
        b = beta.exp()[None, :, None]
        inv_b = 1.0 / (b + 1e-9)
        two_ax = torch.mul(x, 2 * a)
        g_sin = torch.sin(two_ax).mul_(grad)  # grad * d sin^2(ax) / d(ax)
        cos2 = two_ax.cos_()
        grad_x = torch.addcmul(grad, g_sin, a * inv_b)
        grad_alpha = g_sin.mul_(x).sum((0, 2)) * (a * inv_b).view(-1)  # d/d alpha = a * d/da
        sin_sq_sum = 0.5 * (grad.sum((0, 2)) - cos2.mul_(grad).sum((0, 2)))  # sum(grad * sin^2(ax))
        grad_beta = -sin_sq_sum * (b * inv_b * inv_b).view(-1)
        return grad_x, grad_alpha, grad_beta


class SnakeBeta(nn.Module):
    """x + sin^2(a x) / b with per-channel a = exp(alpha), b = exp(beta) (log-scale, start at 1). [B, C, L]"""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled() and (x.requires_grad or self.alpha.requires_grad or self.beta.requires_grad):
            return _SnakeBetaFunction.apply(x, self.alpha, self.beta)
        # inference: one temporary instead of four
        a = self.alpha.exp()[None, :, None]
        inv_b = 1.0 / (self.beta.exp()[None, :, None] + 1e-9)
        t = torch.mul(x, a).sin_()
        return torch.addcmul(x, t.mul_(t), inv_b)


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> Tensor:
    """Low-pass FIR taps [1, 1, K]: sinc at ``cutoff`` (cycles/sample) under a Kaiser window whose beta
    follows Kaiser's formula for a transition band of ``half_width``; taps sum to 1."""
    half = kernel_size // 2
    atten = 2.285 * (half - 1) * math.pi * (4 * half_width) + 7.95
    if atten > 50.0:
        beta = 0.1102 * (atten - 8.7)
    elif atten >= 21.0:
        beta = 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta)
    if kernel_size % 2 == 0:
        t = torch.arange(-half, half) + 0.5
    else:
        t = torch.arange(kernel_size) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * t)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """x2 band-limited upsampling (zero-stuffing + FIR, edges replicated). [B, C, L] -> [B, C, 2L]"""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio, self.kernel_size = ratio, kernel_size
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(c, -1, -1), stride=self.ratio, groups=c)
        return x[..., self.crop_left : x.shape[-1] - self.crop_right]


class LowPassFilter1d(nn.Module):
    """FIR low-pass + decimation by ``stride`` (edges replicated). [B, C, L] -> [B, C, ceil(L / stride)]"""

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int = 12):
        super().__init__()
        self.stride = stride
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(cutoff, half_width, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(c, -1, -1), stride=self.stride, groups=c)


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.lowpass(x)


class AntiAliasedSnake(nn.Module):
    """SnakeBeta evaluated at 2x the rate so its harmonics do not fold back. [B, C, L] -> [B, C, L]

    ``anti_alias=False`` applies SnakeBeta at the native rate (no resampling filters): ~2.5x cheaper on CPU,
    for small models trained briefly where aliasing matters less than speed.
    """

    def __init__(self, channels: int, anti_alias: bool = True):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.anti_alias = anti_alias
        if anti_alias:
            self.upsample = UpSample1d(2, 12)
            self.downsample = DownSample1d(2, 12)

    def forward(self, x: Tensor) -> Tensor:
        if not self.anti_alias:
            return self.act(x)
        return self.downsample(self.act(self.upsample(x)))


class ResidualUnit(nn.Module):
    """x + conv1x1(act(conv7_dilated(act(x)))). [B, C, L] -> [B, C, L]"""

    def __init__(self, channels: int, dilation: int, anti_alias: bool = True):
        super().__init__()
        self.block = nn.Sequential(
            AntiAliasedSnake(channels, anti_alias),
            WNConv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation),
            AntiAliasedSnake(channels, anti_alias),
            WNConv1d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class WNLinear(nn.Module):
    """Linear with weight = g * v / ||v|| per output row (weight_g [out, 1], weight_v [out, in]). [..., in] -> [..., out]"""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        lin = nn.Linear(in_dim, out_dim)
        self.weight_v = nn.Parameter(lin.weight.detach().clone())
        self.weight_g = nn.Parameter(_norm_except_dim0(lin.weight.detach()).clone())
        self.bias = nn.Parameter(lin.bias.detach().clone())

    @property
    def weight(self) -> Tensor:
        return self.weight_g * self.weight_v / _norm_except_dim0(self.weight_v)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)
