"""Phone-level prosody codes (mean-pooled prosody latent, quantized by the codec's own prosody codebook) and
``encode_with_prosody_latent`` (the latent they pool; each item of a padded batch as if encoded alone)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ns3.codec import FACodec, FACodecHParams

TINY = FACodecHParams.mini(
    encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4, ffn_channels=32,
    timbre_layers=1, prosody_encoder_layers=1, heads=False, anti_alias=False, decoder="istft", istft_channels=16,
    istft_layers=1,
)


def make(**kw) -> FACodec:
    torch.manual_seed(0)
    return FACodec(dataclasses.replace(TINY, **kw)).eval()


@pytest.fixture(scope="module", params=[False, True], ids=["raw", "normalized"])
def model(request):
    return make(normalized_codes=request.param)


def _frame_codes(model: FACodec, latent: torch.Tensor) -> torch.Tensor:
    """What the first prosody codebook picks per frame. latent [B, D, F] -> [B, F]"""
    return model.quantizer.prosody.layers[0](latent).codes[:, 0]


def test_a_latent_constant_per_phone_quantizes_to_that_phones_frame_codes(model):
    torch.manual_seed(1)
    durations = torch.tensor([[3, 1, 5, 2, 4]])
    vectors = torch.randn(1, 32, 5)
    latent = torch.repeat_interleave(vectors, durations[0], dim=2)  # [1, D, 15]
    codes = model.phone_prosody_codes(latent, durations, torch.ones(1, 5, dtype=torch.bool))
    frames = _frame_codes(model, latent)
    starts = torch.cat([torch.zeros(1, dtype=torch.long), durations[0].cumsum(0)[:-1]])
    assert codes.shape == (1, 5) and codes.dtype == torch.long
    assert torch.equal(codes[0], frames[0, starts])
    assert len(set(codes[0].tolist())) > 1  # distinct phones, distinct codes: the check can fail


def test_pooling_is_the_mean_over_each_phones_frames(model):
    torch.manual_seed(2)
    latent = torch.randn(1, 32, 6)
    durations = torch.tensor([[2, 4]])
    codes = model.phone_prosody_codes(latent, durations, torch.ones(1, 2, dtype=torch.bool))
    means = torch.stack([latent[0, :, :2].mean(-1), latent[0, :, 2:].mean(-1)], dim=-1)[None]  # [1, D, 2]
    assert torch.equal(codes, _frame_codes(model, means))
    # Not the first or the last frame of a phone: search a latent where those pick other codes than the mean.
    for seed in range(50):
        torch.manual_seed(seed)
        latent = torch.randn(1, 32, 6)
        means = torch.stack([latent[0, :, :2].mean(-1), latent[0, :, 2:].mean(-1)], dim=-1)[None]
        firsts = latent[:, :, [0, 2]]
        if not torch.equal(_frame_codes(model, means), _frame_codes(model, firsts)):
            break
    else:
        pytest.fail("no latent separates mean pooling from first-frame pooling")
    codes = model.phone_prosody_codes(latent, durations, torch.ones(1, 2, dtype=torch.bool))
    assert torch.equal(codes, _frame_codes(model, means)) and not torch.equal(codes, _frame_codes(model, firsts))


def test_padding_phones_get_code_zero_and_padding_frames_do_not_count(model):
    torch.manual_seed(3)
    latent = torch.randn(2, 32, 10)
    durations = torch.tensor([[4, 6, 0], [3, 2, 7]])  # item 0: 2 phones over 10 frames; item 1: 3 phones
    mask = torch.tensor([[True, True, False], [True, True, False]])  # item 1's third phone is padding too
    codes = model.phone_prosody_codes(latent, durations, mask)
    assert codes[:, 2].tolist() == [0, 0]
    # Item 1 covers frames 0..4 only: what lies past them (its padding) changes nothing.
    garbage = latent.clone()
    garbage[1, :, 5:] = 100 * torch.randn(32, 5)
    assert torch.equal(model.phone_prosody_codes(garbage, durations, mask), codes)
    # ... while its own frames do (so the comparison above is not vacuous).
    moved = latent.clone()
    moved[1, :, :3] = -moved[1, :, :3]
    assert not torch.equal(model.phone_prosody_codes(moved, durations, mask)[1, 0], codes[1, 0])


def test_batch_items_are_independent(model):
    torch.manual_seed(4)
    items = [(torch.randn(1, 32, 12), torch.tensor([[5, 7]])), (torch.randn(1, 32, 7), torch.tensor([[1, 2, 1, 3]])),
             (torch.randn(1, 32, 9), torch.tensor([[9]]))]
    alone = [model.phone_prosody_codes(x, d, torch.ones_like(d, dtype=torch.bool))[0] for x, d in items]
    latent = torch.stack([F.pad(x[0], (0, 12 - x.shape[-1])) for x, _ in items])
    durations = torch.stack([F.pad(d[0], (0, 4 - d.shape[1])) for _, d in items])
    mask = torch.stack([torch.arange(4) < d.shape[1] for _, d in items])
    batch = model.phone_prosody_codes(latent, durations, mask)
    for i, codes in enumerate(alone):
        assert torch.equal(batch[i, : len(codes)], codes)
        assert not batch[i, len(codes):].any()


def test_bad_durations_are_refused(model):
    latent = torch.randn(1, 32, 5)
    ones = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=">= 1 frame"):
        model.phone_prosody_codes(latent, torch.tensor([[5, 0]]), ones)
    with pytest.raises(ValueError, match="at most 5 frames"):
        model.phone_prosody_codes(latent, torch.tensor([[3, 3]]), ones)
    with pytest.raises(ValueError, match="must both be"):
        model.phone_prosody_codes(latent, torch.tensor([[5]]), ones)


@pytest.mark.parametrize("prosody_input", ["v1", "v2"])
def test_the_prosody_latent_is_what_the_prosody_codebooks_read(prosody_input):
    m = make(prosody_input=prosody_input)
    wav = 0.1 * torch.randn(1, 3000)
    enc, latent = m.encode_with_prosody_latent(wav)
    assert latent.shape == (1, 32, 15)
    assert torch.equal(m.quantizer.prosody(latent).codes, enc.codes.prosody)
    ref = m.encode(wav)
    assert torch.equal(enc.codes.stacked(), ref.codes.stacked()) and torch.equal(enc.timbre, ref.timbre)


@pytest.mark.parametrize("kw", [{}, {"prosody_input": "v2"}, {"pad_input": False}], ids=["v1", "v2", "release-framing"])
def test_a_padded_batch_encodes_each_item_as_if_alone(kw):
    m = make(**kw)
    torch.manual_seed(5)
    # The release's framing cannot encode very short inputs at all (its strided convs need >= ~1000 samples).
    lengths = [9000, 6789, 4100, 700, 150] if kw.get("pad_input", True) else [9000, 6789, 4100, 1200]
    wavs = [0.1 * torch.randn(n) for n in lengths]
    batch = torch.zeros(len(wavs), max(lengths))
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    batch[1, lengths[1]:] = 0.3  # what lies past an item's end is not part of it
    enc, latent = m.encode_with_prosody_latent(batch, torch.tensor(lengths))
    assert enc.num_samples.tolist() == lengths
    for i, w in enumerate(wavs):
        one, one_latent = m.encode_with_prosody_latent(w[None])
        f = one.codes.num_frames
        assert torch.equal(enc.codes.stacked()[i, :, :f], one.codes.stacked()[0]), i
        torch.testing.assert_close(enc.timbre[i], one.timbre[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(latent[i, :, :f], one_latent[0], atol=1e-5, rtol=1e-5)


def test_plain_encode_of_a_padded_batch_is_not_batch_independent():
    """Why encode_with_prosody_latent recomputes edge frames: without it the padding leaks into the last frames."""
    m = make()
    torch.manual_seed(6)
    lengths = [9000, 6000]
    batch = 0.1 * torch.randn(2, 9000)
    batch[1, 6000:] = 0
    plain = m.encode(batch, torch.tensor(lengths))
    alone = m.encode(batch[1:, :6000])
    f = alone.codes.num_frames
    assert not torch.allclose(plain.timbre[1], alone.timbre[0], atol=1e-5, rtol=1e-5)
    assert 0 < m._front_reach() < f
