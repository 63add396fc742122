"""CodecSolver with a tiny real FACodec: losses, warm-up, weight-key checks, samples, resume, export."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ns3.codec import load_codec
from ns3.codec.discriminators import CodecDiscriminator
from ns3.codec.hparams import FACodecHParams
from ns3.codec.model import FACodec
from ns3.data.batch import CodecBatch
from ns3.losses import MelScale, MultiScaleMelLoss
from ns3.solvers.base import LAST, replay_epochs
from ns3.solvers.codec import (
    ADVERSARIAL_KEYS,
    PAPER_LOSS_WEIGHTS,
    CodecSolver,
    available_loss_keys,
    paper_loss_weights,
    spectrogram_figure,
    supervision_losses,
)

B, FRAMES, HOP = 2, 8, 200
T = FRAMES * HOP
TINY = dict(encoder_channels=4, latent_dim=16, decoder_channels=32, ffn_channels=32, timbre_layers=1,
            attention_heads=2, codebook_size=32, num_phones=10, num_speakers=4)


def _batch(seed: int) -> CodecBatch:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T) / 16000
    f = 150 + 100 * torch.rand(B, 1, generator=g)
    wav = 0.3 * torch.sin(2 * torch.pi * f * t) + 0.01 * torch.randn(B, T, generator=g)
    mask = torch.ones(B, FRAMES, dtype=torch.bool)
    mask[1, -2:] = False
    return CodecBatch(wav=wav, phone_ids=torch.randint(0, 10, (B, FRAMES), generator=g),
                      f0=torch.randn(B, FRAMES, generator=g), uv=(torch.rand(B, FRAMES, generator=g) > 0.3).float(),
                      speaker_ids=torch.tensor([0, 3]), frame_mask=mask,
                      f0_stats=torch.tensor([[4.6, 0.1], [5.0, 0.2]]))


def _solver(tmp_path, **kwargs) -> CodecSolver:
    torch.manual_seed(0)
    hp = FACodecHParams.mini(**TINY)
    disc = CodecDiscriminator(periods=(2, 3), n_ffts=(256, 128), mpd_channels=4, mpd_max_channels=8, mpd_layers=2,
                              stft_channels=4, stft_max_channels=8)
    kwargs.setdefault("batches", replay_epochs(lambda epoch: [_batch(epoch * 10 + i) for i in range(2)]))
    return CodecSolver(generator=FACodec(hp), discriminator=disc, out_dir=tmp_path, progress=False,
                       mel_loss=MultiScaleMelLoss([MelScale(256, 64, 32), MelScale(128, 32, 16)]), **kwargs)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_warm_up_then_full_gan_step(tmp_path):
    solver = _solver(tmp_path, max_steps=2, adv_start_step=1)
    d_before = _params(solver.unwrapped("discriminator"))
    g_before = _params(solver.unwrapped("generator"))
    m1 = solver.train_step(_batch(0))
    solver.step += 1
    assert not any(k.startswith("disc/") for k in m1) and not set(ADVERSARIAL_KEYS) & set(m1)
    assert all(torch.equal(a, b) for a, b in zip(d_before, _params(solver.unwrapped("discriminator"))))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, _params(solver.unwrapped("generator"))))
    m2 = solver.train_step(_batch(1))
    expected = set(paper_loss_weights(solver.unwrapped("generator").hp)) | {"disc/loss", "codec/total"}
    assert expected <= set(m2)
    assert all(np.isfinite(float(v)) for v in m2.values())
    assert any(not torch.equal(a, b) for a, b in zip(d_before, _params(solver.unwrapped("discriminator"))))
    total = sum(PAPER_LOSS_WEIGHTS[k] * float(m2[k]) for k in paper_loss_weights(solver.unwrapped("generator").hp))
    assert float(m2["codec/total"]) == pytest.approx(total, rel=1e-5)


def test_paper_weights_cover_every_loss_of_the_default_configuration():
    # excitation (DAC decoder only) and the STFT loss (iSTFT decoder only) exclude each other: together they cover it
    every = (available_loss_keys(FACodecHParams.mini(timbre_speaker=True, excitation=True))
             | available_loss_keys(FACodecHParams.mini(decoder="istft")))
    assert every == set(PAPER_LOSS_WEIGHTS)
    # the release: no timbre speaker head, no pitch excitation, the DAC decoder
    assert available_loss_keys(FACodecHParams.mini()) == (
        set(PAPER_LOSS_WEIGHTS) - {"codec/speaker", "codec/register", "codec/stft"})
    ablation = FACodecHParams.mini(heads=False)
    assert set(paper_loss_weights(ablation)) == {"codec/rec", "codec/adv", "codec/feat", "codec/codebook", "codec/commit"}
    no_detail = FACodecHParams.mini(use_detail=False)
    assert "codec/grl_f0" not in paper_loss_weights(no_detail) and "codec/grl_speaker" in paper_loss_weights(no_detail)


def test_unknown_loss_weight_fails_at_construction(tmp_path):
    with pytest.raises(ValueError, match=r"codec/mel"):
        _solver(tmp_path, max_steps=1, loss_weights={"codec/rec": 10.0, "codec/mel": 1.0})


def test_supervision_losses_ignore_padded_frames():
    torch.manual_seed(0)
    model = FACodec(FACodecHParams.mini(**TINY)).eval()
    batch = _batch(0)
    with torch.no_grad():
        out = model(batch.wav)
        base = supervision_losses(out, batch)
        changed = CodecBatch(**{**batch.__dict__})
        changed.phone_ids = batch.phone_ids.clone()
        changed.f0 = batch.f0.clone()
        changed.phone_ids[1, -2:] = 0
        changed.f0[1, -2:] = 99.0
        again = supervision_losses(out, changed)
    assert set(base) == {"codec/phone", "codec/f0", "codec/uv", "codec/grl_phone", "codec/grl_f0", "codec/grl_uv",
                         "codec/grl_speaker"}
    for k in base:
        assert torch.equal(base[k], again[k]), k


def test_run_resume_evaluate_and_export(tmp_path):
    full = _solver(tmp_path / "a", max_steps=3, adv_start_step=1, ckpt_every=100).run()
    assert full.stopped_reason == "max_steps" and full.steps == 3
    _solver(tmp_path / "b", max_steps=2, adv_start_step=1, ckpt_every=100).run()
    resumed = _solver(tmp_path / "b", max_steps=3, adv_start_step=1, ckpt_every=100)
    resumed.run()
    a = torch.load(tmp_path / "a" / LAST, weights_only=True)
    b = torch.load(tmp_path / "b" / LAST, weights_only=True)
    for name in ("generator", "discriminator"):
        for k, v in a["models"][name].items():
            assert torch.equal(v, b["models"][name][k]), f"{name}.{k}"
    metrics = resumed.evaluate(3)
    assert np.isfinite(metrics["eval/codec_rec"])
    assert resumed.unwrapped("generator").training  # evaluation restored train mode
    path = resumed.export(tmp_path / "codec.pt")
    loaded = load_codec(path)
    for k, v in resumed.unwrapped("generator").state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_spectrogram_figure_has_original_and_reconstruction_per_clip():
    wav = np.random.default_rng(0).normal(size=(2, 1600)).astype(np.float32)
    fig = spectrogram_figure(wav, wav * 0.5, step=7)
    assert len(fig.axes) == 4 and "step 7" in fig.axes[0].get_title()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_timbre_speaker_head_trains_the_timbre_encoder_towards_the_speaker():
    # The paper's h_t speaker-ID loss: minimising it must move the timbre encoder (no reversal here),
    # while the codes' speaker head stays reversed.
    torch.manual_seed(0)
    model = FACodec(FACodecHParams.mini(**TINY, timbre_speaker=True)).eval()  # eval: no dropout noise
    batch = _batch(0)
    out = model(batch.wav, phone_ids=batch.phone_ids)
    assert out.speaker_logits.shape == (batch.wav.shape[0], model.hp.num_speakers)
    losses = supervision_losses(out, batch)
    losses["codec/speaker"].backward()
    timbre_grads = [p.grad for p in model.timbre_encoder.parameters() if p.grad is not None]
    assert timbre_grads and any(float(g.abs().sum()) > 0 for g in timbre_grads)
    assert all(p.grad is None for p in model.decoder.parameters())  # only the timbre path is involved
    # a step against the loss lowers it (the head is an ordinary classifier, not a reversed one)
    opt = torch.optim.SGD([p for p in model.parameters() if p.grad is not None], lr=0.5)
    before = float(losses["codec/speaker"])
    opt.step()
    after = float(supervision_losses(model(batch.wav, phone_ids=batch.phone_ids), batch)["codec/speaker"])
    assert after < before


def test_adv_start_none_never_trains_the_discriminator(tmp_path):
    solver = _solver(tmp_path, max_steps=3, adv_start_step=None)
    d_before = _params(solver.unwrapped("discriminator"))
    for i in range(3):
        metrics = solver.train_step(_batch(i))
        solver.step += 1
        assert not any(k.startswith("disc/") for k in metrics) and not set(ADVERSARIAL_KEYS) & set(metrics)
    assert all(torch.equal(a, b) for a, b in zip(d_before, _params(solver.unwrapped("discriminator"))))


def test_the_stft_loss_is_computed_for_the_istft_decoder_only(tmp_path):
    torch.manual_seed(0)
    disc = CodecDiscriminator(periods=(2,), n_ffts=(128,), mpd_channels=4, mpd_max_channels=8, mpd_layers=2,
                              stft_channels=4, stft_max_channels=8)
    batches = replay_epochs(lambda epoch: [_batch(epoch)])
    istft = FACodec(FACodecHParams.mini(**TINY, decoder="istft", istft_channels=16, istft_layers=1))
    solver = CodecSolver(generator=istft, discriminator=disc, out_dir=tmp_path / "i", progress=False,
                         batches=batches, max_steps=1, adv_start_step=None,
                         mel_loss=MultiScaleMelLoss([MelScale(256, 64, 32)]))
    metrics = solver.train_step(_batch(0))
    assert float(metrics["codec/stft"]) > 0
    dac = _solver(tmp_path / "d", max_steps=1, adv_start_step=None)
    assert dac.stft_loss is None and "codec/stft" not in dac.train_step(_batch(0))
    with pytest.raises(ValueError, match=r"codec/stft"):
        _solver(tmp_path / "x", max_steps=1, loss_weights={"codec/rec": 10.0, "codec/stft": 1.0})
