"""Quantizer, gradient reversal, conditional layer norm, anti-aliased activation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ns3.codec.heads import grad_reverse
from ns3.codec.layers import AntiAliasedSnake, WNConv1d, WNConvTranspose1d, kaiser_sinc_filter
from ns3.codec.quantizer import FactorizedQuantizer, FactorizedVQ, ResidualFVQ
from ns3.codec.timbre import ConditionalLayerNorm, TimbreEncoder


def test_lookup_picks_the_max_cosine_entry():
    torch.manual_seed(0)
    vq = FactorizedVQ(16, 32, 4)
    z = torch.randn(2, 7, 4)
    codes = vq.lookup(z)
    cos = F.cosine_similarity(z[:, :, None, :], vq.codebook.weight[None, None], dim=-1)
    assert torch.equal(codes, cos.argmax(-1))
    # cosine, not Euclidean: scaling the query does not change the pick
    assert torch.equal(vq.lookup(z * 100.0), codes)


def test_straight_through_passes_the_gradient_exactly():
    torch.manual_seed(0)
    vq = FactorizedVQ(16, 32, 4)
    z = torch.randn(2, 5, 4, requires_grad=True)
    z_st, codes, _, _ = vq.quantize_latent(z)
    torch.testing.assert_close(z_st, vq.codebook.weight[codes])  # forward value is the raw codebook row
    g = torch.randn_like(z_st)
    (z_st * g).sum().backward()
    assert torch.equal(z.grad, g)


def test_losses_nonnegative_and_zero_on_codewords():
    torch.manual_seed(0)
    vq = FactorizedVQ(16, 32, 4)
    z = vq.codebook.weight[torch.tensor([[3, 7, 7, 0]])].detach().clone()
    _, codes, cb, commit = vq.quantize_latent(z)
    assert torch.equal(codes, torch.tensor([[3, 7, 7, 0]]))
    assert cb.item() == 0.0 and commit.item() == 0.0
    _, _, cb, commit = vq.quantize_latent(torch.randn(2, 9, 4))
    assert cb.item() > 0 and commit.item() > 0
    torch.testing.assert_close(cb, commit)  # same value; they differ only in where the gradient goes


def test_codebook_and_commitment_gradients_go_to_the_right_side():
    torch.manual_seed(0)
    vq = FactorizedVQ(16, 32, 4)
    z = torch.randn(1, 6, 4, requires_grad=True)
    _, _, cb, commit = vq.quantize_latent(z)
    cb.backward(retain_graph=True)
    assert z.grad is None and vq.codebook.weight.grad.abs().sum() > 0
    vq.codebook.weight.grad = None
    commit.backward()
    assert z.grad.abs().sum() > 0 and vq.codebook.weight.grad is None


def test_codes_in_range_and_residual_cascade_shapes():
    torch.manual_seed(0)
    rvq = ResidualFVQ(3, 16, 8, 4)
    r = rvq(torch.randn(2, 16, 11))
    assert r.codes.shape == (2, 3, 11) and r.codes.dtype == torch.long
    assert int(r.codes.min()) >= 0 and int(r.codes.max()) < 8
    torch.testing.assert_close(rvq.embed(r.codes), r.quantized)


def test_detail_reads_the_residual_of_prosody_and_content():
    torch.manual_seed(0)
    q = FactorizedQuantizer(16, 1, 2, 3, 8, 4)
    x = torch.randn(1, 16, 5)
    out = q(x, x)
    expect = q.detail(x - (out.factors["prosody"] + out.factors["content"]))
    assert torch.equal(out.codes.detail, expect.codes)
    # and no gradient reaches prosody/content through the detail input
    x2 = x.clone().requires_grad_()
    out = q(x2, x2.detach())
    out.factors["detail"].sum().backward()
    assert all(p.grad is None for p in q.prosody.parameters())


def test_no_bottleneck_quantizes_in_the_full_dimension():
    vq = FactorizedVQ(16, 32, 4, bottleneck=False)
    assert vq.codebook.weight.shape == (32, 16)
    assert vq(torch.randn(1, 16, 3)).quantized.shape == (1, 16, 3)


def test_gradient_reversal_flips_and_scales():
    x = torch.randn(4, requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    g = torch.randn(4)
    y.backward(g)
    torch.testing.assert_close(x.grad, -0.5 * g)


def test_conditional_layer_norm_uses_timbre():
    torch.manual_seed(0)
    cln = ConditionalLayerNorm(8)
    x = torch.randn(2, 8, 5)
    t = torch.zeros(2, 8)
    # fresh: gain 1, bias 0 for a zero timbre (bias init) -> a plain channel LayerNorm
    torch.testing.assert_close(cln(x, t), F.layer_norm(x.transpose(1, 2), (8,)).transpose(1, 2))
    torch.nn.init.normal_(cln.linear.weight)
    t = torch.randn(2, 8)
    gamma, beta = cln.scale_bias(t)
    normed = F.layer_norm(x.transpose(1, 2), (8,)).transpose(1, 2)
    torch.testing.assert_close(cln(x, t), normed * gamma + beta)
    assert not torch.allclose(cln(x, t), cln(x, torch.randn(2, 8)))
    assert gamma.shape == beta.shape == (2, 8, 1)


def test_timbre_pooling_ignores_padding():
    torch.manual_seed(0)
    enc = TimbreEncoder(16, 2, 4, 32, 5, 0.0).eval()
    x = torch.randn(1, 16, 9)
    padded = torch.cat([x, torch.randn(1, 16, 4)], dim=-1)
    mask = torch.tensor([[True] * 9 + [False] * 4])
    torch.testing.assert_close(enc(padded, mask), enc(x), atol=1e-5, rtol=1e-5)


def test_antialiased_activation_keeps_length_and_filters_are_lowpass():
    act = AntiAliasedSnake(3)
    for n in (1, 7, 50):
        assert act(torch.randn(2, 3, n)).shape == (2, 3, n)
    taps = kaiser_sinc_filter(0.25, 0.3, 12)[0, 0]
    assert abs(float(taps.sum()) - 1.0) < 1e-6 and torch.allclose(taps, taps.flip(0))
    response = torch.fft.rfft(taps, 64).abs()
    assert response[0] > 0.99 and response[-1] < 0.05  # passes DC, stops Nyquist


def test_weight_norm_layers_match_plain_convolutions():
    torch.manual_seed(0)
    conv = WNConv1d(3, 5, 4, stride=2, padding=1)
    x = torch.randn(1, 3, 20)
    torch.testing.assert_close(conv(x), F.conv1d(x, conv.weight_v.detach(), conv.bias, 2, 1))  # g = ||v|| at init
    with torch.no_grad():
        conv.weight_g.mul_(2.0)
    torch.testing.assert_close(conv(x), F.conv1d(x, 2 * conv.weight_v.detach(), conv.bias, 2, 1))
    up = WNConvTranspose1d(4, 2, 10, 5, 3, 1)
    assert up.weight_g.shape == (4, 1, 1) and up(torch.randn(1, 4, 6)).shape == (1, 2, 30)


def test_snake_inference_path_equals_autograd_path():
    from ns3.codec.layers import SnakeBeta

    act = SnakeBeta(4)
    with torch.no_grad():
        act.alpha.normal_()
        act.beta.normal_()
    x = torch.randn(2, 4, 9)
    with torch.no_grad():
        fast = act(x)
    torch.testing.assert_close(fast, act(x))


def test_snake_hand_written_gradient_matches_the_formula():
    from ns3.codec.layers import SnakeBeta

    torch.manual_seed(0)
    act = SnakeBeta(3).double()
    with torch.no_grad():
        act.alpha.normal_(0, 0.5)
        act.beta.normal_(0, 0.5)
    x = torch.randn(2, 3, 7, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda x, a, b: act.__class__.forward(_with(act, a, b), x), (x, act.alpha, act.beta))
    # and against autograd through the plain formula
    g = torch.randn(2, 3, 7, dtype=torch.float64)
    act(x).backward(g)
    fused = [x.grad.clone(), act.alpha.grad.clone(), act.beta.grad.clone()]
    x.grad = act.alpha.grad = act.beta.grad = None
    a, inv_b = act.alpha.exp()[None, :, None], 1.0 / (act.beta.exp()[None, :, None] + 1e-9)
    (x + torch.sin(x * a).pow(2) * inv_b).backward(g)
    for got, want in zip(fused, (x.grad, act.alpha.grad, act.beta.grad)):
        torch.testing.assert_close(got, want)


def _with(act, alpha, beta):
    """A view of ``act`` whose parameters are the given tensors (for gradcheck over them)."""
    clone = act.__class__.__new__(act.__class__)
    clone.__dict__.update(act.__dict__)
    clone._parameters = {"alpha": alpha, "beta": beta}
    return clone


def test_snake_without_anti_aliasing_is_plain_snake_beta():
    import torch

    from ns3.codec.layers import AntiAliasedSnake

    torch.manual_seed(0)
    act = AntiAliasedSnake(4, anti_alias=False)
    x = torch.randn(2, 4, 50)
    assert torch.equal(act(x), act.act(x))
    aliased = AntiAliasedSnake(4)
    aliased.act.load_state_dict(act.act.state_dict())
    assert not torch.allclose(aliased(x), act(x))  # the filters do change the output


def test_model_without_anti_aliasing_has_the_same_parameters():
    from ns3.codec import FACodec, FACodecHParams

    a = FACodec(FACodecHParams.mini())
    b = FACodec(FACodecHParams.mini(anti_alias=False))
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]


def test_dead_code_restart_reseeds_unused_entries_from_the_batch():
    import torch

    from ns3.codec.quantizer import FactorizedVQ

    torch.manual_seed(0)
    vq = FactorizedVQ(16, codebook_size=64, codebook_dim=4, restart_decay=0.9).train()
    x = torch.randn(2, 16, 50)
    before = vq.codebook.weight.detach().clone()
    with torch.no_grad():
        first = vq.lookup(vq.in_proj(x.transpose(1, 2)))
    unused = torch.ones(64, dtype=torch.bool)
    unused[first.unique()] = False
    out = vq(x)
    # First step: entries no frame picked are re-seeded from projected batch vectors...
    z = vq.in_proj(x.transpose(1, 2)).reshape(-1, 4).detach()
    dist = torch.cdist(vq.codebook.weight.detach(), z).min(dim=1).values
    reseeded = (vq.codebook.weight.detach() != before).any(dim=1)
    assert torch.equal(reseeded, unused) and bool((dist[reseeded] < 0.01).all())
    # ...which spreads the codes over many entries (a fresh random codebook uses far fewer).
    assert out.codes.unique().numel() > 20
    # Evaluation never touches the codebook.
    vq.eval()
    frozen = vq.codebook.weight.detach().clone()
    vq(torch.randn(2, 16, 50))
    assert torch.equal(frozen, vq.codebook.weight)
    assert "usage" in vq.state_dict()  # saved, so a resumed run restarts exactly the same codes


def test_normalized_codes_keep_vq_losses_bounded():
    import torch

    from ns3.codec.quantizer import FactorizedVQ

    torch.manual_seed(0)
    raw = FactorizedVQ(16, 32, 4).train()
    unit = FactorizedVQ(16, 32, 4, normalized=True).train()
    unit.load_state_dict(raw.state_dict())
    with torch.no_grad():
        raw.codebook.weight.mul_(100.0)  # a codebook whose rows drifted far from the encoder's scale
        unit.codebook.weight.mul_(100.0)
    x = torch.randn(2, 16, 30) * 50
    r, u = raw(x), unit(x)
    assert torch.equal(r.codes, u.codes)  # the cosine lookup is the same either way
    assert float(r.codebook_loss) > 100 and float(u.codebook_loss) <= 4.0  # |a - b|^2 <= 4 on the unit sphere
    assert torch.allclose(unit._rows(u.codes[:, 0]).norm(dim=-1), torch.ones(2, 30), atol=1e-5)
