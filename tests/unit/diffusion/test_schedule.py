"""The corruption schedule: σ(t), time draws, corrupt() and the sampler's remask counts."""
from __future__ import annotations

import math

import pytest
import torch

from ns3.diffusion.schedule import Corrupted, corrupt, mask_ratio, remask_counts, sample_time

MASK = 1024


def test_mask_ratio_endpoints_are_exact_and_curve_is_sine():
    s = mask_ratio(torch.tensor([0.0, 1.0]))
    assert s[0].item() == 0.0 and s[1].item() == 1.0
    assert mask_ratio(torch.tensor([0.5])).item() == pytest.approx(math.sin(math.pi / 4), abs=1e-6)
    assert mask_ratio(torch.tensor([1 / 3])).item() == pytest.approx(0.5, abs=1e-6)


def test_mask_ratio_is_strictly_increasing_on_the_unit_interval():
    t = torch.linspace(0, 1, 1001)
    s = mask_ratio(t)
    assert torch.all(s[1:] > s[:-1])
    assert s.min() >= 0 and s.max() <= 1


def test_sample_time_range_shape_and_reproducibility():
    t = sample_time(20000, torch.Generator().manual_seed(0), eps=0.1)
    assert t.shape == (20000,) and t.dtype == torch.float32
    assert t.min() > 0.1 and t.max() <= 1.0
    assert t.mean().item() == pytest.approx(0.55, abs=0.01)  # U(0.1, 1]
    again = sample_time(20000, torch.Generator().manual_seed(0), eps=0.1)
    assert torch.equal(t, again)
    other = sample_time(20000, torch.Generator().manual_seed(1), eps=0.1)
    assert not torch.equal(t, other)


def test_remask_counts_four_steps_paper_values():
    n = torch.tensor([100])
    got = [int(remask_counts(n, k, 4)) for k in range(4)]
    assert got == [92, 70, 38, 0]


def test_remask_counts_monotone_last_step_zero_and_batched():
    n = torch.tensor([0, 1, 7, 33, 250, 1000])
    for steps in (1, 2, 3, 4, 8):
        prev = n.clone()
        for k in range(steps):
            c = remask_counts(n, k, steps)
            assert c.dtype == torch.long and c.shape == n.shape
            assert torch.all(c <= prev) and torch.all(c >= 0)
            prev = c
        assert torch.all(prev == 0)


def test_remask_counts_float_guard_on_integer_products():
    # σ(1/3) = sin(π/6) is 0.49999999999999994 in float64; 2·σ must floor to 1, not 0.
    assert math.sin(math.pi / 6) < 0.5  # the hazard the guard exists for
    assert int(remask_counts(torch.tensor([2]), 1, 3)) == 1
    assert int(remask_counts(torch.tensor([2000]), 1, 3)) == 1000


def test_remask_counts_rejects_bad_steps():
    with pytest.raises(ValueError):
        remask_counts(torch.tensor([4]), 4, 4)
    with pytest.raises(ValueError):
        remask_counts(torch.tensor([4]), 0, 0)


def _batch(b: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, MASK, (b, n), generator=g)
    eligible = torch.rand(b, n, generator=g) < 0.6
    return tokens, eligible


def test_corrupt_changes_only_eligible_positions_and_keeps_the_rest():
    tokens, eligible = _batch(64, 40)
    t = torch.full((64,), 0.7)
    c = corrupt(tokens, t, eligible, MASK, torch.Generator().manual_seed(3))
    assert isinstance(c, Corrupted)
    assert c.noised.dtype == torch.long and c.masked.dtype == torch.bool
    assert not (c.masked & ~eligible).any()
    assert torch.all(c.noised[c.masked] == MASK)
    assert torch.equal(c.noised[~c.masked], tokens[~c.masked])
    assert c.masked.any()  # σ(0.7) ≈ 0.89: plenty masked


def test_corrupt_masked_fraction_matches_sigma():
    g = torch.Generator().manual_seed(11)
    b, n = 4000, 32
    tokens = torch.randint(0, MASK, (b, n), generator=g)
    eligible = torch.ones(b, n, dtype=torch.bool)
    for tv in (0.2, 0.5, 0.9):
        c = corrupt(tokens, torch.full((b,), tv), eligible, MASK, g)
        frac = c.masked.float().mean().item()
        # 128k Bernoulli draws: sd < 0.0015; the at-least-one rule adds < 1/32·P(none) (tiny except at small t).
        assert frac == pytest.approx(math.sin(math.pi * tv / 2), abs=0.01)


def test_corrupt_per_item_time_is_respected():
    b, n = 2000, 32
    tokens = torch.zeros(b, n, dtype=torch.long)
    t = torch.cat([torch.full((b // 2,), 0.25), torch.full((b // 2,), 0.95)])
    c = corrupt(tokens, t, torch.ones(b, n, dtype=torch.bool), MASK, torch.Generator().manual_seed(5))
    low, high = c.masked[: b // 2].float().mean().item(), c.masked[b // 2:].float().mean().item()
    assert low == pytest.approx(math.sin(math.pi * 0.25 / 2), abs=0.015)
    assert high == pytest.approx(math.sin(math.pi * 0.95 / 2), abs=0.015)


def test_corrupt_masks_at_least_one_eligible_position_per_item():
    b, n = 3000, 6
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, MASK, (b, n), generator=g)
    eligible = torch.zeros(b, n, dtype=torch.bool)
    eligible[:, 2:5] = True  # three eligible positions per item
    eligible[:10] = False  # items with nothing to mask
    c = corrupt(tokens, torch.full((b,), 1e-3), eligible, MASK, g)  # σ ≈ 0.0016: the draw hides almost nothing
    counts = c.masked.sum(1)
    assert torch.all(counts[:10] == 0)
    assert torch.all(counts[10:] >= 1)
    assert not (c.masked & ~eligible).any()
    # The forced position is uniform over the eligible ones.
    share = c.masked[10:, 2:5].float().sum(0) / c.masked[10:].sum()
    assert torch.allclose(share, torch.full((3,), 1 / 3), atol=0.04)


def test_corrupt_is_reproducible_with_a_generator():
    tokens, eligible = _batch(8, 50)
    t = torch.full((8,), 0.5)
    a = corrupt(tokens, t, eligible, MASK, torch.Generator().manual_seed(9))
    b = corrupt(tokens, t, eligible, MASK, torch.Generator().manual_seed(9))
    c = corrupt(tokens, t, eligible, MASK, torch.Generator().manual_seed(10))
    assert torch.equal(a.masked, b.masked) and torch.equal(a.noised, b.noised)
    assert not torch.equal(a.masked, c.masked)


def test_corrupt_rejects_mismatched_shapes():
    tokens, eligible = _batch(2, 5)
    with pytest.raises(ValueError):
        corrupt(tokens, torch.full((3,), 0.5), eligible, MASK)
    with pytest.raises(ValueError):
        corrupt(tokens, torch.full((2,), 0.5), eligible[:, :4], MASK)
