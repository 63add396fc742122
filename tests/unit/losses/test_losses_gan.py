"""LSGAN and feature-matching losses on known inputs."""
from __future__ import annotations

import pytest
import torch

from ns3.losses import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss


def test_lsgan_generator_known_values():
    assert lsgan_generator_loss([torch.ones(2, 5), torch.ones(3)]).item() == 0.0
    assert lsgan_generator_loss([torch.zeros(2, 5), torch.zeros(3)]).item() == 2.0  # 1 per sub-discriminator
    assert lsgan_generator_loss([torch.full((4,), 0.5)]).item() == pytest.approx(0.25)
    assert lsgan_generator_loss([torch.tensor([0.0, 2.0])]).item() == pytest.approx(1.0)  # mean of 1 and 1


def test_lsgan_discriminator_known_values():
    ones, zeros = [torch.ones(4)], [torch.zeros(4)]
    assert lsgan_discriminator_loss(ones, zeros).item() == 0.0  # perfect discriminator
    assert lsgan_discriminator_loss(zeros, ones).item() == 2.0  # fully fooled: 1 + 1
    assert lsgan_discriminator_loss([torch.full((3,), 0.5)], [torch.full((3,), 0.5)]).item() == pytest.approx(0.5)


def test_lsgan_rejects_mismatched_or_empty_lists():
    with pytest.raises(ValueError, match="2 real vs 1 fake"):
        lsgan_discriminator_loss([torch.ones(1), torch.ones(1)], [torch.ones(1)])
    with pytest.raises(ValueError, match="no discriminator logits"):
        lsgan_generator_loss([])


def test_feature_matching_zero_on_identical_and_known_value():
    real = [[torch.zeros(2, 3), torch.ones(2, 4)], [torch.full((5,), 2.0)]]
    assert feature_matching_loss(real, [[t.clone() for t in fs] for fs in real]).item() == 0.0
    fake = [[torch.ones(2, 3), torch.ones(2, 4)], [torch.full((5,), 4.0)]]
    assert feature_matching_loss(real, fake).item() == pytest.approx(1.0 + 0.0 + 2.0)
    # relative: the layer term |2 - 4| = 2 divided by mean |real| = 2
    rel = feature_matching_loss(real[1:], fake[1:], relative=True)
    assert rel.item() == pytest.approx(1.0)


def test_feature_matching_trains_only_the_fake_side():
    real = [[torch.randn(3, requires_grad=True)]]
    fake = [[torch.randn(3, requires_grad=True)]]
    feature_matching_loss(real, fake).backward()
    assert real[0][0].grad is None
    assert fake[0][0].grad is not None and fake[0][0].grad.abs().sum() > 0


def test_feature_matching_rejects_layer_mismatch():
    with pytest.raises(ValueError, match="discriminator 0 has 2 real vs 1 fake layers"):
        feature_matching_loss([[torch.ones(1), torch.ones(1)]], [[torch.ones(1)]])
