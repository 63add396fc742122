"""Timbre: a global speaker vector from the continuous encoder output, injected into the decoder only
through conditional layer norm."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ns3.codec.transformer import TransformerEncoder


class TimbreEncoder(TransformerEncoder):
    """Transformer over frames, then a (masked) mean over time. latent [B, D, F] -> timbre [B, D]"""

    def forward(self, latent: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        h = super().forward(latent.transpose(1, 2), mask)  # [B, F, D]
        if mask is None:
            return h.mean(dim=1)
        w = mask.to(h.dtype).unsqueeze(-1)
        return (h * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


class ConditionalLayerNorm(nn.Module):
    """Channel LayerNorm with gain/bias predicted from the timbre vector. x [B, D, F], timbre [B, Dt] -> [B, D, F]

    ``timbre_dim`` (Dt) defaults to ``dim``, as in the release's decoder input norm."""

    def __init__(self, dim: int, timbre_dim: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.linear = nn.Linear(timbre_dim or dim, 2 * dim)
        with torch.no_grad():  # start as identity conditioning: gain 1, bias 0
            self.linear.bias[:dim] = 1.0
            self.linear.bias[dim:] = 0.0

    def scale_bias(self, timbre: Tensor) -> tuple[Tensor, Tensor]:
        """timbre [B, D] -> (gain [B, D, 1], bias [B, D, 1])"""
        gamma, beta = self.linear(timbre).unsqueeze(-1).chunk(2, dim=1)
        return gamma, beta

    def forward(self, x: Tensor, timbre: Tensor) -> Tensor:
        gamma, beta = self.scale_bias(timbre)
        return self.norm(x.transpose(1, 2)).transpose(1, 2) * gamma + beta
