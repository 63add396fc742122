"""The networks of the factorized diffusion: phoneme encoder, phone-level model, frame-level model.

Every network is the codec's pre-LN transformer with a convolutional FFN (ns3/codec/transformer.py); the
two diffusion networks use its style-adaptive norms as AdaCLN, conditioned on the diffusion time (and, in
the frame model, the level being generated): LayerNorm without affine, then (γ, β) = Linear(e), γ starting
at 1 (../shared/notes/ns3_diffusion.md §4). Other conditions are added to the input embeddings.

Shapes: phones [B, P], frames [B, T]; masks are bool with True = real position. Outputs of one item never
depend on the rest of the batch (padding is masked in attention and in the conv FFNs).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ns3.codec.transformer import TransformerEncoder
from ns3.diffusion.hparams import DiffusionHParams

TASK_PROSODY, TASK_DURATION = 0, 1


class TimeEmbedding(nn.Module):
    """t [B] in [0, 1] -> [B, D]: sinusoidal features then an MLP (the MaskGCT pattern)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        ang = 1000.0 * t.float()[:, None] * freqs[None]
        feats = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)
        if feats.shape[-1] < self.dim:
            feats = nn.functional.pad(feats, (0, self.dim - feats.shape[-1]))
        return self.mlp(feats)


def _stack(hp: DiffusionHParams, dim: int, layers: int, adaptive: bool) -> TransformerEncoder:
    return TransformerEncoder(dim, layers, hp.heads, hp.hidden, hp.kernel, hp.dropout, positional="time",
                              style_adaptive=adaptive)


class PhonemeEncoder(nn.Module):
    """phone ids [B, P] (0 = padding) -> phone states [B, P, E]."""

    def __init__(self, hp: DiffusionHParams):
        super().__init__()
        self.embed = nn.Embedding(hp.num_phones, hp.encoder_dim, padding_idx=0)
        self.net = TransformerEncoder(hp.encoder_dim, hp.encoder_layers, hp.encoder_heads, hp.encoder_hidden,
                                      hp.encoder_kernel, hp.dropout, positional="time")

    def forward(self, phone_ids: Tensor, mask: Tensor) -> Tensor:
        return self.net(self.embed(phone_ids), mask)


class PhoneLevelModel(nn.Module):
    """One 6-layer network for two phone-level processes (paper A.1; shared per the seed notes):

    - task 0, phone-level prosody: tokens = prosody codes (V + mask), out [B, P, V];
    - task 1, duration: tokens = durations in frames (0..max_duration + mask), conditioned also on the
      phone-level prosody codes; out [B, P, max_duration + 1] classes, or [B, P, 1] log-duration (L2 ablation).
    """

    def __init__(self, hp: DiffusionHParams):
        super().__init__()
        d = hp.phone_dim
        self.hp = hp
        self.cond_proj = nn.Linear(hp.encoder_dim, d)
        self.task = nn.Embedding(2, d)
        self.prosody_tokens = nn.Embedding(hp.codebook_size + 1, d)
        self.duration_tokens = nn.Embedding(hp.duration_classes + 1, d)  # the last id is the mask
        self.prosody_condition = nn.Embedding(hp.codebook_size + 1, d)
        self.time = TimeEmbedding(d)
        self.net = _stack(hp, d, hp.phone_layers, adaptive=True)
        self.prosody_head = nn.Linear(d, hp.codebook_size)
        self.duration_head = nn.Linear(d, hp.duration_classes if hp.duration_objective == "ce" else 1)

    @property
    def duration_mask_id(self) -> int:
        return self.hp.duration_classes

    def forward(self, task: int, tokens: Tensor, phones: Tensor, t: Tensor, mask: Tensor,
                prosody_codes: Tensor | None = None) -> Tensor:
        """tokens [B, P] (mask ids where hidden), phones [B, P, E] encoder states, t [B] -> logits [B, P, C]."""
        emb = self.prosody_tokens if task == TASK_PROSODY else self.duration_tokens
        x = emb(tokens) + self.cond_proj(phones) + self.task.weight[task]
        if task == TASK_DURATION and self.hp.duration_uses_prosody:
            if prosody_codes is None:
                raise ValueError("this duration model is conditioned on phone-level prosody codes: pass prosody_codes")
            x = x + self.prosody_condition(prosody_codes)
        h = self.net(x, mask, self.time(t) + self.task.weight[task])
        return (self.prosody_head if task == TASK_PROSODY else self.duration_head)(h)


class FrameLevelModel(nn.Module):
    """The shared frame-level network over the code levels (p, c1, c2, d1, d2, d3).

    tokens [B, L, T] (mask id V where hidden), level [B] (the level to predict), phone condition
    [B, T, E] (length-regulated phone states), t [B] -> logits [B, T, V] of that level. Every level has its
    own input embedding table (summed) and output head; the level id joins the time in the AdaCLN condition.
    """

    def __init__(self, hp: DiffusionHParams):
        super().__init__()
        d, v = hp.frame_dim, hp.codebook_size
        self.tokens = nn.ModuleList(nn.Embedding(v + 1, d) for _ in range(hp.num_levels))
        self.level = nn.Embedding(hp.num_levels, d)
        self.cond_proj = nn.Linear(hp.encoder_dim, d)
        self.time = TimeEmbedding(d)
        self.net = _stack(hp, d, hp.frame_layers, adaptive=True)
        self.head_norm = nn.LayerNorm(d)
        self.head_weight = nn.Parameter(torch.randn(hp.num_levels, d, v) * d**-0.5)
        self.head_bias = nn.Parameter(torch.zeros(hp.num_levels, v))

    def forward(self, tokens: Tensor, level: Tensor, phone_frames: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        x = self.cond_proj(phone_frames) + self.level(level)[:, None]
        for i, emb in enumerate(self.tokens):
            x = x + emb(tokens[:, i])
        h = self.head_norm(self.net(x, mask, self.time(t) + self.level(level)))
        # Only the predicted level's head, per item: [B, T, d] x [B, d, V].
        return torch.einsum("btd,bdv->btv", h, self.head_weight[level]) + self.head_bias[level][:, None]


def length_regulate(phones: Tensor, durations: Tensor, phone_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Phone states [B, P, E] repeated by durations [B, P] (frames) -> (frames [B, T, E], frame_mask [B, T]).

    T = the longest item's total duration; padding phones count as 0 frames.
    """
    dur = durations.clamp(min=0) * phone_mask
    ends = dur.cumsum(dim=1)  # [B, P]
    total = ends[:, -1] if ends.shape[1] else dur.new_zeros(dur.shape[0])
    t = int(total.max()) if total.numel() else 0
    frames = torch.arange(t, device=phones.device)
    # Frame f belongs to the first phone whose end is beyond f.
    index = torch.searchsorted(ends.contiguous(), frames[None].expand(dur.shape[0], -1).contiguous(), right=True)
    index = index.clamp(max=max(phones.shape[1] - 1, 0))
    out = torch.gather(phones, 1, index[..., None].expand(-1, -1, phones.shape[-1]))
    frame_mask = frames[None] < total[:, None]
    return out * frame_mask[..., None], frame_mask
