"""Losses of the masked discrete diffusion: cross-entropy on the masked tokens only (paper §3.3.2), and the
L2 on log-duration of the duration ablation (paper A.6).

A batch with no masked token gives an exact 0 that keeps its graph (never NaN: the solver stops on NaN).
"""
from __future__ import annotations

import torch

from ns3.losses.supervision import masked_cross_entropy, masked_mse


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [B, N, V], targets [B, N] long, masked [B, N] bool -> (mean CE over masked tokens, their top-1 accuracy)."""
    ce = masked_cross_entropy(logits, targets, masked)
    with torch.no_grad():
        hits = (logits.argmax(-1) == targets) & masked
        acc = hits.sum().float() / masked.sum().clamp_min(1).float()
    return ce, acc


def log_duration_l2(pred: torch.Tensor, durations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """pred [B, P] log-frames, durations [B, P] frames (>= 1 where ``mask``) -> mean squared log error."""
    target = torch.log(durations.clamp_min(1).float())
    return masked_mse(pred, target, mask)
