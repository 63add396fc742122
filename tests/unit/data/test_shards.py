import hashlib
import json

import numpy as np
import pytest

import soundfile as sf

from ns3.audio import to_int16
from ns3.corpus.readers import read_librispeech
from ns3.data import shards as shards_mod
from ns3.data.shards import iter_shard, list_shards, split_speakers
from ns3.data.sharding import shard_corpus
from ns3.data.stream import stream_shards


def _digests(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.glob("*.tar"))}


@pytest.fixture()
def read(micro_corpus):
    return read_librispeech(micro_corpus, min_duration=0.5, max_duration=30)


def _shard(read, out, **kw):
    return shard_corpus(read, out, utts_per_shard=3, valid_speakers=1, test_speakers=1, seed=5, **kw)


def test_round_trip_audio_and_metadata(read, tmp_path):
    res = _shard(read, tmp_path / "shards")
    seen = {}
    for split in ("train", "valid", "test"):
        for path in list_shards(tmp_path / "shards", split):
            for s in iter_shard(path):
                seen[s.key] = (split, s)
    assert set(seen) == {u.key for u in read.kept}  # every kept utterance, exactly once
    for u in read.kept:
        split, s = seen[u.key]
        pcm, sr = sf.read(str(u.path), dtype="int16")
        assert sr == 16000 and np.array_equal(to_int16(s.audio), pcm)
        assert s.meta["sha256"] == hashlib.sha256(pcm.tobytes()).hexdigest()
        assert s.speaker == u.speaker and s.text == u.text and s.meta["source"] == str(u.path)
        assert abs(s.meta["duration"] - len(pcm) / 16000) < 1e-3
    manifest = [json.loads(x) for x in (tmp_path / "shards" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == res.kept == len(read.kept)
    assert res.stats["total"]["utterances"] == len(read.kept)


def test_splits_are_speaker_disjoint(read, tmp_path):
    _shard(read, tmp_path / "shards")
    manifest = [json.loads(x) for x in (tmp_path / "shards" / "manifest.jsonl").read_text().splitlines()]
    by_split = {s: {r["speaker"] for r in manifest if r["split"] == s} for s in ("train", "valid", "test")}
    assert by_split["train"] and by_split["valid"] and by_split["test"]
    assert not (by_split["train"] & by_split["valid"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["valid"] & by_split["test"])


def test_split_fractions_and_errors():
    spk = [f"s{i}" for i in range(200)]
    m = split_speakers(spk, 0.05, 0.1, seed=1)
    assert sum(v == "valid" for v in m.values()) == 10 and sum(v == "test" for v in m.values()) == 20
    with pytest.raises(ValueError, match="cannot give"):
        split_speakers(["a", "b"], 1, 1, seed=0)


def test_deterministic_bytes(read, tmp_path):
    _shard(read, tmp_path / "a")
    _shard(read, tmp_path / "b")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b and len(a) >= 3


def test_crash_then_rerun_leaves_no_partial_shard(read, tmp_path, monkeypatch):
    reference = tmp_path / "ref"
    _shard(read, reference)
    out = tmp_path / "out"
    real = shards_mod.encode_flac
    calls = {"n": 0}

    def flaky(pcm, *a, **k):
        calls["n"] += 1
        if calls["n"] == 7:  # dies in the middle of the third shard
            raise RuntimeError("simulated crash")
        return real(pcm, *a, **k)

    monkeypatch.setattr(shards_mod, "encode_flac", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _shard(read, out)
    finished = sorted(p.name for p in out.glob("*.tar"))
    assert len(finished) == 2  # only complete shards carry the final name
    monkeypatch.setattr(shards_mod, "encode_flac", real)
    res = _shard(read, out)
    assert sum(w.skipped for w in res.shards) == 2  # the finished ones are reused, not redone
    assert _digests(out) == _digests(reference)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_stale_shards_are_removed(read, tmp_path):
    out = tmp_path / "s"
    shard_corpus(read, out, utts_per_shard=1, valid_speakers=1, test_speakers=1, seed=5)
    n_small = len(list(out.glob("*.tar")))
    res = _shard(read, out)
    assert len(list(out.glob("*.tar"))) == len(res.shards) < n_small


def test_stream_reader_shuffles_and_splits(read, tmp_path):
    _shard(read, tmp_path / "s")
    urls = list_shards(tmp_path / "s", "train")
    keys = [s.key for s in stream_shards(urls, distributed=False)]
    assert sorted(keys) == sorted(s.key for u in urls for s in iter_shard(u, decode_audio=False))
    shuffled = [s.key for s in stream_shards(urls, shuffle_buffer=50, seed=1, distributed=False)]
    assert sorted(shuffled) == sorted(keys) and shuffled != keys
    again = [s.key for s in stream_shards(urls, shuffle_buffer=50, seed=1, distributed=False)]
    assert again == shuffled
    resampled = stream_shards(urls, resampled=True, epoch_size=5, distributed=False)
    assert len(list(resampled)) == 5


def test_rejections_reconcile(tmp_path, micro_corpus):
    read = read_librispeech(micro_corpus, min_duration=2.5, max_duration=30)  # some are too short
    res = _shard(read, tmp_path / "s") if read.kept else None
    assert read.found == len(read.kept) + len(read.rejected)
    lines = (tmp_path / "s" / "rejections.jsonl").read_text().splitlines()
    assert len(lines) == len(read.rejected) == res.rejected
    assert res.stats["rejected_by_reason"].get("too_short", 0) == len(read.rejected)


def test_a_file_damaged_after_the_scan_is_rejected_at_shard_time(micro_corpus, tmp_path):
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(micro_corpus, corpus)
    read = read_librispeech(corpus, min_duration=0.5, max_duration=30)
    victim, gone = read.kept[4], read.kept[9]
    data = victim.path.read_bytes()
    victim.path.write_bytes(data[: len(data) // 2])  # header intact, stream cut: the scan saw it whole
    gone.path.unlink()  # vanished between scan and shard
    res = _shard(read, tmp_path / "shards")
    out = tmp_path / "shards"
    assert res.kept == len(read.kept) - 2 and res.rejected == len(read.rejected) + 2 and res.found == read.found
    rows = {json.loads(x)["path"]: json.loads(x) for x in (out / "rejections.jsonl").read_text().splitlines()}
    assert rows[str(victim.path)]["reason"] == "damaged_audio" and "at shard time" in rows[str(victim.path)]["detail"]
    assert rows[str(gone.path)]["reason"] == "unreadable_audio"
    manifest = [json.loads(x)["key"] for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert victim.key not in manifest and gone.key not in manifest and len(manifest) == res.kept
    stats = json.loads((out / "stats.json").read_text())
    assert stats["found"] == stats["kept"] + stats["rejected"] and stats["rejected_by_reason"]["damaged_audio"] == 1
    assert stats["total"]["utterances"] == res.kept
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind
    # A re-run reuses the shards and still knows what they left out.
    again = _shard(read, out)
    assert all(w.skipped for w in again.shards) and again.rejected == res.rejected
