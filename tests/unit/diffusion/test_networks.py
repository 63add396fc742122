"""The diffusion networks: length regulator, AdaCLN time conditioning, batch independence, gradients, sizes."""
from __future__ import annotations

import pytest
import torch

from ns3.diffusion.hparams import DiffusionHParams
from ns3.diffusion.networks import TASK_DURATION, TASK_PROSODY, FrameLevelModel, PhoneLevelModel, PhonemeEncoder, length_regulate


def tiny(**kw) -> DiffusionHParams:
    base = dict(num_phones=12, codebook_size=16, max_duration=6, encoder_layers=1, encoder_dim=16, encoder_heads=2,
                encoder_hidden=32, encoder_kernel=3, phone_layers=1, phone_dim=16, frame_layers=2, frame_dim=24,
                heads=2, hidden=32, dropout=0.0)
    return DiffusionHParams(**{**base, **kw})


def test_length_regulator_repeats_each_phone_by_its_duration():
    phones = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    durs = torch.tensor([[2, 0, 3], [1, 1, 7]])  # item 0: a zero-length phone; item 1: third phone is padding
    mask = torch.tensor([[True, True, True], [True, True, False]])
    frames, fmask = length_regulate(phones, durs, mask)
    assert frames.shape == (2, 5, 2) and fmask.tolist() == [[True] * 5, [True, True, False, False, False]]
    assert frames[0].tolist() == [phones[0, 0].tolist()] * 2 + [phones[0, 2].tolist()] * 3
    assert frames[1, :2].tolist() == [phones[1, 0].tolist(), phones[1, 1].tolist()]
    assert frames[1, 2:].abs().sum() == 0  # padding frames are zero


def _frame_inputs(hp, b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, hp.codebook_size + 1, (b, hp.num_levels, t), generator=g)
    cond = torch.randn(b, t, hp.encoder_dim, generator=g)
    return tokens, cond, torch.rand(b, generator=g), torch.randint(0, hp.num_levels, (b,), generator=g)


def test_frame_model_is_batch_independent_and_picks_the_level_head():
    hp = tiny()
    net = FrameLevelModel(hp).eval()
    tokens, cond, t, level = _frame_inputs(hp, 3, 10)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[1, 6:] = False
    out = net(tokens, level, cond, t, mask)
    assert out.shape == (3, 10, hp.codebook_size)
    alone = net(tokens[1:2, :, :6], level[1:2], cond[1:2, :6], t[1:2], mask[1:2, :6])
    torch.testing.assert_close(out[1:2, :6], alone, atol=1e-5, rtol=1e-5)
    # A different level id changes the output (its own head and conditioning)
    other = net(tokens, (level + 1) % hp.num_levels, cond, t, mask)
    assert not torch.allclose(other, out)


def test_time_conditions_every_block():
    hp = tiny()
    net = FrameLevelModel(hp).eval()
    tokens, cond, t, level = _frame_inputs(hp, 2, 8)
    mask = torch.ones(2, 8, dtype=torch.bool)
    a = net(tokens, level, cond, torch.full((2,), 0.1), mask)
    b = net(tokens, level, cond, torch.full((2,), 0.9), mask)
    assert not torch.allclose(a, b)


def test_gradients_reach_embeddings_encoder_and_time():
    hp = tiny()
    enc, phone_net = PhonemeEncoder(hp), PhoneLevelModel(hp)
    ids = torch.randint(1, hp.num_phones, (2, 5))
    mask = torch.ones(2, 5, dtype=torch.bool)
    states = enc(ids, mask)
    tokens = torch.randint(0, hp.codebook_size, (2, 5))
    out = phone_net(TASK_PROSODY, tokens, states, torch.rand(2), mask).sum()
    durs = torch.randint(1, hp.max_duration, (2, 5))
    out = out + phone_net(TASK_DURATION, durs, states, torch.rand(2), mask, tokens).sum()
    out.backward()
    for name, p in [("encoder", enc.embed.weight), ("time", phone_net.time.mlp[0].weight),
                    ("prosody condition", phone_net.prosody_condition.weight), ("duration head", phone_net.duration_head.weight)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_duration_model_requires_prosody_codes_unless_ablated():
    hp = tiny()
    net = PhoneLevelModel(hp)
    states, mask = torch.randn(1, 4, hp.encoder_dim), torch.ones(1, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="prosody_codes"):
        net(TASK_DURATION, torch.ones(1, 4, dtype=torch.long), states, torch.rand(1), mask)
    ablated = PhoneLevelModel(tiny(duration_uses_prosody=False, duration_objective="l2"))
    assert ablated(TASK_DURATION, torch.ones(1, 4, dtype=torch.long), states, torch.rand(1), mask).shape == (1, 4, 1)


def test_prompt_levels_follow_the_attributes():
    hp = DiffusionHParams.mini()
    assert [hp.prompt_levels(q) for q in range(6)] == [(0,), (1, 2), (1, 2), (3, 4, 5), (3, 4, 5), (3, 4, 5)]
    with pytest.raises(ValueError, match="duration_objective"):
        DiffusionHParams(duration_objective="mse")
