"""Pre-LN transformer encoder with a convolutional FFN, used for the timbre extractor, the V2 prosody
encoder and the re-decoder's timbre-conditioned prosody restyler.

Frames are batch-first [B, F, D]. Padding is handled with a frame mask, so an item's output never
depends on what else is in the batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoid(positions: Tensor, dim: int) -> Tensor:
    """Sinusoidal table rows for integer ``positions`` [N] -> [N, D] (sin on even, cos on odd channels)."""
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    ang = positions.float()[:, None] * div[None, :]
    out = torch.zeros(positions.numel(), dim)
    out[:, 0::2] = torch.sin(ang)
    out[:, 1::2] = torch.cos(ang)
    return out


class StyleAdaptiveLayerNorm(nn.Module):
    """LayerNorm whose gain and bias come from a condition vector: LN(x) * g(c) + b(c). x [B, F, D], c [B, D]"""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.style = nn.Linear(dim, 2 * dim)
        with torch.no_grad():  # start as a plain LayerNorm: gain 1, bias 0
            self.style.bias[:dim] = 1.0
            self.style.bias[dim:] = 0.0

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        gamma, beta = self.style(condition).unsqueeze(1).chunk(2, dim=-1)
        return self.norm(x) * gamma + beta


class ConvFFN(nn.Module):
    def __init__(self, dim: int, hidden: int, kernel: int, dropout: float):
        super().__init__()
        self.ffn_1 = nn.Conv1d(dim, hidden, kernel, padding=kernel // 2)
        self.ffn_2 = nn.Linear(hidden, dim)
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if mask is not None:  # keep padded frames out of the neighbours' convolution windows
            x = x * mask.unsqueeze(-1)
        h = F.relu(self.ffn_1(x.transpose(1, 2))).transpose(1, 2)
        return self.ffn_2(F.dropout(h, self.dropout, self.training))


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, kernel: int, dropout: float, style_adaptive: bool):
        super().__init__()
        norm = (lambda: StyleAdaptiveLayerNorm(dim)) if style_adaptive else (lambda: nn.LayerNorm(dim))
        self.ln_1, self.ln_2 = norm(), norm()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = ConvFFN(dim, hidden, kernel, dropout)
        self.dropout = dropout
        self.style_adaptive = style_adaptive

    def _norm(self, ln: nn.Module, x: Tensor, condition: Tensor | None) -> Tensor:
        return ln(x, condition) if self.style_adaptive else ln(x)

    def forward(self, x: Tensor, mask: Tensor | None, condition: Tensor | None) -> Tensor:
        h = self._norm(self.ln_1, x, condition)
        h, _ = self.self_attn(h, h, h, key_padding_mask=None if mask is None else ~mask, need_weights=False)
        x = x + F.dropout(h, self.dropout, self.training)
        return x + self.ffn(self._norm(self.ln_2, x, condition), mask)


class TransformerEncoder(nn.Module):
    """[B, F, D] -> [B, F, D]. ``positional``: "constant" adds the sinusoid table's row 0 to every frame
    (what the released model computes at batch size 1), "time" adds row f to frame f."""

    def __init__(
        self, dim: int, layers: int, heads: int, hidden: int, kernel: int, dropout: float,
        positional: str = "constant", style_adaptive: bool = False,
    ):
        super().__init__()
        self.dim, self.positional, self.dropout = dim, positional, dropout
        self.style_adaptive = style_adaptive
        self.layers = nn.ModuleList(
            TransformerLayer(dim, heads, hidden, kernel, dropout, style_adaptive) for _ in range(layers)
        )
        self.last_ln = StyleAdaptiveLayerNorm(dim) if style_adaptive else nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor | None = None, condition: Tensor | None = None) -> Tensor:
        """x [B, F, D]; mask [B, F] bool (True = real frame) or None; condition [B, D] for style-adaptive norms."""
        if self.style_adaptive and condition is None:
            raise ValueError("this transformer uses style-adaptive layer norms: pass condition [B, D]")
        n = x.shape[1]
        pos = torch.zeros(n, dtype=torch.long) if self.positional == "constant" else torch.arange(n)
        x = x + sinusoid(pos, self.dim).to(x)
        x = F.dropout(x, self.dropout, self.training)
        for layer in self.layers:
            x = layer(x, mask, condition)
        return self.last_ln(x, condition) if self.style_adaptive else self.last_ln(x)
