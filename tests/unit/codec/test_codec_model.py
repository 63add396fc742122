"""FACodec end to end on the tiny CPU configuration: shapes, framing, dropout, variants, independence."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from ns3.codec import FACodec, FACodecHParams

TINY = FACodecHParams.mini(
    encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4,
    ffn_channels=32, timbre_layers=1, prosody_encoder_layers=1, num_phones=7, num_speakers=5,
)


def make(**kw) -> FACodec:
    torch.manual_seed(0)
    return FACodec(dataclasses.replace(TINY, **kw))


@pytest.fixture(scope="module")
def model():
    return make().eval()


@pytest.mark.parametrize("n", [1, 199, 200, 201, 3000, 3333])
def test_shapes_and_frame_counts(model, n):
    wav = 0.1 * torch.randn(2, n)
    out = model(wav)
    f = -(-n // 200)
    assert out.wav_hat.shape == (2, n)
    assert out.codes.prosody.shape == (2, 1, f) and out.codes.content.shape == (2, 2, f) and out.codes.detail.shape == (2, 3, f)
    assert all(c.dtype == torch.long for c in (out.codes.prosody, out.codes.content, out.codes.detail))
    assert out.timbre.shape == (2, 32)
    assert {k: v.shape for k, v in out.factors.items()} == {k: (2, 32, f) for k in ("prosody", "content", "detail")}
    assert out.codebook_loss.dim() == 0 and out.commitment_loss.dim() == 0
    assert out.phone_logits.shape == (2, f, 7) and out.grl_phone_logits.shape == (2, f, 7)
    assert out.f0_pred.shape == out.uv_logits.shape == out.grl_f0_pred.shape == (2, f)
    assert out.grl_speaker_logits.shape == (2, 5)
    enc = model.encode(wav)
    assert model.decode(enc.codes, enc.timbre).shape == (2, f * 200)
    assert set(out.metrics()) == {"codec/codebook_loss", "codec/commitment_loss"}


def test_release_framing_without_padding():
    hp = dataclasses.replace(TINY, pad_input=False)
    assert [hp.frames_for(n) for n in (16000, 16123, 16180, 16199, 160000)] == [80, 80, 81, 81, 800]
    m = FACodec(hp).eval()
    out = m(0.1 * torch.randn(1, 16180))
    assert out.num_frames == 81 and out.wav_hat.shape == (1, 16180)


def test_batch_independence(model):
    wav = 0.1 * torch.randn(3, 2400)
    full = model(wav)
    alone = model(wav[1:2])
    assert torch.equal(full.codes.stacked()[1:2], alone.codes.stacked())
    torch.testing.assert_close(full.timbre[1:2], alone.timbre, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(full.wav_hat[1:2], alone.wav_hat, atol=1e-5, rtol=1e-5)


def test_lengths_mask_pooling_and_losses(model):
    wav = 0.1 * torch.randn(2, 2000)
    wav[1, 1000:] = 0.0
    out = model(wav, lengths=torch.tensor([2000, 1000]))
    assert out.frame_mask.sum(dim=1).tolist() == [10, 5]


def test_phone_ids_must_match_the_grid(model):
    wav = 0.1 * torch.randn(1, 1000)
    model(wav, phone_ids=torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="phone_ids"):
        model(wav, phone_ids=torch.zeros(1, 4, dtype=torch.long))


def test_detail_dropout_train_vs_eval():
    m = make(detail_dropout=1.0)
    wav = 0.1 * torch.randn(4, 800)
    m.train()
    assert m(wav).detail_kept.sum() == 0
    m.eval()
    assert m(wav).detail_kept.sum() == 4
    m0 = make(detail_dropout=0.0).train()
    assert m0(wav).detail_kept.sum() == 4


def test_dropped_detail_does_not_reach_the_decoder():
    m = make(detail_dropout=1.0, transformer_dropout=0.0).train()
    wav = 0.1 * torch.randn(1, 800)
    out = m(wav)
    m.eval()
    enc = m.encode(wav)
    torch.testing.assert_close(out.wav_hat, m.decode(enc.codes, enc.timbre, use_detail=False)[:, :800], atol=1e-5, rtol=1e-5)


def test_gradients_reach_every_trainable_part():
    m = make(transformer_dropout=0.0, detail_dropout=0.0).train()
    out = m(0.1 * torch.randn(2, 1000))
    loss = (out.wav_hat.pow(2).mean() + out.codebook_loss + out.commitment_loss + out.phone_logits.mean()
            + out.f0_pred.mean() + out.uv_logits.mean() + out.grl_phone_logits.mean() + out.grl_f0_pred.mean()
            + out.grl_uv_logits.mean() + out.grl_speaker_logits.mean())
    loss.backward()
    dead = [n for n, p in m.named_parameters() if p.grad is None and not n.startswith("redecoder")]
    assert dead == []


def test_release_detaches_prosody_and_content_from_reconstruction():
    m = make(heads=False, detail_dropout=0.0).train()
    out = m(0.1 * torch.randn(1, 600))
    out.wav_hat.sum().backward()
    assert all(p.grad is None for p in m.quantizer.prosody.parameters())
    m2 = make(heads=False, detach_prosody_content=False).train()
    m2(0.1 * torch.randn(1, 600)).wav_hat.sum().backward()
    assert any(p.grad is not None for p in m2.quantizer.prosody.parameters())


def test_v1_vs_v2_prosody_input():
    wav = 0.1 * torch.randn(1, 1600)
    v1, v2 = make().eval(), make(prosody_input="v2").eval()
    assert not hasattr(v1, "prosody_encoder") and hasattr(v2, "prosody_encoder")
    o2 = v2(wav)
    assert o2.codes.prosody.shape == (1, 1, 8)
    # V2 prosody depends on the mel bins only: editing the encoder leaves its prosody codes unchanged
    with torch.no_grad():
        v2.encoder.block[0].bias.add_(1.0)
    assert torch.equal(v2(wav).codes.prosody, o2.codes.prosody)
    o1 = v1(wav)  # V1 prosody reads the encoder output itself
    assert torch.equal(v1.quantizer.prosody(o1.latent).codes, o1.codes.prosody)


@pytest.mark.parametrize("kw", [dict(information_bottleneck=False), dict(use_detail=False), dict(heads=False),
                                dict(grl_prosody_phone=True, grl_content_f0=True), dict(positional="time")])
def test_ablation_hparams_build_and_run(kw):
    m = make(**kw).train()
    out = m(0.1 * torch.randn(2, 1000))
    out.wav_hat.mean().backward()
    if kw.get("use_detail") is False:
        assert out.codes.detail.shape == (2, 0, 5) and "detail" not in out.factors
        assert out.grl_phone_logits is None
    if kw.get("heads") is False:
        assert out.phone_logits is None and out.grl_speaker_logits is None
    if kw.get("information_bottleneck") is False:
        assert m.quantizer.content.layers[0].codebook.weight.shape == (64, 32)
    if kw.get("grl_prosody_phone"):
        assert out.grl_prosody_phone_logits.shape == (2, 5, 7) and out.grl_content_f0_pred.shape == (2, 5)


def test_convert_voice_uses_prompt_timbre(model):
    g = torch.Generator().manual_seed(1)
    src, p1, p2 = (0.1 * torch.randn(1, n, generator=g) for n in (1200, 1600, 1600))
    a, b = model.convert_voice(src, p1), model.convert_voice(src, p2)
    assert a.shape == (1, 1200) and not torch.allclose(a, b)
    enc = model.encode(src)
    torch.testing.assert_close(a, model.decode(enc.codes, model.encode(p1).timbre, use_detail=False)[:, :1200])
    torch.testing.assert_close(a, model.convert_codes(enc.codes, model.encode(p1).timbre)[:, :1200])  # pre-encoded


def test_decode_rejects_bad_codes(model):
    enc = model.encode(0.1 * torch.randn(1, 400))
    enc.codes.content[0, 0, 0] = 64
    with pytest.raises(ValueError, match="content codes outside"):
        model.decode(enc.codes, enc.timbre)


def test_bad_hparams_and_input_are_rejected():
    with pytest.raises(ValueError, match="prosody_input"):
        FACodecHParams.mini(prosody_input="v3")
    with pytest.raises(ValueError, match="unknown FACodecHParams fields"):
        FACodecHParams.from_dict({"latent_dimm": 3})
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        make()(torch.randn(2, 2, 100))


def test_mini_is_small_enough_for_cpu_training():
    m = FACodec(FACodecHParams.mini())
    assert m.num_parameters() <= 1_500_000
    assert FACodecHParams.paper().hop_length == 200 and FACodecHParams.paper().frame_rate == 80
