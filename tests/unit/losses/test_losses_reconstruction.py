"""Multi-scale mel loss invariants."""
from __future__ import annotations

import pytest
import torch

from ns3.losses import DAC_SCALES, MINI_SCALES, MelScale, MultiResolutionSTFTLoss, MultiScaleMelLoss


@pytest.fixture(scope="module")
def wav():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(8000) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 220 * t) + 0.1 * torch.sin(2 * torch.pi * 1375 * t)
    return torch.stack([tone, 0.2 * torch.randn(8000, generator=g)])


@pytest.mark.parametrize("scales", [MINI_SCALES, DAC_SCALES], ids=["mini", "dac"])
def test_identical_inputs_give_exactly_zero(wav, scales):
    assert MultiScaleMelLoss(scales)(wav, wav.clone()).item() == 0.0


def test_loss_grows_with_noise(wav):
    loss = MultiScaleMelLoss(MINI_SCALES)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(wav.shape, generator=g)
    values = [loss(wav + a * noise, wav).item() for a in (0.001, 0.01, 0.1, 0.5)]
    assert all(v > 0 for v in values)
    assert values == sorted(values), values


def test_sum_over_scales_and_gradient_reaches_the_reconstruction(wav):
    scales = (MelScale(256, 64, 40), MelScale(512, 128, 64))
    both = MultiScaleMelLoss(scales)
    hat = (wav + 0.05).requires_grad_(True)
    total = both(hat, wav)
    parts = [MultiScaleMelLoss([s])(hat, wav) for s in scales]
    assert torch.allclose(total, parts[0] + parts[1])
    total.backward()
    assert hat.grad is not None and hat.grad.abs().sum() > 0


def test_silence_is_clamped_not_infinite():
    z = torch.zeros(1, 4000)
    value = MultiScaleMelLoss(MINI_SCALES)(z, z + 1e-3)
    assert torch.isfinite(value) and value > 0


def test_shape_mismatch_is_rejected(wav):
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        MultiScaleMelLoss(MINI_SCALES)(wav[:, :100], wav)
    with pytest.raises(ValueError, match="at least one"):
        MultiScaleMelLoss([])


def test_stft_loss_is_zero_on_identical_inputs_grows_with_noise_and_has_a_gradient(wav):
    loss = MultiResolutionSTFTLoss()
    assert loss(wav, wav.clone()).item() == 0.0
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(wav.shape, generator=g)
    values = [loss(wav + a * noise, wav).item() for a in (0.001, 0.01, 0.1)]
    assert values == sorted(values) and values[0] > 0, values
    est = (wav + 0.05 * noise).requires_grad_(True)
    loss(est, wav).backward()
    assert est.grad is not None and est.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"two \[B, T\] waveforms"):
        loss(wav[:, :100], wav)
    with pytest.raises(ValueError, match="at least one"):
        MultiResolutionSTFTLoss(())
