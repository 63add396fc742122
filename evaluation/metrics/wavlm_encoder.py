"""WavLM (Chen et al. 2022) with the parameter names of the UniSpeech / s3prl checkpoints, for inference.

This is the upstream of the paper's speaker-similarity model (``sim_wavlm_tdnn``). That checkpoint stores WavLM under
its original fairseq-style names (``feature_extractor.conv_layers.0.0.weight``, ``encoder.pos_conv.0.weight_g``,
``self_attn.grep_a``, ...). A module that uses the same names loads the file with a plain strict ``load_state_dict``,
and its forward follows s3prl's ``upstream/wavlm`` directly instead of going through a port. The unit tests compare it
with transformers' ``WavLMModel`` given the same tensors.

Only what WavLM-Large uses is built here: the layer-norm convolutional feature extractor, the pre-LN transformer
(``layer_norm_first``), a gated relative position bias in every layer (the bucket embedding lives in layer 0), and
waveform normalisation. Pre-training machinery (span masking, dropout, layer drop) is left out; ``mask_emb`` is kept
only so that the checkpoint loads strictly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class WavLMDims:
    """Sizes of a WavLM. The defaults are WavLM-Large's. None of them is stored in a checkpoint; the loader
    reads them from tensor shapes, except ``conv_strides``, ``max_distance`` and ``normalize_waveform``."""

    conv_channels: tuple[int, ...] = (512,) * 7
    conv_kernels: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_strides: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)  # 320x down: 50 frames/s at 16 kHz
    conv_bias: bool = False
    hidden: int = 1024
    layers: int = 24
    heads: int = 16
    ffn: int = 4096
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    num_buckets: int = 320
    max_distance: int = 800
    normalize_waveform: bool = True  # WavLM-Large was trained on zero-mean, unit-variance waveforms

    def __post_init__(self) -> None:
        if not len(self.conv_channels) == len(self.conv_kernels) == len(self.conv_strides) >= 1:
            raise ValueError(f"conv_channels, conv_kernels and conv_strides must have one entry per conv layer, got "
                             f"{self.conv_channels}, {self.conv_kernels}, {self.conv_strides}")
        if self.hidden % self.heads or self.hidden % self.pos_conv_groups:
            raise ValueError(f"hidden size {self.hidden} must divide by heads ({self.heads}) and by the positional "
                             f"conv groups ({self.pos_conv_groups})")

    @property
    def min_samples(self) -> int:
        """The shortest waveform the conv stack turns into one frame (400 samples, 25 ms, for WavLM-Large)."""
        n = 1
        for k, s in zip(reversed(self.conv_kernels), reversed(self.conv_strides)):
            n = (n - 1) * s + k
        return n


class _Transpose(nn.Module):
    """[B, C, T] <-> [B, T, C], so that a LayerNorm normalises over channels."""

    def forward(self, x: Tensor) -> Tensor:
        return x.transpose(-2, -1)


def _conv_block(c_in: int, c_out: int, kernel: int, stride: int, bias: bool) -> nn.Sequential:
    # The indices are the checkpoint's: 0 conv, 1 dropout (nothing at inference), 2 channel LayerNorm, 3 GELU.
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, stride=stride, bias=bias), nn.Identity(),
                         nn.Sequential(_Transpose(), nn.LayerNorm(c_out), _Transpose()), nn.GELU())


class ConvFeatureExtractor(nn.Module):
    """Waveform ``[B, T]`` -> conv features ``[B, C, T']``; WavLM-Large: C = 512, T' = 50 frames/s."""

    def __init__(self, dims: WavLMDims) -> None:
        super().__init__()
        ins = (1, *dims.conv_channels[:-1])
        self.conv_layers = nn.ModuleList(_conv_block(i, o, k, s, dims.conv_bias) for i, o, k, s in
                                         zip(ins, dims.conv_channels, dims.conv_kernels, dims.conv_strides))

    def forward(self, wav: Tensor) -> Tensor:
        x = wav.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x


class _WeightNormConv1d(nn.Module):
    """A grouped "same" Conv1d whose weight is ``g * v / |v|``, the norm taken per kernel tap (torch's
    ``weight_norm(dim=2)``), stored as ``weight_g`` / ``weight_v`` / ``bias`` like the checkpoint."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.groups, self.padding = groups, kernel // 2

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class _TrimLast(nn.Module):
    """An even kernel with padding k // 2 yields one frame too many; drop the last to keep the length."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.trim = 1 if kernel % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[..., : x.shape[-1] - self.trim]


def relative_position_bucket(relative: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5-style bidirectional buckets of ``key - query`` offsets: half of the buckets per direction; within a
    direction, offsets below a quarter of ``num_buckets`` get their own bucket, longer ones log-spaced buckets up to
    ``max_distance``, and anything farther shares the last one."""
    half = num_buckets // 2
    exact = half // 2
    distance = relative.abs()
    # clamp: log(0) would be -inf, whose integer cast is undefined (those offsets take the exact branch anyway)
    far = exact + (torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
                   * (half - exact)).long()
    far = far.clamp(max=half - 1)
    return (relative > 0).long() * half + torch.where(distance < exact, distance, far)


class SelfAttention(nn.Module):
    """Multi-head self-attention plus WavLM's gated relative position bias.

    The bias ``[H, T, T]`` comes from layer 0's bucket embedding and is shared by all layers. Each layer scales it
    per head and query frame by a gate computed from the layer's own input (in (1, 2) while ``grep_a`` is 1).
    """

    def __init__(self, dim: int, heads: int, num_buckets: int, max_distance: int, owns_bias: bool) -> None:
        super().__init__()
        self.heads, self.num_buckets, self.max_distance = heads, num_buckets, max_distance
        self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.q_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.grep_linear = nn.Linear(dim // heads, 8)
        self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))
        if owns_bias:
            self.relative_attention_bias = nn.Embedding(num_buckets, heads)

    def position_bias(self, length: int) -> Tensor:
        """-> ``[H, T, T]``, entry (h, i, j) for query frame i attending to key frame j."""
        pos = torch.arange(length, device=self.relative_attention_bias.weight.device)
        buckets = relative_position_bucket(pos[None, :] - pos[:, None], self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def _split(self, x: Tensor) -> Tensor:  # [B, T, D] -> [B, H, T, D/H]
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        """``x`` ``[B, T, D]`` (already layer-normed), ``bias`` ``[H, T, T]`` -> ``[B, T, D]``."""
        b, t, d = x.shape
        # the gate reads the un-projected input, cut into heads
        gates = torch.sigmoid(self.grep_linear(self._split(x)).view(b, self.heads, t, 2, 4).sum(-1))
        gate_a, gate_b = gates.chunk(2, dim=-1)  # [B, H, T, 1] each
        gate = gate_a * (gate_b * self.grep_a - 1.0) + 2.0
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(x)), self._split(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=gate * bias)  # scores q.k / sqrt(D/H) + bias
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Pre-LN transformer block: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, dims: WavLMDims, owns_bias: bool) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dims.hidden, dims.heads, dims.num_buckets, dims.max_distance, owns_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dims.hidden)
        self.fc1, self.fc2 = nn.Linear(dims.hidden, dims.ffn), nn.Linear(dims.ffn, dims.hidden)
        self.final_layer_norm = nn.LayerNorm(dims.hidden)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), bias)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class Encoder(nn.Module):
    def __init__(self, dims: WavLMDims) -> None:
        super().__init__()
        # index 0 holds the weights, as in the checkpoint (encoder.pos_conv.0.weight_g, ...)
        self.pos_conv = nn.Sequential(_WeightNormConv1d(dims.hidden, dims.pos_conv_kernel, dims.pos_conv_groups),
                                      _TrimLast(dims.pos_conv_kernel), nn.GELU())
        self.layers = nn.ModuleList(EncoderLayer(dims, owns_bias=i == 0) for i in range(dims.layers))
        self.layer_norm = nn.LayerNorm(dims.hidden)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``[B, T, D]`` projected features -> the ``layers + 1`` hidden states, each ``[B, T, D]``.

        They are what s3prl's WavLM expert returns as ``hidden_states``, the features the speaker model was
        fine-tuned on: the input of every layer (the first one is the features plus the convolutional position
        embedding), then the last layer's output after the final LayerNorm.
        """
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        bias = self.layers[0].self_attn.position_bias(x.shape[1])
        states = []
        for layer in self.layers:
            states.append(x)
            x = layer(x, bias)
        states.append(self.layer_norm(x))
        return states


class WavLM(nn.Module):
    """WavLM with its checkpoint's names: ``feature_extractor``, ``layer_norm``, ``post_extract_proj``, ``mask_emb``,
    ``encoder``."""

    def __init__(self, dims: WavLMDims) -> None:
        super().__init__()
        self.dims = dims
        embed = dims.conv_channels[-1]
        self.feature_extractor = ConvFeatureExtractor(dims)
        self.layer_norm = nn.LayerNorm(embed)
        # the original leaves the projection out when the conv width already equals the model width
        self.post_extract_proj = nn.Linear(embed, dims.hidden) if embed != dims.hidden else None
        self.mask_emb = nn.Parameter(torch.zeros(dims.hidden))  # pre-training's mask token; unused at inference
        self.encoder = Encoder(dims)

    def hidden_states(self, wav: Tensor) -> list[Tensor]:
        """``[B, T]`` 16 kHz waveforms of equal length (no padding mask) -> ``layers + 1`` tensors ``[B, T', D]``."""
        if wav.shape[-1] < self.dims.min_samples:
            raise ValueError(f"WavLM needs at least {self.dims.min_samples} samples, got {wav.shape[-1]}")
        if self.dims.normalize_waveform:
            wav = F.layer_norm(wav, wav.shape[-1:])
        x = self.layer_norm(self.feature_extractor(wav).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)
