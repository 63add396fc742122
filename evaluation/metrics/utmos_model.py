"""The UTMOS22 strong learner (Saeki et al. 2022) as packaged by SpeechMOS, for inference.

Architecture: a wav2vec 2.0 base encoder (7-layer conv feature extractor, 12 post-LN transformer
layers with a grouped, weight-normalised convolutional position embedding) -> frame features,
concatenated with a fixed data-domain and listener embedding -> BLSTM -> MLP -> frame scores ->
time mean -> ``2 * mean + 3`` on the 1..5 MOS scale.

Module and parameter names follow the SpeechMOS state dict (``utmos22_strong_step7459_v1.pt``) so
that file loads with ``strict=True``; sizes are read back from the state dict, so a reduced-size
checkpoint with the same layout loads through the same code (our tests rely on that).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# wav2vec 2.0 conv feature extractor: (kernel, stride) per layer, 320x downsampling -> 50 frames/s at 16 kHz
CONV_LAYERS: tuple[tuple[int, int], ...] = ((10, 5),) + ((3, 2),) * 4 + ((2, 2),) * 2


@dataclass(frozen=True)
class UTMOSConfig:
    conv_dim: int = 512
    ssl_dim: int = 768
    ffn_dim: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    domain_dim: int = 128
    judge_dim: int = 128
    lstm_hidden: int = 512
    proj_hidden: int = 2048

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, Tensor], num_heads: int | None = None) -> "UTMOSConfig":
        """Read the sizes back from a SpeechMOS-layout state dict (head count is not stored: it
        defaults to wav2vec 2.0's 64-dimensional heads)."""
        w = "wav2vec2."
        ssl_dim, conv_dim = sd[w + "post_extract_proj.weight"].shape
        pos_v = sd[w + "encoder.pos_conv.0.weight_v"]
        layers = {int(k.split(".")[3]) for k in sd if k.startswith(w + "encoder.layers.")}
        return cls(
            conv_dim=int(conv_dim), ssl_dim=int(ssl_dim),
            ffn_dim=int(sd[w + "encoder.layers.0.fc1.weight"].shape[0]),
            num_layers=len(layers), num_heads=num_heads or max(1, int(ssl_dim) // 64),
            pos_conv_kernel=int(pos_v.shape[2]), pos_conv_groups=int(ssl_dim) // int(pos_v.shape[1]),
            domain_dim=int(sd["domain_emb"].shape[1]), judge_dim=int(sd["judge_emb"].shape[1]),
            lstm_hidden=int(sd["blstm.weight_hh_l0"].shape[1]), proj_hidden=int(sd["projection.0.weight"].shape[0]),
        )


def upgrade_weight_norm_keys(sd: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """State dicts saved after torch's parametrize-based weight norm name g/v ``parametrizations.weight.original0/1``."""
    out = {}
    for k, v in sd.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
        out[k] = v
    return out


class WeightNormConv1d(nn.Module):
    """Conv1d whose weight is ``g * v / ||v||`` with the norm taken over every axis but the kernel axis
    (weight norm with ``dim=2``, as wav2vec 2.0's position convolution was trained)."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.groups = groups
        self.padding = kernel // 2

    def forward(self, x: Tensor) -> Tensor:  # [B, C, T] -> [B, C, T + 1] for even kernels
        v = self.weight_v
        weight = self.weight_g * v / v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class DropLastFrame(nn.Module):
    """An even kernel with symmetric padding yields one extra frame; drop it to keep length T."""

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, :-1]


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"UTMOS: ssl_dim {dim} is not divisible by num_heads {heads}")
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:  # [B, T, D]
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Post-LN transformer layer (attention -> add -> LN -> GELU FFN -> add -> LN)."""

    def __init__(self, dim: int, ffn_dim: int, heads: int) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    def __init__(self, cfg: UTMOSConfig) -> None:
        super().__init__()
        self.pos_conv = nn.Sequential(WeightNormConv1d(cfg.ssl_dim, cfg.pos_conv_kernel, cfg.pos_conv_groups),
                                      DropLastFrame(), nn.GELU())
        self.layer_norm = nn.LayerNorm(cfg.ssl_dim)
        self.layers = nn.ModuleList(EncoderLayer(cfg.ssl_dim, cfg.ffn_dim, cfg.num_heads) for _ in range(cfg.num_layers))

    def forward(self, x: Tensor) -> Tensor:  # [B, T, D]
        x = self.layer_norm(x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2))
        # fairseq pads odd lengths by one masked frame and drops it afterwards; a masked key changes
        # nothing for the real frames, so running unpadded is exactly equivalent
        for layer in self.layers:
            x = layer(x)
        return x


class ConvFeatureExtractor(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        blocks = []
        for i, (kernel, stride) in enumerate(CONV_LAYERS):
            conv = nn.Conv1d(1 if i == 0 else dim, dim, kernel, stride=stride, bias=False)
            # index 1 is the (inactive) dropout slot of the trained layout; only the first layer is normalised
            norm = [nn.GroupNorm(dim, dim, affine=True)] if i == 0 else []
            blocks.append(nn.Sequential(conv, nn.Identity(), *norm, nn.GELU()))
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, wave: Tensor) -> Tensor:  # [B, T] -> [B, C, frames]
        x = wave.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x


class Wav2Vec2Encoder(nn.Module):
    def __init__(self, cfg: UTMOSConfig) -> None:
        super().__init__()
        self.feature_extractor = ConvFeatureExtractor(cfg.conv_dim)
        self.layer_norm = nn.LayerNorm(cfg.conv_dim)
        self.post_extract_proj = nn.Linear(cfg.conv_dim, cfg.ssl_dim)
        self.encoder = TransformerEncoder(cfg)
        self.mask_emb = nn.Parameter(torch.zeros(cfg.ssl_dim))  # pre-training leftover, unused at inference

    def forward(self, wave: Tensor) -> Tensor:  # [B, T] -> [B, frames, ssl_dim]
        x = self.feature_extractor(wave).transpose(1, 2)
        return self.encoder(self.post_extract_proj(self.layer_norm(x)))


class UTMOS22Strong(nn.Module):
    """``[B, T]`` 16 kHz waveform -> ``[B]`` predicted MOS."""

    def __init__(self, cfg: UTMOSConfig = UTMOSConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.wav2vec2 = Wav2Vec2Encoder(cfg)
        self.domain_emb = nn.Parameter(torch.zeros(1, cfg.domain_dim), requires_grad=False)
        self.judge_emb = nn.Parameter(torch.zeros(1, cfg.judge_dim), requires_grad=False)
        self.blstm = nn.LSTM(cfg.ssl_dim + cfg.domain_dim + cfg.judge_dim, cfg.lstm_hidden,
                             batch_first=True, bidirectional=True)
        self.projection = nn.Sequential(nn.Linear(2 * cfg.lstm_hidden, cfg.proj_hidden), nn.ReLU(),
                                        nn.Linear(cfg.proj_hidden, 1))

    def forward(self, wave: Tensor) -> Tensor:
        feats = self.wav2vec2(wave)  # [B, F, D]
        b, f, _ = feats.shape
        cond = torch.cat([self.domain_emb, self.judge_emb], dim=1).unsqueeze(1).expand(b, f, -1)
        frame_scores = self.projection(self.blstm(torch.cat([feats, cond], dim=2))[0])  # [B, F, 1]
        return frame_scores.mean(dim=1).squeeze(1) * 2 + 3
