"""The code-shard format: round trip, the folder's info file, refusing another codec, atomic writes."""
from __future__ import annotations

import dataclasses
import io
import json
import tarfile

import numpy as np
import pytest

from ns3.data.code_shards import (CODE_INFO_FILE, CodecMismatchError, CodeShardInfo, CodeUtterance, check_codec,
                                  file_sha256, iter_code_shard, read_code_info, write_code_info, write_code_shard)


def _utt(key: str, frames: int, phones: int, seed: int, levels: int = 6) -> CodeUtterance:
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, frames), phones - 1, replace=False))
    durations = np.diff(np.concatenate(([0], cuts, [frames])))
    return CodeUtterance(
        key=key, speaker=f"spk{seed}", codes=rng.integers(0, 1024, (levels, frames)),
        timbre=rng.standard_normal(16).astype(np.float32), phone_ids=rng.integers(0, 80, phones),
        durations=durations, phone_prosody=rng.integers(0, 1024, phones), num_samples=frames * 200 - 37)


def _info(**kw) -> CodeShardInfo:
    base = dict(codec_hash="0" * 64, codec_path="codec.pt", codebook_size=1024, n_prosody=1, n_content=2, n_detail=3,
                latent_dim=16, frame_rate=80.0, inventory_hash="abcd")
    return CodeShardInfo(**{**base, **kw})


def test_round_trip_keeps_dtypes_shapes_and_values(tmp_path):
    utts = [_utt("s1-1-0000", 57, 9, 0), _utt("s2-1-0003", 12, 4, 1), _utt("s3-1-0001", 30, 30, 2, levels=3)]
    path = tmp_path / "train-000000.tar"
    assert write_code_shard(path, iter(utts)) == 3  # a generator streams in
    back = list(iter_code_shard(path))
    assert [u.key for u in back] == [u.key for u in utts]
    for a, b in zip(utts, back):
        assert b.codes.dtype == b.phone_ids.dtype == b.durations.dtype == b.phone_prosody.dtype == np.int64
        assert b.timbre.dtype == np.float32 and b.timbre.shape == (16,)
        assert b.codes.shape == a.codes.shape and b.num_frames == a.codes.shape[1] == int(b.durations.sum())
        for name in ("codes", "phone_ids", "durations", "phone_prosody", "timbre"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert (b.speaker, b.num_samples) == (a.speaker, a.num_samples)
    with tarfile.open(path) as tar:  # the WebDataset layout: <key>.<member>, stored compactly
        names = tar.getnames()
        meta = json.loads(tar.extractfile("s1-1-0000.meta.json").read())
        codes = np.load(io.BytesIO(tar.extractfile("s1-1-0000.codes.npy").read()))
    assert names[:6] == [f"s1-1-0000.{m}" for m in ("codes.npy", "timbre.npy", "phone_ids.npy", "durations.npy",
                                                     "phone_prosody.npy", "meta.json")]
    assert meta == {"key": "s1-1-0000", "speaker": "spk0", "num_samples": 57 * 200 - 37, "num_frames": 57}
    assert codes.dtype == np.int16
    # Deterministic bytes: the same codes give the same shard.
    write_code_shard(tmp_path / "again.tar", utts)
    assert file_sha256(tmp_path / "again.tar") == file_sha256(path)


def test_writer_refuses_durations_that_do_not_sum_to_the_frames(tmp_path):
    bad = _utt("k", 20, 5, 3)
    bad.durations = bad.durations.copy()
    bad.durations[-1] += 1
    with pytest.raises(ValueError, match=r"'k'.*durations sum to 21 frames, codes have 20"):
        write_code_shard(tmp_path / "x.tar", [bad])
    wide = _utt("w", 20, 5, 3)
    wide.codes = wide.codes + 40000
    with pytest.raises(ValueError, match="outside int16"):
        write_code_shard(tmp_path / "x.tar", [wide])


def test_a_failed_write_leaves_no_temp_file_and_keeps_the_old_shard(tmp_path):
    path = tmp_path / "train-000000.tar"
    write_code_shard(path, [_utt("a", 10, 3, 0)])
    before = path.read_bytes()

    def failing():
        yield _utt("b", 10, 3, 1)
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_code_shard(path, failing())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-000000.tar"]


def test_info_round_trip_and_clear_errors(tmp_path):
    info = _info()
    write_code_info(tmp_path, info)
    assert read_code_info(tmp_path) == info and info.num_levels == 6
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 'none' / CODE_INFO_FILE}.*ns3 extract-codes"):
        read_code_info(tmp_path / "none")
    path = tmp_path / CODE_INFO_FILE
    for doc, match in (({**info.to_json(), "format": "other"}, "format 'other'"),
                       ({**info.to_json(), "version": 2}, "version 2 is not supported"),
                       ({**info.to_json(), "extra": 1}, "fields do not match")):
        path.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=match) as e:
            read_code_info(tmp_path)
        assert str(path) in str(e.value) and "re-run `ns3 extract-codes`" in str(e.value)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not readable as JSON"):
        read_code_info(tmp_path)


def test_check_codec_refuses_another_codec_naming_both_hashes(tmp_path):
    ours, other = tmp_path / "ours.pt", tmp_path / "other.pt"
    ours.write_bytes(b"codec weights A")
    other.write_bytes(b"codec weights B")
    info = _info(codec_hash=file_sha256(ours), codec_path=str(ours))
    assert len(info.codec_hash) == 64
    check_codec(info, ours)  # the same file passes
    with pytest.raises(CodecMismatchError) as e:
        check_codec(info, other)
    msg = str(e.value)
    assert isinstance(e.value, ValueError)
    assert file_sha256(ours) in msg and file_sha256(other) in msg and file_sha256(ours) != file_sha256(other)
    assert "re-run `ns3 extract-codes` with this codec" in msg
    with pytest.raises(CodecMismatchError):  # a changed file at the same path is another codec
        ours.write_bytes(b"codec weights A, retrained")
        check_codec(info, ours)


def test_reader_names_a_shard_missing_members(tmp_path):
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        data = b"{}"
        ti = tarfile.TarInfo("k.meta.json")
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    with pytest.raises(ValueError, match=r"bad.tar: utterance 'k' lacks \['codes.npy'"):
        list(iter_code_shard(path))
    assert dataclasses.is_dataclass(CodeUtterance)
