"""Pitch excitation: the harmonic source, F0 from prosody codes + timbre register, and the excited decoder."""
import math

import numpy as np
import pytest
import torch

from ns3.codec import FACodec, FACodecHParams
from ns3.codec.decoder import WaveGenerator
from ns3.codec.excitation import HarmonicExcitation, RegisterHead
from ns3.data.pitch import denormalise_log_f0
from ns3.solvers.codec import available_loss_keys

HOP, SR = 200, 16_000


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


def test_source_is_a_continuous_sine_at_the_frame_f0():
    src = HarmonicExcitation(HOP, SR, harmonics=4, noise_std=0.0).eval()
    with torch.no_grad():  # pass the fundamental only, so the spectrum peak is F0
        src.merge.weight.copy_(torch.tensor([[5.0, 0.0, 0.0, 0.0]]))
        src.merge.bias.zero_()
    f0 = torch.full((1, 40), 230.0)
    f0[0, 20:] = 0.0  # second half unvoiced
    with torch.no_grad():
        e = src(f0)[0, 0].numpy()
    assert e.shape == (40 * HOP,)
    voiced, unvoiced = e[: 20 * HOP], e[20 * HOP:]
    assert _peak_hz(voiced) == pytest.approx(230.0, abs=SR / len(voiced))
    # no jumps at frame boundaries: the phase is integrated per sample, not restarted per frame
    assert np.abs(np.diff(voiced)).max() < 2 * math.pi * 230.0 / SR * 0.5 * 1.05  # slope of 0.5 sin(2 pi f t)
    at_f0 = lambda x: np.abs(np.fft.rfft(x))[round(230.0 * len(x) / SR)]  # noqa: E731
    assert at_f0(unvoiced) < 0.1 * at_f0(voiced) and unvoiced.std() > 0.01  # noise, no sine
    assert torch.equal(src(f0), src(f0))  # eval: deterministic


def test_harmonics_above_nyquist_are_silent():
    src = HarmonicExcitation(HOP, SR, harmonics=8).eval()
    with torch.no_grad():
        src.merge.weight.copy_(torch.tensor([[0.0] * 7 + [5.0]]))  # only the 8th harmonic
        src.merge.bias.zero_()
        src.noise_std = 0.0
    low = src(torch.full((1, 20), 500.0))[0, 0]  # 8 x 500 = 4 kHz: present
    high = src(torch.full((1, 20), 1500.0))[0, 0]  # 8 x 1500 = 12 kHz > 8 kHz: absent
    assert low.abs().max() > 0.3 and high.abs().max() < 1e-6


def test_denormalise_log_f0_undoes_the_speaker_normalisation():
    hz = torch.tensor([[110.0, 0.0, 150.0]])
    voiced = hz > 0
    register = torch.tensor([[math.log(120.0), 0.2]])
    z = torch.where(voiced, (torch.log(hz.clamp_min(1.0)) - register[:, :1]) / register[:, 1:], torch.zeros_like(hz))
    assert torch.allclose(denormalise_log_f0(z, voiced, register), hz, rtol=1e-5)


def test_register_head_starts_at_its_prior_and_learns():
    head = RegisterHead(8)
    timbre = torch.randn(3, 8)
    out = head(timbre)
    assert torch.allclose(out[:, 0], torch.full((3,), RegisterHead.PRIOR_MEAN))
    assert torch.allclose(out[:, 1], torch.full((3,), RegisterHead.PRIOR_STD))
    (out - torch.tensor([5.0, 0.3])).abs().mean().backward()
    assert head.proj.weight.grad.abs().sum() > 0


def test_excited_decoder_needs_f0_and_follows_it():
    torch.manual_seed(0)
    g = WaveGenerator(16, 32, (5, 5, 4, 2), anti_alias=False, excitation=True).eval()
    x = torch.randn(1, 16, 10)
    with pytest.raises(ValueError, match="f0"):
        g(x)
    a, b = g(x, torch.full((1, 10), 100.0)), g(x, torch.full((1, 10), 200.0))
    assert a.shape == (1, 1, 10 * HOP) and not torch.allclose(a, b)
    odd = WaveGenerator(16, 32, (5, 3), anti_alias=False, excitation=True)  # source convs stay sample-exact
    assert odd(x, torch.full((1, 10), 100.0)).shape == (1, 1, 150)
    plain = WaveGenerator(16, 32, (5, 5, 4, 2), anti_alias=False)
    assert set(plain.state_dict()) < set(g.state_dict())  # off: exactly the release's keys


def _excited_codec() -> FACodec:
    torch.manual_seed(0)
    return FACodec(FACodecHParams.mini(anti_alias=False, excitation=True, num_phones=10, num_speakers=4))


def test_codec_decodes_with_the_f0_it_predicts_and_vc_takes_the_prompt_register():
    model = _excited_codec().eval()
    wav = 0.1 * torch.randn(1, 4000)
    enc = model.encode(wav)
    prosody = model.quantizer.embed(enc.codes)["prosody"]
    with torch.no_grad():
        model.register_head.proj.bias.copy_(torch.tensor([0.0, 0.0]))
        f0_a = model.predict_f0(prosody, enc.timbre)
        model.register_head.proj.bias.copy_(torch.tensor([math.log(2.0), 0.0]))  # an octave up
        f0_b = model.predict_f0(prosody, enc.timbre)
    voiced = f0_a > 0
    assert torch.equal(voiced, f0_b > 0)
    assert torch.allclose(f0_b[voiced], 2 * f0_a[voiced], rtol=1e-4)
    # decode() is driven by that prediction, so the register changes the waveform
    y_b = model.decode(enc.codes, enc.timbre)
    with torch.no_grad():
        model.register_head.proj.bias.zero_()
    assert voiced.any() and not torch.allclose(y_b, model.decode(enc.codes, enc.timbre))


def test_training_forward_is_teacher_forced_and_trains_the_register():
    model = _excited_codec().train()
    assert "codec/register" in available_loss_keys(model.hp)
    wav = 0.1 * torch.randn(2, 4000)
    f0 = torch.full((2, 20), 120.0)
    torch.manual_seed(1)
    a = model(wav, f0=f0)
    torch.manual_seed(1)
    b = model(wav, f0=2 * f0)
    assert not torch.allclose(a.wav_hat, b.wav_hat)  # the given F0 drives the decoder
    assert a.register.shape == (2, 2)
    (a.register - torch.tensor([4.0, 0.1])).abs().mean().backward()
    assert model.register_head.proj.weight.grad.abs().sum() > 0
    assert model.timbre_encoder.parameters().__next__().grad is not None  # the register shapes the timbre


def test_excitation_needs_the_heads():
    with pytest.raises(ValueError, match="excitation=True needs heads"):
        FACodecHParams.mini(excitation=True, heads=False)
    assert "codec/register" not in available_loss_keys(FACodecHParams.mini())
