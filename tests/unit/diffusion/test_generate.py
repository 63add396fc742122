"""Generation: the NFE budget of each mode, lengths from the durations, batch independence, attribute prompts."""
from __future__ import annotations

import pytest
import torch

from diffusion_fixtures import random_batch, tiny_hparams
from ns3.diffusion.generate import GenerationConfig, PromptUtterance, generate
from ns3.diffusion.model import FactorizedDiffusion


def _prompt(batch, i: int, k: int) -> PromptUtterance:
    f = int(batch.durations[i, :k].sum())
    return PromptUtterance(batch.phone_ids[i, :k], batch.durations[i, :k], batch.phone_prosody[i, :k], batch.codes[i, :, :f])


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    hp = tiny_hparams()
    return FactorizedDiffusion(hp).eval(), random_batch(hp, [6, 8, 5], seed=4)


@pytest.mark.parametrize("config,nfe", [(GenerationConfig(), 60), (GenerationConfig(steps=1), 15),
                                        (GenerationConfig(use_cfg=False), 60),
                                        (GenerationConfig(use_cfg=False, double_steps_without_cfg=False), 32),
                                        (GenerationConfig(duration_steps=1), 57)])
def test_nfe_budget(setup, config, nfe):
    model, batch = setup
    out = generate(model, [batch.phone_ids[0, :4]], [{"prosody": _prompt(batch, 1, 3)}], config)
    assert out.nfe == nfe
    assert out.nfe_by_process["duration"] == (1 if 1 in (config.steps, config.duration_steps) else 4)  # never CFG


def test_outputs_fit_their_durations_and_vocabularies(setup):
    model, batch = setup
    hp = model.hp
    targets = [batch.phone_ids[0, :4], batch.phone_ids[2, :5]]
    out = generate(model, targets, [{"prosody": _prompt(batch, 1, 3)}, {"prosody": _prompt(batch, 0, 2)}])
    for codes, durs, pros, ids in zip(out.codes, out.durations, out.phone_prosody, targets):
        assert durs.shape == ids.shape and (durs >= 1).all() and (durs <= hp.max_duration).all()
        assert codes.shape == (hp.num_levels, int(durs.sum()))
        assert ((codes >= 0) & (codes < hp.codebook_size)).all()  # no mask token left
        assert pros.shape == ids.shape and (pros < hp.codebook_size).all()


def test_each_item_is_independent_of_its_batch(setup):
    model, batch = setup
    targets = [batch.phone_ids[0, :4], batch.phone_ids[2, :5], batch.phone_ids[1, :7]]
    prompts = [{"prosody": _prompt(batch, 1, 3)}, {"prosody": _prompt(batch, 0, 2)}, {"prosody": _prompt(batch, 2, 4)}]
    seeds = [11, 12, 13]
    together = generate(model, targets, prompts, generators=[torch.Generator().manual_seed(s) for s in seeds])
    for i in range(3):
        alone = generate(model, targets[i:i + 1], prompts[i:i + 1], generators=[torch.Generator().manual_seed(seeds[i])])
        assert torch.equal(alone.durations[0], together.durations[i])
        assert torch.equal(alone.codes[0], together.codes[i]), f"item {i}"


def test_attribute_prompts_are_used(setup):
    """Another content prompt changes the generated content levels; a fixed seed keeps the rest comparable."""
    model, batch = setup
    target = [batch.phone_ids[0, :4]]
    base = {"prosody": _prompt(batch, 1, 3)}
    a = generate(model, target, [base], generators=[torch.Generator().manual_seed(0)])
    b = generate(model, target, [{**base, "content": _prompt(batch, 2, 4)}], generators=[torch.Generator().manual_seed(0)])
    assert torch.equal(a.durations[0], b.durations[0]) and torch.equal(a.codes[0][0], b.codes[0][0])  # p unchanged
    assert not torch.equal(a.codes[0][1:3], b.codes[0][1:3])
