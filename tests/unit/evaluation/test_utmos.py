"""UTMOS22-strong: the SpeechMOS state-dict layout, the layer semantics, and tiny random checkpoints."""
import pytest
import torch
from torch import nn

from evaluation.metrics import build_metric
from evaluation.metrics.utmos import load_utmos
from evaluation.metrics.utmos_model import SelfAttention, UTMOS22Strong, UTMOSConfig, WeightNormConv1d

TINY = UTMOSConfig(conv_dim=16, ssl_dim=32, ffn_dim=48, num_layers=2, num_heads=2, pos_conv_kernel=8,
                   pos_conv_groups=4, domain_dim=4, judge_dim=4, lstm_hidden=8, proj_hidden=16)


def randomized(cfg: UTMOSConfig, seed: int = 0) -> UTMOS22Strong:
    torch.manual_seed(seed)
    model = UTMOS22Strong(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    model = randomized(TINY)
    path = tmp_path_factory.mktemp("utmos") / "utmos_tiny.pt"
    torch.save(model.state_dict(), path)
    return path, model


def test_full_size_layout_matches_the_released_state_dict():
    with torch.device("meta"):
        sd = UTMOS22Strong().state_dict()
    expected = {
        "wav2vec2.feature_extractor.conv_layers.0.0.weight": (512, 1, 10),
        "wav2vec2.feature_extractor.conv_layers.0.2.weight": (512,),
        "wav2vec2.feature_extractor.conv_layers.6.0.weight": (512, 512, 2),
        "wav2vec2.layer_norm.weight": (512,),
        "wav2vec2.post_extract_proj.weight": (768, 512),
        "wav2vec2.encoder.pos_conv.0.weight_g": (1, 1, 128),
        "wav2vec2.encoder.pos_conv.0.weight_v": (768, 48, 128),
        "wav2vec2.encoder.pos_conv.0.bias": (768,),
        "wav2vec2.encoder.layers.11.self_attn.q_proj.weight": (768, 768),
        "wav2vec2.encoder.layers.11.fc1.weight": (3072, 768),
        "wav2vec2.encoder.layers.11.final_layer_norm.bias": (768,),
        "wav2vec2.mask_emb": (768,),
        "domain_emb": (1, 128),
        "judge_emb": (1, 128),
        "blstm.weight_ih_l0": (2048, 1024),
        "blstm.weight_hh_l0_reverse": (2048, 512),
        "projection.0.weight": (2048, 1024),
        "projection.2.weight": (1, 2048),
    }
    assert {k: tuple(sd[k].shape) for k in expected} == expected
    assert not any("conv_layers.1.2" in k or "dropout" in k for k in sd)
    assert UTMOSConfig.from_state_dict(sd) == UTMOSConfig()
    assert 100e6 < sum(v.numel() for v in sd.values()) < 106e6  # wav2vec 2.0 base (94M) + BLSTM and MLP heads


def test_weight_norm_conv_matches_torch_weight_norm_over_the_kernel_axis():
    torch.manual_seed(1)
    ref = nn.utils.weight_norm(nn.Conv1d(8, 8, 4, padding=2, groups=2), name="weight", dim=2)
    ours = WeightNormConv1d(8, 4, 2)
    ours.load_state_dict({"weight_g": ref.weight_g, "weight_v": ref.weight_v, "bias": ref.bias})
    x = torch.randn(2, 8, 11)
    torch.testing.assert_close(ours(x), ref(x))


def test_attention_matches_torch_mha_including_a_masked_pad_frame():
    torch.manual_seed(2)
    dim, heads = 16, 4
    ours = SelfAttention(dim, heads).eval()
    mha = nn.MultiheadAttention(dim, heads).eval()
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        mha.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        mha.out_proj.weight.copy_(ours.out_proj.weight)
        mha.out_proj.bias.copy_(ours.out_proj.bias)
    x = torch.randn(1, 7, dim)  # odd length: the trained model padded one masked frame here
    padded = torch.cat([x, torch.zeros(1, 1, dim)], dim=1).transpose(0, 1)
    mask = torch.tensor([[False] * 7 + [True]])
    expected = mha(padded, padded, padded, key_padding_mask=mask, need_weights=False)[0].transpose(0, 1)[:, :7]
    torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)


def test_tiny_checkpoint_loads_with_inferred_sizes_and_scores(tiny_checkpoint, speech):
    path, model = tiny_checkpoint
    m = build_metric("utmos", checkpoint=str(path), num_heads=2)
    v = m.score(speech)
    with torch.no_grad():
        expected = float(model(torch.from_numpy(speech)[None])[0])
    assert v.value == pytest.approx(expected, rel=1e-5)
    assert m._load().cfg == TINY
    r = m.score_corpus([speech, speech[:200]])
    assert r.n_available == 1 and "shorter" in r.per_utterance[1].reason


def test_new_style_weight_norm_names_are_accepted(tmp_path, tiny_checkpoint, speech):
    _, model = tiny_checkpoint
    sd = {k.replace("weight_g", "parametrizations.weight.original0").replace("weight_v", "parametrizations.weight.original1"): v
          for k, v in model.state_dict().items()}
    torch.save(sd, tmp_path / "new.pt")
    loaded = load_utmos(tmp_path / "new.pt", num_heads=2)
    with torch.no_grad():
        x = torch.from_numpy(speech[:8000])[None]
        torch.testing.assert_close(loaded(x), model(x))


@pytest.mark.parametrize("checkpoint, words", [(None, "no UTMOS"), ("/definitely/missing.pt", "not found")])
def test_utmos_unconfigured_is_unavailable(speech, checkpoint, words):
    r = build_metric("utmos", checkpoint=checkpoint).score_corpus([speech])
    assert r.value is None and words in r.reason and words in r.per_utterance[0].reason


def test_utmos_wrong_file_is_a_clear_error(tmp_path, speech):
    torch.save({"something": torch.zeros(1)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="SpeechMOS"):
        build_metric("utmos", checkpoint=tmp_path / "x.pt").score(speech)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        build_metric("utmos", checkpoint=tmp_path / "junk.pt").score(speech)
