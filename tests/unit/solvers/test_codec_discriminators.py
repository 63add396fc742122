"""Multi-period + multi-scale STFT discriminator: output structure and shapes."""
from __future__ import annotations

import pytest
import torch

from ns3.codec.discriminators import CodecDiscriminator, DiscriminatorOutput


@pytest.fixture(scope="module")
def disc():
    torch.manual_seed(0)
    return CodecDiscriminator(periods=(2, 3, 5, 7, 11), n_ffts=(512, 256), mpd_channels=4, mpd_max_channels=16,
                              mpd_layers=3, stft_channels=4, stft_max_channels=8)


@pytest.mark.parametrize("length", [3200, 3217])  # the second is not a multiple of any period
def test_one_logit_map_and_feature_list_per_sub_discriminator(disc, length):
    out = disc(torch.randn(3, length))
    assert isinstance(out, DiscriminatorOutput)
    assert out.names == ["mpd/p2", "mpd/p3", "mpd/p5", "mpd/p7", "mpd/p11", "stft/n512", "stft/n256"]
    assert len(out.logits) == len(out.features) == 7
    for name, logit, feats in zip(out.names, out.logits, out.features):
        assert logit.shape[0] == 3 and torch.isfinite(logit).all()
        assert len(feats) == (5 if name.startswith("mpd") else 6)  # every conv layer + the output map
        assert all(f.shape[0] == 3 for f in feats)
    # period view: [B, T'/p...] flattened; STFT view: [B, 1, frames, bins / 2^3]
    assert out.logits[5].shape[:3] == (3, 1, length // 128 + 1)


def test_split_undoes_batch_concatenation(disc):
    real, fake = torch.randn(2, 1600), torch.randn(2, 1600)
    joint = disc(torch.cat([real, fake])).split([2, 2])
    alone = disc(fake)
    for a, b in zip(joint[1].logits, alone.logits):
        assert torch.allclose(a, b, atol=1e-5)
    assert len(joint[0].features[0]) == len(alone.features[0])


def test_gradients_reach_the_waveform_and_every_parameter(disc):
    wav = torch.randn(2, 1600, requires_grad=True)
    out = disc(wav)
    sum(l.mean() for l in out.logits).backward()
    assert wav.grad.abs().sum() > 0
    assert all(p.grad is not None for p in disc.parameters())
    disc.zero_grad()


def test_mini_is_much_smaller_than_paper_and_bad_input_is_rejected():
    mini = CodecDiscriminator.mini()
    assert sum(p.numel() for p in mini.parameters()) < 1_000_000
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        mini(torch.randn(1, 1, 1600))
