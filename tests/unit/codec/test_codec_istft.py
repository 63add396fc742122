"""The frame-rate iSTFT decoder (codec.model.decoder: istft): framing, batch independence, timbre, gradients,
and that the release's weights stay with the DAC decoder."""
from __future__ import annotations

import pytest
import torch

from ns3.codec import FACodec, FACodecHParams
from ns3.codec.istft import ISTFTGenerator
from ns3.codec.official import OfficialCheckpointError, export_official, infer_hparams
from ns3.config import ConfigError, load_params
from tests.helpers import PROJECT

HOP = 200


def tiny(**kw) -> FACodecHParams:
    base = dict(decoder="istft", istft_channels=32, istft_layers=2, num_phones=12, num_speakers=4, heads=False,
                detach_prosody_content=False)
    return FACodecHParams.mini(**{**base, **kw})


@pytest.mark.parametrize("frames", [7, 8, 1])
def test_output_is_exactly_frames_times_hop(frames):
    torch.manual_seed(0)
    gen = ISTFTGenerator(16, 24, 2, HOP, 800, timbre_dim=16).eval()
    wav = gen(torch.randn(3, 16, frames), torch.randn(3, 16))
    assert wav.shape == (3, 1, frames * HOP)
    assert torch.isfinite(wav).all() and wav.abs().max() <= 1.0  # eval mode: a valid PCM signal


@pytest.mark.parametrize("samples", [16_000, 16_137, 199])
def test_codec_reconstruction_has_the_input_length(samples):
    torch.manual_seed(0)
    model = FACodec(tiny()).eval()
    with torch.no_grad():
        out = model(torch.randn(2, samples) * 0.1)
    assert out.wav_hat.shape == (2, samples)


def test_an_utterance_decodes_the_same_alone_or_in_a_batch():
    torch.manual_seed(0)
    gen = ISTFTGenerator(16, 24, 3, HOP, 800, timbre_dim=16).eval()
    x, timbre = torch.randn(4, 16, 9), torch.randn(4, 16)
    with torch.no_grad():
        batch = gen(x, timbre)
        alone = torch.cat([gen(x[i:i + 1], timbre[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(batch, alone, atol=1e-5, rtol=1e-4)


def test_the_conditional_layer_norms_use_the_timbre():
    torch.manual_seed(0)
    gen = ISTFTGenerator(16, 24, 2, HOP, 800, timbre_dim=10).train()
    x = torch.randn(2, 16, 6)
    t1, t2 = torch.randn(2, 10), torch.randn(2, 10)
    assert not torch.allclose(gen(x, t1), gen(x, t2))  # another timbre, another waveform from the same frames
    timbre = t1.clone().requires_grad_(True)
    gen(x, timbre).pow(2).mean().backward()
    assert timbre.grad is not None and timbre.grad.abs().sum() > 0
    assert all(b.norm.linear.weight.grad.abs().sum() > 0 for b in gen.blocks)


def test_a_gradient_reaches_the_quantizer_and_encoder_through_the_head():
    torch.manual_seed(0)
    model = FACodec(tiny()).train()
    out = model(torch.randn(2, 4000) * 0.1)
    (out.wav_hat - torch.randn(2, 4000) * 0.1).abs().mean().backward()
    quantizer = {n: p.grad for n, p in model.quantizer.named_parameters() if p.requires_grad}
    assert any(g is not None and g.abs().sum() > 0 for g in quantizer.values()), sorted(quantizer)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters() if p.requires_grad)
    assert model.decoder.head.weight.grad.abs().sum() > 0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="decoder='wavenet'"):
        tiny(decoder="wavenet")
    with pytest.raises(ValueError, match="excitation=True needs decoder='dac'"):
        tiny(excitation=True, heads=True)
    with pytest.raises(ValueError, match="istft_n_fft=100"):
        tiny(istft_n_fft=100)


def test_the_release_weights_stay_with_the_dac_decoder():
    with pytest.raises(OfficialCheckpointError, match="DAC-style"):
        infer_hparams({}, {}, None, decoder="istft")
    with pytest.raises(ValueError, match="no published layout"):
        export_official(FACodec(tiny()))
    with pytest.raises(ConfigError, match=r"codec\.model\.excitation needs codec\.model\.decoder: dac"):
        load_params(PROJECT / "params.yaml", overrides={"codec.model.decoder": "istft", "codec.model.excitation": True})
