"""The masked-diffusion corruption process (NS3 §3.3.2; ../shared/notes/ns3_diffusion.md §3).

Time is normalised to T = 1. A position is hidden (replaced by the mask token) with probability
σ(t) = sin(π t / 2); there is no random-token replacement. ``corrupt`` is the training-side forward
process, ``remask_counts`` the inference-side schedule of how many generated positions stay hidden
after each sampling step (MaskGIT's cosine schedule, since sin(π/2·(1 − k/K)) = cos(π/2·k/K)).

All functions are pure over tensors; random draws come from the ``generator`` passed in (drawn on
the generator's device, then moved to the data's, so a CPU generator also drives CUDA tensors).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# n·σ can land a hair under an integer in float (sin(π/6) = 0.49999999999999994); this slack keeps the
# floor on the integer without moving any genuinely fractional count (n would need ~1e6 positions).
_FLOOR_SLACK = 1e-6


def mask_ratio(t: Tensor) -> Tensor:
    """σ(t) = sin(π t / 2) for t in [0, 1], elementwise; exactly 0 at t <= 0 and exactly 1 at t >= 1."""
    s = torch.sin(t * (math.pi / 2))
    s = torch.where(t >= 1, torch.ones_like(s), s)
    return torch.where(t <= 0, torch.zeros_like(s), s).clamp(0.0, 1.0)


def sample_time(batch: int, generator: torch.Generator | None = None, eps: float = 1e-3) -> Tensor:
    """t ~ U(eps, 1] per item -> [B] float32 (on the generator's device; CPU without one).

    eps keeps σ(t) away from 0, where an item would be masked only by the at-least-one rule.
    """
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must be in [0, 1), got {eps}")
    device = generator.device if generator is not None else None
    u = torch.rand(batch, generator=generator, device=device)  # [0, 1)
    return 1.0 - (1.0 - eps) * u  # (eps, 1]


@dataclass(frozen=True)
class Corrupted:
    noised: Tensor  # [B, N] long: mask_id where masked, the original token elsewhere
    masked: Tensor  # [B, N] bool: the positions the loss is taken on


def _rand_like(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> Tensor:
    gen_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def corrupt(tokens: Tensor, t: Tensor, eligible: Tensor, mask_id: int,
            generator: torch.Generator | None = None) -> Corrupted:
    """Forward process: tokens [B, N] long, t [B] in (0, 1], eligible [B, N] bool -> Corrupted.

    masked = eligible & Bernoulli(σ(t)). An item with any eligible position always gets at least one
    masked position (a uniformly chosen eligible one when the draw hid none), so every item contributes
    to the loss. Positions that are not eligible (prompt, padding) are never masked.
    """
    if tokens.shape != eligible.shape or tokens.dim() != 2:
        raise ValueError(f"tokens {tuple(tokens.shape)} and eligible {tuple(eligible.shape)} must both be [B, N]")
    if t.shape != tokens.shape[:1]:
        raise ValueError(f"t must be [B] = [{tokens.shape[0]}], got {tuple(t.shape)}")
    device = tokens.device
    eligible = eligible.to(torch.bool)
    ratio = mask_ratio(t.to(device=device, dtype=torch.float32))[:, None]  # [B, 1]
    masked = eligible & (_rand_like(tokens.shape, generator, device) < ratio)

    # Items whose draw hid nothing: hide one eligible position, chosen uniformly (argmax of uniform scores).
    scores = _rand_like(tokens.shape, generator, device).masked_fill(~eligible, -1.0)
    pick = torch.zeros_like(masked)
    pick.scatter_(1, scores.argmax(dim=1, keepdim=True), True)
    needs = eligible.any(dim=1) & ~masked.any(dim=1)  # [B]
    masked = masked | (pick & needs[:, None] & eligible)

    noised = torch.where(masked, torch.full_like(tokens, mask_id), tokens)
    return Corrupted(noised=noised, masked=masked)


def remask_counts(n: Tensor, step: int, steps: int) -> Tensor:
    """How many of n [B] generated positions stay masked after step ``step`` (0-based) of ``steps`` -> [B] long.

    ⌊n · σ(1 − (step + 1)/steps)⌋: with 4 steps the ratios are 0.924, 0.707, 0.383 and exactly 0, so the
    last step unmasks everything.
    """
    if steps < 1 or not 0 <= step < steps:
        raise ValueError(f"need 0 <= step < steps and steps >= 1, got step={step}, steps={steps}")
    remaining = steps - step - 1  # t after this step = remaining / steps, kept exact as a ratio of ints
    if remaining == 0:
        return torch.zeros_like(n, dtype=torch.long)
    ratio = math.sin(math.pi / 2 * remaining / steps)
    counts = torch.floor(n.to(torch.float64) * ratio + _FLOOR_SLACK).to(torch.long)
    return torch.minimum(counts, n.to(torch.long)).clamp_min(0)
