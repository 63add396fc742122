"""The "-factorization" codec (paper Table 10): one plain residual VQ over every codebook, no timbre branch, no
heads; and the diffusion over its levels prompts them as one attribute."""
import pytest
import torch

from ns3.builders import codec_hparams, codec_loss_weights, diffusion_hparams, diffusion_levels
from ns3.codec import FACodec, FACodecHParams
from ns3.codec.official import OfficialCheckpointError, export_official, infer_hparams
from ns3.config import load_params
from tests.helpers import PROJECT

TINY = dict(encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4, ffn_channels=32,
            timbre_layers=1, anti_alias=False, decoder="istft", istft_channels=16, istft_layers=1, normalized_codes=True)


def _params(factorized: bool):
    return load_params(PROJECT / "params.yaml", overrides={"codec.model.factorized": factorized})


def test_the_knob_builds_a_codec_without_timbre_branch_or_heads():
    p = _params(False)
    hp = codec_hparams(p.codec.model, num_phones=10, num_speakers=4)
    model = FACodec(hp)
    assert not hp.factorized and model.heads is None and model.timbre_encoder is None
    assert hp.codebooks == {"prosody": 1, "content": 2, "detail": 3}  # six levels, as the factorized codec
    assert hp.detail_dropout == 0.0 and not hp.detach_prosody_content  # the decoder always gets every level
    assert set(codec_loss_weights(p.codec.train.loss_weights, hp)) <= {
        "codec/rec", "codec/codebook", "codec/commit", "codec/stft", "codec/adv", "codec/feat"}
    factorized = FACodec(codec_hparams(_params(True).codec.model, num_phones=10, num_speakers=4))
    assert model.num_parameters() < factorized.num_parameters()


def test_hparams_refuse_what_the_plain_codec_excludes():
    with pytest.raises(ValueError, match="factorized=False.*heads"):
        FACodecHParams.mini(factorized=False)
    hp = FACodecHParams.unfactorized(FACodecHParams.mini(**TINY))
    assert FACodecHParams.from_dict(hp.to_dict()) == hp


def test_levels_quantize_one_residual_chain_and_the_timbre_is_zero():
    torch.manual_seed(0)
    model = FACodec(FACodecHParams.unfactorized(FACodecHParams.mini(**TINY))).eval()
    seen = {}
    for name in ("prosody", "content", "detail"):
        getattr(model.quantizer, name).register_forward_hook(
            lambda m, args, out, name=name: seen.__setitem__(name, (args[0], out.quantized)))
    wav = 0.1 * torch.randn(2, 3000)
    out = model(wav)
    latent = out.latent
    (p_in, p_q), (c_in, c_q), (d_in, _) = seen["prosody"], seen["content"], seen["detail"]
    torch.testing.assert_close(p_in, latent)
    torch.testing.assert_close(c_in, latent - p_q)  # a factorized codec's content reads the latent itself
    torch.testing.assert_close(d_in, latent - p_q - c_q)
    assert torch.count_nonzero(out.timbre) == 0
    # The decoder gets the sum of all six levels: decoding the codes reproduces the forward pass.
    enc = model.encode(wav)
    assert torch.count_nonzero(enc.timbre) == 0
    torch.testing.assert_close(model.decode(enc.codes, enc.timbre), out.wav_hat, atol=1e-5, rtol=1e-4)


def test_gradient_reaches_the_encoder_through_the_cascade():
    torch.manual_seed(0)
    model = FACodec(FACodecHParams.unfactorized(FACodecHParams.mini(**TINY))).train()
    out = model(0.1 * torch.randn(2, 3000))
    out.wav_hat.pow(2).mean().backward()
    for name in ("prosody", "content", "detail"):
        grads = [p.grad for p in getattr(model.quantizer, name).parameters() if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_no_published_layout_for_the_plain_codec():
    model = FACodec(FACodecHParams.unfactorized(FACodecHParams.mini(**{**TINY, "decoder": "dac"})))
    with pytest.raises(ValueError, match="-factorization"):
        export_official(model)
    with pytest.raises(OfficialCheckpointError, match="factorized=False"):
        infer_hparams({}, {}, None, factorized=False)


def test_diffusion_over_the_plain_codes_prompts_every_level_together():
    cfg = _params(False).diffusion.model
    levels = diffusion_levels(6, factorized=False)
    assert levels == ("q1", "q2", "q3", "q4", "q5", "q6")
    hp = diffusion_hparams(cfg, num_phones=10, codebook_size=64, levels=levels, max_duration=8)
    assert all(hp.prompt_levels(q) == tuple(range(6)) for q in range(6))
    factorized = diffusion_hparams(cfg, num_phones=10, codebook_size=64, levels=diffusion_levels(6, True), max_duration=8)
    assert factorized.levels == ("p", "c1", "c2", "d1", "d2", "d3") and factorized.prompt_levels(0) == (0,)
    assert factorized.prompt_levels(4) == (3, 4, 5)
    assert diffusion_levels(3, True) == ("p", "c1", "c2")
