"""Masked losses for FACodec's frame-level supervision and gradient-reversal heads.

Padded frames (``mask`` False) and ignored targets never contribute. A batch with nothing to score
(e.g. a crop with no voiced frame) gives an exact 0 that still carries a graph, never NaN: the solver
treats NaN as divergence and stops.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ns3.data.batch import IGNORE_INDEX


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp_min(1.0)


def _check_same(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, what: str) -> None:
    if pred.shape != target.shape or mask.shape != target.shape:
        raise ValueError(f"{what}: prediction {tuple(pred.shape)}, target {tuple(target.shape)} and mask "
                         f"{tuple(mask.shape)} must have the same shape")


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Frame classification: logits [B, F, C], targets [B, F] long, mask [B, F] bool -> mean CE over
    frames that are in the mask and not ``ignore_index``."""
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"masked_cross_entropy: logits must be [B, F, C] and targets [B, F]; got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    valid = targets != ignore_index
    if mask is not None:
        valid = valid & mask.bool()
    n_classes = logits.shape[-1]
    if valid.any():
        hi, lo = int(targets[valid].max()), int(targets[valid].min())
        if hi >= n_classes or lo < 0:
            raise ValueError(f"masked_cross_entropy: target ids span [{lo}, {hi}] but the head has {n_classes} "
                             f"classes; the phone inventory and the model's phone count disagree")
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    ce = F.cross_entropy(logits.float().transpose(1, 2), safe, reduction="none")  # [B, F]
    return _masked_mean(ce, valid)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Utterance classification (e.g. speaker): logits [B, C], targets [B] long -> mean CE over known targets."""
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"classification_loss: logits must be [B, C] and targets [B]; got "
                         f"{tuple(logits.shape)} and {tuple(targets.shape)}")
    valid = targets != ignore_index
    if valid.any() and int(targets[valid].max()) >= logits.shape[-1]:
        raise ValueError(f"classification_loss: target id {int(targets[valid].max())} >= {logits.shape[-1]} classes; "
                         "the speaker table and the model's speaker count disagree")
    safe = torch.where(valid, targets, torch.zeros_like(targets))
    ce = F.cross_entropy(logits.float(), safe, reduction="none")
    return _masked_mean(ce, valid)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over ``mask`` (all [B, F]). L1 rather than L2: bounded gradients, which matters
    for the reversed (maximised) F0 head."""
    _check_same(pred, target, mask, "masked_l1")
    return _masked_mean((pred.float() - target.float()).abs(), mask.bool())


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean (pred − target)² over ``mask`` (all [B, F])."""
    _check_same(pred, target, mask, "masked_mse")
    return _masked_mean((pred.float() - target.float()) ** 2, mask.bool())


def masked_bce_with_logits(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary decision per frame (voiced/unvoiced): logits, target 0/1 and mask all [B, F]."""
    _check_same(logits, target, mask, "masked_bce_with_logits")
    bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    return _masked_mean(bce, mask.bool())
