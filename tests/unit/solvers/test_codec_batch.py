"""CodecBatch collation: hop-aligned random crops, padding masks, deterministic per-epoch crops."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ns3.data.batch import IGNORE_INDEX, CodecBatch, CodecExample, RandomCropCollate, collate_codec

HOP = 200


def _example(frames: int, key: str = "utt", speaker: int = 3, partial: int = 0) -> CodecExample:
    """wav sample s carries its frame index s // HOP, so alignment is checkable after cropping."""
    n = frames * HOP - partial
    wav = (np.arange(n) // HOP).astype(np.float32)
    idx = np.arange(frames)
    return CodecExample(wav=wav, phone_ids=idx.astype(np.int64), f0=idx.astype(np.float32),
                        uv=(idx % 2).astype(np.float32), speaker_id=speaker, f0_stats=(4.5, 0.2), key=key)


def test_crop_keeps_waveform_and_labels_on_the_same_frames():
    batch = collate_codec([_example(300), _example(250, partial=37)], 80 * HOP, np.random.default_rng(0))
    assert batch.wav.shape == (2, 16000) and batch.phone_ids.shape == (2, 80)
    assert batch.phone_ids.dtype == torch.long and batch.frame_mask.dtype == torch.bool
    for i in range(2):
        frame_of_sample = batch.wav[i, ::HOP].long()
        assert torch.equal(frame_of_sample, batch.phone_ids[i])
        assert torch.equal(batch.f0[i], batch.phone_ids[i].float())
    assert batch.frame_mask.all()
    assert batch.speaker_ids.tolist() == [3, 3]


def test_short_utterance_is_padded_and_masked():
    batch = collate_codec([_example(30, partial=50)], 80 * HOP, np.random.default_rng(0))
    assert batch.frame_mask[0, :30].all() and not batch.frame_mask[0, 30:].any()
    assert (batch.phone_ids[0, 30:] == IGNORE_INDEX).all()
    assert (batch.wav[0, 30 * HOP - 50:] == 0).all()
    assert batch.num_frames == 80 and batch.batch_size == 1


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="multiple of the hop"):
        collate_codec([_example(100)], 16001, np.random.default_rng(0))
    bad = _example(100, key="spk1-utt7")
    bad.f0 = bad.f0[:-1]
    with pytest.raises(ValueError, match="spk1-utt7: f0 has 99 frames"):
        collate_codec([bad], 16000, np.random.default_rng(0))
    with pytest.raises(ValueError, match="empty"):
        collate_codec([], 16000, np.random.default_rng(0))


def test_random_crop_collate_is_a_function_of_seed_and_epoch():
    examples = [_example(2000, key=str(i)) for i in range(4)]

    def starts(collate: RandomCropCollate, epoch: int) -> list[list[int]]:
        collate.set_epoch(epoch)
        return [collate(examples).phone_ids[:, 0].tolist() for _ in range(3)]

    a, b = RandomCropCollate(16000, seed=5), RandomCropCollate(16000, seed=5)
    assert starts(a, 0) == starts(b, 0)  # replaying an epoch reproduces its crops
    assert starts(a, 1) != starts(a, 0)
    assert starts(RandomCropCollate(16000, seed=6), 0) != starts(b, 0)


def test_batch_to_device_keeps_the_type():
    batch = collate_codec([_example(100)], 16000, np.random.default_rng(0))
    moved = batch.to("cpu")
    assert isinstance(moved, CodecBatch) and torch.equal(moved.wav, batch.wav)


def test_batches_carry_the_speaker_pitch_stats_and_absolute_f0():
    ex = _example(100, partial=37)
    ex.f0 = ex.f0 / 50  # normalised log-F0 in a speech-like range (within ~2 std)
    batch = collate_codec([ex], 120 * HOP, np.random.default_rng(0))
    assert batch.f0_stats.tolist() == [[4.5, pytest.approx(0.2)]]
    f0 = batch.f0_hz[0]
    voiced = (batch.uv[0] > 0.5) & batch.frame_mask[0]
    expected = np.exp(4.5 + 0.2 * batch.f0[0].numpy())
    assert np.allclose(f0[voiced].numpy(), expected[voiced.numpy()], rtol=1e-5)
    assert (f0[~voiced] == 0).all() and (~batch.frame_mask[0]).any()  # padding and unvoiced frames: 0 Hz
