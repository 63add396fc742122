"""The codec batch stream: exact resume, disjoint equal ranks, no decoding of skipped batches."""
from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch

from ns3.audio import encode_flac
from ns3.data import codec_stream
from ns3.data.codec_stream import CodecBatchStream
from ns3.data.pitch import SpeakerPitchStats


def _add(tar, name, data: bytes):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    tar.addfile(ti, io.BytesIO(data))


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


@pytest.fixture
def shards(tmp_path):
    """4 train shards x 5 utterances (the last of each unlabelled) + label tars + pitch stats."""
    rng = np.random.default_rng(0)
    audio_dir, label_dir = tmp_path / "shards", tmp_path / "align"
    audio_dir.mkdir(), label_dir.mkdir()
    paths = []
    for s in range(4):
        name = f"train-{s:06d}.tar"
        with tarfile.open(audio_dir / name, "w") as a, tarfile.open(label_dir / name, "w") as lab:
            for u in range(5):
                key, frames = f"spk{s % 2}-{s}-{u}", 40 + u
                wav = (0.1 * rng.standard_normal(frames * 200)).astype(np.float32)
                _add(a, f"{key}.flac", encode_flac(wav))
                _add(a, f"{key}.json", json.dumps({"key": key, "speaker": f"spk{s % 2}", "text": "x"}).encode())
                if u < 4:
                    _add(lab, f"{key}.labels.npy", _npy(np.full(frames, u, np.int16)))
                    _add(lab, f"{key}.lf0n.npy", _npy(np.zeros(frames, np.float32)))
                    _add(lab, f"{key}.uv.npy", _npy(np.ones(frames, np.float32)))
        paths.append(str(audio_dir / name))
    stats = SpeakerPitchStats({"spk0": (5.0, 0.2), "spk1": (5.2, 0.2)}, 5.1, 0.2)
    return paths, label_dir, stats


def _stream(shards, **kw):
    paths, label_dir, stats = shards
    args = dict(shards=paths, label_dir=label_dir, speakers={"spk0": 0, "spk1": 1}, pitch_stats=stats, batch_size=2,
                crop_samples=4000, seed=3, shuffle_buffer=3, utterances=16)
    return CodecBatchStream(**{**args, **kw})


def test_resume_from_any_batch_is_exact(shards):
    s = _stream(shards)
    full = list(s(1, 0))
    assert len(full) == s.batches_per_epoch == 8
    for start in (1, 3, 7):
        tail = list(_stream(shards)(1, start))
        assert len(tail) == len(full) - start
        for a, b in zip(tail, full[start:]):
            assert torch.equal(a.wav, b.wav) and torch.equal(a.phone_ids, b.phone_ids)
    assert not torch.equal(full[0].wav, list(s(2, 0))[0].wav)  # another epoch, another order


def test_unlabelled_utterances_are_left_out_and_labels_match_keys(shards):
    s = _stream(shards)
    for b in s(0, 0):
        ids = b.phone_ids[b.frame_mask]
        assert (ids < 4).all()  # label u of utterance u; the unlabelled fifth never appears
    assert s.missing_labels > 0


def test_ranks_read_disjoint_shards_and_yield_equal_counts(shards, monkeypatch):
    seen = {}
    for rank in (0, 1):
        s = _stream(shards, rank=rank, world_size=2)
        read = []
        orig = s._shard_samples
        monkeypatch.setattr(s, "_shard_samples", lambda shard, orig=orig: (read.append(shard), orig(shard))[1])
        assert len(list(s(0, 0))) == s.batches_per_epoch == 4
        seen[rank] = set(read)
    assert seen[0] and seen[1] and not seen[0] & seen[1]


def test_skipped_batches_are_not_decoded(shards, monkeypatch):
    calls = []
    real = codec_stream.decode_audio_bytes
    monkeypatch.setattr(codec_stream, "decode_audio_bytes", lambda b: (calls.append(1), real(b))[1])
    list(_stream(shards)(0, 6))
    assert len(calls) == 2 * 2  # two batches of two


def test_too_few_shards_for_the_ranks_is_a_clear_error(shards):
    with pytest.raises(ValueError, match="utts_per_shard"):
        _stream(shards, world_size=5)


def test_streamed_examples_are_the_ones_the_in_memory_loader_builds(shards):
    from ns3.data.codec_data import load_labelled
    from ns3.data.pitch import PITCH_STATS_FILE

    paths, label_dir, stats = shards
    stats.save(label_dir / PITCH_STATS_FILE)
    loaded = {ex.key: ex for ex in load_labelled(paths, label_dir, {"spk0": 0, "spk1": 1}).examples}
    s = _stream(shards)
    streamed = [s._example(*x) for x in s._shard_samples(paths[0])]
    assert len(streamed) == 4
    for ex in streamed:
        ref = loaded[ex.key]
        assert np.array_equal(ex.wav, ref.wav) and np.array_equal(ex.phone_ids, ref.phone_ids)
        assert ex.speaker_id == ref.speaker_id and ex.f0_stats == ref.f0_stats
