"""The iterative masked sampler and CFG, driven by toy logits functions (no model)."""
from __future__ import annotations

import math

import pytest
import torch

from ns3.diffusion.sampler import SampleResult, SamplerConfig, cfg_combine, count_nfe, masked_sample
from ns3.diffusion.schedule import remask_counts

V = 16  # vocabulary; the mask token is id V
MASK = V
N_MAX = 24


class ToyLogits:
    """Batch- and padding-independent logits: a fixed table by position plus a term from the left
    neighbour's current token, so what earlier steps unmasked changes later steps. Counts its calls."""

    def __init__(self, seed: int, scale: float = 2.0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(N_MAX, V, generator=g) * scale
        self.neighbour = torch.randn(V + 1, V, generator=g) * scale
        self.calls = 0
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.seen.append((x.clone(), t.clone()))
        n = x.shape[1]
        left = torch.cat([torch.full_like(x[:, :1], MASK), x[:, :-1]], dim=1)
        return self.table[:n][None] + self.neighbour[left]


def _problem(b: int = 3, n: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, V, (b, n), generator=g)
    generate = torch.rand(b, n, generator=g) < 0.7
    generate[:, 0] = True
    return tokens, generate


def _gens(b: int, base: int = 100) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(base + i) for i in range(b)]


def test_fixed_positions_unchanged_and_no_mask_left():
    tokens, generate = _problem()
    res = masked_sample(ToyLogits(1), tokens, generate, MASK, SamplerConfig(), ToyLogits(2), _gens(3))
    assert isinstance(res, SampleResult)
    assert res.tokens.dtype == torch.long and res.tokens.shape == tokens.shape
    assert torch.equal(res.tokens[~generate], tokens[~generate])
    assert not (res.tokens == MASK).any()
    assert res.tokens.min() >= 0 and res.tokens.max() < V


def test_generate_positions_start_masked_and_time_goes_one_to_zero():
    tokens, generate = _problem()
    fn = ToyLogits(1)
    masked_sample(fn, tokens, generate, MASK, SamplerConfig(steps=4, use_cfg=False), generators=_gens(3))
    x0, _ = fn.seen[0]
    assert torch.all(x0[generate] == MASK) and torch.equal(x0[~generate], tokens[~generate])
    ts = [t for _, t in fn.seen]
    assert all(t.shape == (3,) for t in ts)
    assert [t[0].item() for t in ts] == pytest.approx([1.0, 0.75, 0.5, 0.25])


@pytest.mark.parametrize("steps", [4, 7])
def test_trace_follows_remask_counts(steps):
    tokens, generate = _problem(b=3, n=22, seed=4)
    res = masked_sample(ToyLogits(1), tokens, generate, MASK, SamplerConfig(steps=steps), ToyLogits(2), _gens(3))
    n = generate.sum(1)
    assert res.trace is not None and res.trace.shape == (steps, 3)
    for k in range(steps):
        assert torch.equal(res.trace[k], remask_counts(n, k, steps))
    assert torch.all(res.trace[-1] == 0)


def test_unmasked_positions_are_never_remasked_or_changed():
    tokens, generate = _problem(b=2, n=24, seed=7)
    fn = ToyLogits(3)
    res = masked_sample(fn, tokens, generate, MASK, SamplerConfig(steps=6, use_cfg=False), generators=_gens(2))
    states = [x for x, _ in fn.seen] + [res.tokens]
    for before, after in zip(states[:-1], states[1:]):
        done = generate & (before != MASK)
        assert torch.equal(after[done], before[done])
    # and something was actually unmasked before the end (the check above is not vacuous)
    assert (generate & (states[2] != MASK)).sum() > 0


@pytest.mark.parametrize(("steps", "use_cfg", "expected"), [(4, True, 8), (4, False, 4), (1, True, 2), (1, False, 1)])
def test_nfe_counts_every_forward_pass(steps, use_cfg, expected):
    tokens, generate = _problem()
    cond, uncond = ToyLogits(1), ToyLogits(2)
    res = masked_sample(cond, tokens, generate, MASK, SamplerConfig(steps=steps, use_cfg=use_cfg), uncond, _gens(3))
    assert res.nfe == expected == count_nfe(steps, use_cfg)
    assert cond.calls == steps
    assert uncond.calls == (steps if use_cfg else 0)  # use_cfg False skips uncond_fn even when given


def test_no_uncond_fn_means_no_cfg():
    tokens, generate = _problem()
    res = masked_sample(ToyLogits(1), tokens, generate, MASK, SamplerConfig(use_cfg=True), None, _gens(3))
    assert res.nfe == 4


def test_cfg_path_uses_the_combined_logits():
    tokens, generate = _problem(seed=2)
    cond, uncond = ToyLogits(1), ToyLogits(2)
    cfg = SamplerConfig(cfg_alpha=1.5, cfg_rescale=0.7)
    res = masked_sample(cond, tokens, generate, MASK, cfg, uncond, _gens(3))

    def combined(x, t):
        return cfg_combine(cond(x, t), uncond(x, t), 1.5, 0.7, generate)

    ref = masked_sample(combined, tokens, generate, MASK, SamplerConfig(use_cfg=False), generators=_gens(3))
    plain = masked_sample(cond, tokens, generate, MASK, SamplerConfig(use_cfg=False), generators=_gens(3))
    assert torch.equal(res.tokens, ref.tokens)
    assert not torch.equal(res.tokens, plain.tokens)  # guidance changed the outcome


def test_batch_independence_across_lengths_and_padding():
    lengths = [9, 20, 14]
    n = max(lengths)
    g = torch.Generator().manual_seed(5)
    items = []
    for length in lengths:
        tok = torch.randint(0, V, (length,), generator=g)
        gen = torch.zeros(length, dtype=torch.bool)
        gen[length // 3:] = True  # a prompt prefix, then the target
        items.append((tok, gen))
    tokens = torch.full((3, n), 3, dtype=torch.long)  # padding value
    generate = torch.zeros(3, n, dtype=torch.bool)
    for i, (tok, gen) in enumerate(items):
        tokens[i, : lengths[i]] = tok
        generate[i, : lengths[i]] = gen
    cond, uncond, cfg = ToyLogits(1), ToyLogits(2), SamplerConfig()
    batched = masked_sample(cond, tokens, generate, MASK, cfg, uncond, _gens(3, base=40))
    for i, (tok, gen) in enumerate(items):
        alone = masked_sample(cond, tok[None], gen[None], MASK, cfg, uncond, [torch.Generator().manual_seed(40 + i)])
        assert torch.equal(batched.tokens[i, : lengths[i]], alone.tokens[0])
    assert torch.equal(batched.tokens[:, -1][torch.tensor(lengths) < n], torch.tensor([3, 3]))


def test_default_generators_seed_item_index():
    tokens, generate = _problem()
    cond = ToyLogits(1)
    a = masked_sample(cond, tokens, generate, MASK, SamplerConfig(use_cfg=False))
    b = masked_sample(cond, tokens, generate, MASK, SamplerConfig(use_cfg=False), generators=_gens(3, base=0))
    c = masked_sample(cond, tokens, generate, MASK, SamplerConfig(use_cfg=False), generators=_gens(3, base=50))
    assert torch.equal(a.tokens, b.tokens)
    assert not torch.equal(a.tokens, c.tokens)


def _greedy_reference(fn, tokens, generate, steps):
    """Independent greedy MaskGIT loop without noise: argmax tokens, keep the most probable."""
    x = torch.where(generate, torch.full_like(tokens, MASK), tokens)
    masked = generate.clone()
    n = generate.sum(1)
    for k in range(steps):
        probs = torch.softmax(fn(x, torch.full((x.shape[0],), 1 - k / steps)), -1)
        conf, arg = probs.max(-1)
        for i in range(x.shape[0]):
            keep = int(math.floor(int(n[i]) * math.sin(math.pi / 2 * (1 - (k + 1) / steps)) + 1e-6))
            pos = masked[i].nonzero()[:, 0]
            order = torch.argsort(conf[i, pos], descending=True)
            take = pos[order[: len(pos) - keep]]
            x[i, take] = arg[i, take]
            masked[i, take] = False
    return x


def test_top_k_one_is_the_greedy_path():
    tokens, generate = _problem(b=3, n=24, seed=8)
    fn = ToyLogits(6, scale=0.5)  # flat logits: temperature sampling would wander off the argmax
    k1 = masked_sample(fn, tokens, generate, MASK, SamplerConfig(top_k=1, temperature=1.5, gumbel_scale=0.0,
                                                                   use_cfg=False), generators=_gens(3))
    ref = _greedy_reference(fn, tokens, generate, 4)
    assert torch.equal(k1.tokens, ref)
    sampled = masked_sample(fn, tokens, generate, MASK, SamplerConfig(top_k=20, temperature=1.5, gumbel_scale=0.0,
                                                                        use_cfg=False), generators=_gens(3))
    assert not torch.equal(sampled.tokens, ref)
    # With Gumbel noise on, top_k=1 still matches temperature 0 (same noise stream, same argmax tokens).
    a = masked_sample(fn, tokens, generate, MASK, SamplerConfig(top_k=1, temperature=1.5, use_cfg=False),
                      generators=_gens(3))
    b = masked_sample(fn, tokens, generate, MASK, SamplerConfig(top_k=20, temperature=0.0, use_cfg=False),
                      generators=_gens(3))
    assert torch.equal(a.tokens, b.tokens)


def test_top_k_restricts_samples_to_the_k_best():
    tokens = torch.zeros(1, N_MAX, dtype=torch.long)
    generate = torch.ones(1, N_MAX, dtype=torch.bool)
    fn = ToyLogits(9, scale=0.1)
    table_fn = lambda x, t: fn.table[None].expand(x.shape[0], -1, -1)  # noqa: E731  (no neighbour term)
    res = masked_sample(table_fn, tokens, generate, MASK, SamplerConfig(steps=1, top_k=3, temperature=5.0),
                        generators=_gens(1))
    top3 = fn.table.topk(3, -1).indices  # steps=1 is greedy: the argmax itself
    assert torch.equal(res.tokens[0], top3[:, 0])
    res = masked_sample(table_fn, tokens, generate, MASK, SamplerConfig(steps=2, top_k=3, temperature=5.0),
                        generators=_gens(1))
    assert all(int(res.tokens[0, j]) in top3[j].tolist() for j in range(N_MAX))


def test_cfg_combine_hand_computation():
    # One sample, two real positions of V=2, plus a padding position with wild values.
    cond = torch.tensor([[[1.0, 3.0], [-1.0, 1.0], [100.0, -50.0]]])
    uncond = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [-7.0, 9.0]]])
    pos = torch.tensor([[True, True, False]])
    # std(cond) over {1, 3, -1, 1}: mean 1, var (0+4+4+0)/4 = 2 -> sqrt(2).
    # α=1: g_cfg = 2·cond − uncond = [[1, 5], [-3, 1]]: mean 1, var (0+16+16+0)/4 = 8 -> 2·sqrt(2); ratio 1/2.
    out = cfg_combine(cond, uncond, alpha=1.0, phi=1.0, positions=pos)
    assert torch.allclose(out[0, :2], torch.tensor([[0.5, 2.5], [-1.5, 0.5]]))
    # φ = 0.5: halfway between the rescaled and the plain CFG logits.
    out = cfg_combine(cond, uncond, alpha=1.0, phi=0.5, positions=pos)
    assert torch.allclose(out[0, :2], torch.tensor([[0.75, 3.75], [-2.25, 0.75]]))
    # α=2: g_cfg = 3·cond − 2·uncond = [[1, 7], [-5, 1]], std 3·sqrt(2); ratio 1/3.
    out = cfg_combine(cond, uncond, alpha=2.0, phi=1.0, positions=pos)
    assert torch.allclose(out[0, :2], torch.tensor([[1 / 3, 7 / 3], [-5 / 3, 1 / 3]]))


def test_cfg_combine_phi_zero_is_plain_cfg():
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    pos = torch.rand(2, 5, generator=g) < 0.6
    out = cfg_combine(cond, uncond, alpha=1.3, phi=0.0, positions=pos)
    assert torch.allclose(out, cond + 1.3 * (cond - uncond))


def test_cfg_combine_padding_does_not_change_the_std():
    g = torch.Generator().manual_seed(1)
    cond, uncond = torch.randn(2, 6, 5, generator=g), torch.randn(2, 6, 5, generator=g)
    pos = torch.ones(2, 6, dtype=torch.bool)
    pos[0, 4:] = False
    pos[1, 2:] = False
    base = cfg_combine(cond, uncond, 1.0, 1.0, pos)
    cond2, uncond2 = cond.clone(), uncond.clone()
    cond2[~pos] = 1e4 * torch.randn(int((~pos).sum()), 5, generator=g)
    uncond2[~pos] = float("-inf")
    moved = cfg_combine(cond2, uncond2, 1.0, 1.0, pos)
    assert torch.allclose(moved[pos], base[pos])
    # per sample: sample 1's scale ignores sample 0's positions
    alone = cfg_combine(cond[1:], uncond[1:], 1.0, 1.0, pos[1:])
    assert torch.allclose(alone[0][pos[1]], base[1][pos[1]])
    # and the rescale really is active: the result has cond's std on the used positions
    sel = base[0][pos[0]]
    assert sel.std(unbiased=False).item() == pytest.approx(cond[0][pos[0]].std(unbiased=False).item(), rel=1e-5)


def test_cfg_combine_zero_std_is_guarded():
    cond = torch.full((1, 3, 4), 2.0)
    uncond = torch.full((1, 3, 4), 1.0)
    out = cfg_combine(cond, uncond, 1.0, 1.0, torch.ones(1, 3, dtype=torch.bool))
    assert torch.isfinite(out).all()
    assert torch.allclose(out, torch.full((1, 3, 4), 3.0))  # g_cfg itself, no rescale


def test_invalid_inputs_are_rejected():
    tokens, generate = _problem()
    with pytest.raises(ValueError):
        masked_sample(ToyLogits(1), tokens, generate, MASK, SamplerConfig(), generators=_gens(2))
    with pytest.raises(ValueError):
        SamplerConfig(steps=0)
    with pytest.raises(ValueError):  # logits wider than the mask id could sample the mask token
        masked_sample(lambda x, t: torch.zeros(*x.shape, V + 1), tokens, generate, MASK, SamplerConfig(),
                      generators=_gens(3))
