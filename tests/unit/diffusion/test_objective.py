"""The training objective: prompts, level-q inputs, the loss on masked tokens only, gradients."""
from __future__ import annotations

import pytest
import torch

from diffusion_fixtures import random_batch, tiny_hparams
from ns3.diffusion.model import DURATION, FRAME_CE, PROSODY_CE, FactorizedDiffusion, split_prompts
from ns3.losses.diffusion import log_duration_l2, masked_token_loss


def test_prompt_split_is_a_phone_prefix_with_its_frames():
    hp = tiny_hparams()
    batch = random_batch(hp, [6, 9, 2])
    split = split_prompts(batch, torch.Generator().manual_seed(0), drop=0.0, low=0.3, high=0.6)
    n = batch.phone_mask.sum(1)
    assert (split.phones < n).all() and (split.phones >= 0).all()  # a target phone is always left
    for i in range(3):
        assert int(split.frames[i]) == int(batch.durations[i, : int(split.phones[i])].sum())
    dropped = split_prompts(batch, torch.Generator().manual_seed(0), drop=1.0, low=0.3, high=0.6)
    assert (dropped.phones == 0).all() and (dropped.frames == 0).all()


def test_frame_inputs_follow_the_level_recipe():
    hp = tiny_hparams()
    model = FactorizedDiffusion(hp)
    batch = random_batch(hp, [6, 8], seed=1)
    split = split_prompts(batch, torch.Generator().manual_seed(1), 0.0, 0.4, 0.5)
    level = torch.tensor([0, 3])
    t = torch.tensor([0.5, 1.0])
    tokens, target, masked = model.frame_inputs(batch.codes, level, t, split, batch.frame_mask, torch.Generator().manual_seed(0))
    m = hp.mask_id
    tgt, prm = split.frame_target(batch.frame_mask), split.frame_prompt(batch.frame_mask)
    for i, q in enumerate(level.tolist()):
        shown = set(hp.prompt_levels(q))
        for lev in range(hp.num_levels):
            row, codes = tokens[i, lev], batch.codes[i, lev]
            if lev in shown:
                assert torch.equal(row[prm[i]], codes[prm[i]])  # the prompt shows q's attribute
            else:
                assert (row[prm[i]] == m).all()  # ... and hides the others
            if lev < q:
                assert torch.equal(row[tgt[i]], codes[tgt[i]])  # coarser levels given
            elif lev > q:
                assert (row[tgt[i]] == m).all()  # finer levels hidden
        assert torch.equal(target[i], batch.codes[i, q])
        assert not (masked[i] & ~tgt[i]).any()  # only target frames are ever masked
        assert (tokens[i, q][masked[i]] == m).all() and torch.equal(tokens[i, q][tgt[i] & ~masked[i]],
                                                                    batch.codes[i, q][tgt[i] & ~masked[i]])
    assert masked[1][tgt[1]].all()  # t = 1 masks every target frame


def test_masked_loss_has_gradient_only_on_masked_tokens():
    logits = torch.randn(2, 5, 7, requires_grad=True)
    targets = torch.randint(0, 7, (2, 5))
    masked = torch.tensor([[True, False, False, True, False], [False, False, True, False, False]])
    ce, acc = masked_token_loss(logits, targets, masked)
    ce.backward()
    touched = logits.grad.abs().sum(-1) > 0
    assert torch.equal(touched, masked)
    expected = torch.nn.functional.cross_entropy(logits.detach()[masked], targets[masked])
    torch.testing.assert_close(ce.detach(), expected)
    none = masked_token_loss(logits, targets, torch.zeros_like(masked))[0]
    assert float(none.detach()) == 0.0 and none.requires_grad  # nothing masked: 0 with a graph, never NaN
    pred = torch.zeros(1, 3, requires_grad=True)
    assert float(log_duration_l2(pred, torch.tensor([[1, 1, 1]]), torch.ones(1, 3, dtype=torch.bool))) == 0.0


@pytest.mark.parametrize("objective", ["ce", "l2"])
def test_forward_reports_every_loss_and_trains_all_networks(objective):
    hp = tiny_hparams(duration_objective=objective)
    model = FactorizedDiffusion(hp)
    out = model(random_batch(hp, [5, 7, 4]), torch.Generator().manual_seed(0), prompt_drop=0.0)
    assert set(out.losses) == {FRAME_CE, PROSODY_CE, DURATION}
    assert all(torch.isfinite(v) for v in out.losses.values())
    sum(out.losses.values()).backward()
    for name in ("encoder", "phone_model", "frame_model"):
        grads = [p.grad for p in getattr(model, name).parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, name
    assert any(k.startswith("diffusion/acc/") for k in out.metrics)


def test_objective_is_batch_independent_in_eval_inputs():
    """The networks see padding only through masks: an item's frame logits do not depend on its batch."""
    hp = tiny_hparams()
    model = FactorizedDiffusion(hp).eval()
    batch = random_batch(hp, [5, 9], seed=3)
    phones = model.encoder(batch.phone_ids, batch.phone_mask)
    alone = model.encoder(batch.phone_ids[:1, :5], batch.phone_mask[:1, :5])
    torch.testing.assert_close(phones[:1, :5], alone, atol=1e-5, rtol=1e-5)
