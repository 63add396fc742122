"""Masked supervision/GRL head losses and weighted_sum."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ns3.losses import (
    UnknownLossWeightError,
    classification_loss,
    masked_bce_with_logits,
    masked_cross_entropy,
    masked_l1,
    masked_mse,
    weighted_sum,
)


def test_masked_cross_entropy_matches_plain_ce_on_valid_frames():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    targets = torch.randint(0, 7, (2, 5), generator=g)
    targets[0, 1] = -100
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    valid = (targets != -100) & mask
    expected = F.cross_entropy(logits[valid], targets[valid])
    assert masked_cross_entropy(logits, targets, mask).item() == pytest.approx(expected.item(), rel=1e-6)
    # Labels under the mask do not matter.
    targets2 = targets.clone()
    targets2[1, 3:] = 0
    assert masked_cross_entropy(logits, targets2, mask).item() == pytest.approx(expected.item(), rel=1e-6)


def test_nothing_to_score_is_zero_with_a_graph_not_nan():
    logits = torch.randn(1, 4, 3, requires_grad=True)
    loss = masked_cross_entropy(logits, torch.full((1, 4), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    pred = torch.randn(1, 4, requires_grad=True)
    assert masked_l1(pred, torch.zeros(1, 4), torch.zeros(1, 4, dtype=torch.bool)).item() == 0.0


def test_out_of_range_targets_name_the_mismatch():
    with pytest.raises(ValueError, match="5 classes"):
        masked_cross_entropy(torch.randn(1, 2, 5), torch.tensor([[1, 9]]))
    with pytest.raises(ValueError, match="speaker"):
        classification_loss(torch.randn(2, 3), torch.tensor([0, 3]))


def test_regression_and_binary_known_values():
    pred, target = torch.tensor([[1.0, 2.0, 10.0]]), torch.tensor([[0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    assert masked_l1(pred, target, mask).item() == pytest.approx(1.5)
    assert masked_mse(pred, target, mask).item() == pytest.approx(2.5)
    logits = torch.tensor([[0.0, 100.0]])
    assert masked_bce_with_logits(logits, torch.tensor([[1.0, 1.0]]), torch.tensor([[True, False]])).item() == \
        pytest.approx(torch.log(torch.tensor(2.0)).item())
    with pytest.raises(ValueError, match="same shape"):
        masked_l1(pred, target[:, :2], mask)


def test_classification_ignores_unknown_speakers():
    logits = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    assert classification_loss(logits, torch.tensor([0, -100])).item() == pytest.approx(
        F.cross_entropy(logits[:1], torch.tensor([0])).item())


def test_weighted_sum_known_value_and_unweighted_losses_are_ignored():
    losses = {"codec/rec": torch.tensor(2.0), "codec/adv": torch.tensor(3.0), "codec/extra": torch.tensor(100.0)}
    assert weighted_sum(losses, {"codec/rec": 10.0, "codec/adv": 2.0}).item() == pytest.approx(26.0)


def test_weighted_sum_rejects_a_weight_without_a_loss():
    with pytest.raises(UnknownLossWeightError, match=r"codec/mel.*available: \['codec/rec'\]"):
        weighted_sum({"codec/rec": torch.tensor(1.0)}, {"codec/rec": 1.0, "codec/mel": 10.0})
    with pytest.raises(ValueError, match="no weights"):
        weighted_sum({"codec/rec": torch.tensor(1.0)}, {})
