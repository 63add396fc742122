"""Discriminator feature matching: the generator matches the discriminator's intermediate activations on
real audio (MelGAN/HiFi-GAN), a denser signal than the single adversarial logit."""
from __future__ import annotations

from typing import Sequence

import torch


def feature_matching_loss(
    real_features: Sequence[Sequence[torch.Tensor]],
    fake_features: Sequence[Sequence[torch.Tensor]],
    relative: bool = False,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Σ over sub-discriminators and layers of mean |f_real − f_fake|.

    ``real_features[k][l]``: layer l of sub-discriminator k on real audio (detached inside: the target
    must not train the discriminator). ``relative=True`` divides each layer's term by mean |f_real| so
    layers with large activations do not dominate.
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError(f"feature_matching_loss: {len(real_features)} real vs {len(fake_features)} fake discriminators")
    loss = fake_features[0][0].new_zeros((), dtype=torch.float32)
    for k, (rs, fs) in enumerate(zip(real_features, fake_features)):
        if len(rs) != len(fs):
            raise ValueError(f"feature_matching_loss: discriminator {k} has {len(rs)} real vs {len(fs)} fake layers")
        for r, f in zip(rs, fs):
            r = r.detach().float()
            term = (r - f.float()).abs().mean()
            if relative:
                term = term / (r.abs().mean() + eps)
            loss = loss + term
    return loss
