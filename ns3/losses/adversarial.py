"""Least-squares GAN losses (Mao et al., 2017), as used by HiFi-GAN / DAC-style codec discriminators.

Each argument is a list with one logit tensor per sub-discriminator (any shape); terms are means per
sub-discriminator, summed over sub-discriminators.
"""
from __future__ import annotations

from typing import Sequence

import torch


def _check(logits: Sequence[torch.Tensor], what: str) -> None:
    if len(logits) == 0:
        raise ValueError(f"{what}: no discriminator logits given")


def lsgan_generator_loss(fake_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ_k mean((1 − D_k(x̂))²): the generator wants every sub-discriminator to call its output real (1)."""
    _check(fake_logits, "lsgan_generator_loss")
    return sum(((1.0 - f.float()) ** 2).mean() for f in fake_logits)


def lsgan_discriminator_loss(real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Σ_k mean((1 − D_k(x))²) + mean(D_k(x̂)²): real → 1, fake → 0."""
    _check(real_logits, "lsgan_discriminator_loss")
    if len(real_logits) != len(fake_logits):
        raise ValueError(f"lsgan_discriminator_loss: {len(real_logits)} real vs {len(fake_logits)} fake logit tensors")
    return sum(((1.0 - r.float()) ** 2).mean() + (f.float() ** 2).mean() for r, f in zip(real_logits, fake_logits))
