"""Shard locations as URLs (ns3.data.storage), without a server: fsspec's in-memory filesystem stands in for
a bucket, so the URL code path of every reader runs here. The S3 server tests are in
tests/integration/test_object_storage.py."""
from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest

from ns3.audio import SAMPLE_RATE, encode_flac, to_int16
from ns3.config import ConfigError, load_params
from ns3.data import storage
from ns3.data.code_shards import (CodeShardInfo, CodeUtterance, iter_code_shard, read_code_info, write_code_info,
                                  write_code_shard)
from ns3.data.shards import _tar_add, iter_shard, list_shards
from ns3.data.stream import stream_shards
from tests.helpers import PROJECT


@pytest.fixture()
def bucket():
    """A fresh ``memory://`` prefix (fsspec's memory store is process-wide: each test gets its own, removed after)."""
    root = f"memory://ns3-test-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _upload(local: Path, url: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    for f in sorted(local.iterdir()):
        fs.pipe(f"{path}/{f.name}", f.read_bytes())


def _audio_shard(path: Path, keys: list[str]) -> None:
    import json
    import tarfile

    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for i, key in enumerate(keys):
            t = np.arange(SAMPLE_RATE // 4) / SAMPLE_RATE
            pcm = to_int16(0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t).astype(np.float32))
            _tar_add(tar, f"{key}.flac", encode_flac(pcm))
            _tar_add(tar, f"{key}.json", json.dumps({"key": key, "speaker": key[:2], "text": f"text {i}"}).encode())


def _code_utt(key: str, seed: int) -> CodeUtterance:
    rng = np.random.default_rng(seed)
    return CodeUtterance(key=key, speaker="s1", codes=rng.integers(0, 64, (6, 10)),
                         timbre=rng.standard_normal(8).astype(np.float32), phone_ids=rng.integers(1, 12, 4),
                         durations=np.array([1, 2, 3, 4]), phone_prosody=rng.integers(0, 64, 4), num_samples=2000)


def test_paths_stay_paths_and_urls_keep_their_double_slash():
    assert not storage.is_url(Path("s3:/b/x")) and not storage.is_url("data/shards") and storage.is_url("s3://b/x")
    assert storage.join("s3://b/p/", "shards", "train-000000.tar") == "s3://b/p/shards/train-000000.tar"
    assert storage.join(Path("/d"), "shards") == Path("/d/shards")
    assert storage.basename("s3://b/p/shards/train-000003.tar") == "train-000003.tar"
    assert storage.basename(Path("/d/valid-000001.tar")) == "valid-000001.tar"


def test_audio_shards_read_from_a_url_equal_the_local_ones(tmp_path, bucket):
    local = tmp_path / "shards"
    local.mkdir()
    _audio_shard(local / "train-000000.tar", ["aa-0", "aa-1"])
    _audio_shard(local / "train-000001.tar", ["bb-0"])
    _audio_shard(local / "valid-000000.tar", ["cc-0"])
    (local / "train-000000.tar.done").write_text("{}")  # a sidecar the split's glob must not list
    _upload(local, f"{bucket}/shards")

    urls = list_shards(f"{bucket}/shards", "train")
    assert [storage.basename(u) for u in urls] == ["train-000000.tar", "train-000001.tar"]
    assert all(isinstance(u, str) and u.startswith("memory://") for u in urls)
    assert list_shards(local, "train") == [local / "train-000000.tar", local / "train-000001.tar"]  # Paths, as before
    for url, path in zip(urls, list_shards(local, "train")):
        got, want = list(iter_shard(url)), list(iter_shard(path))
        assert [s.key for s in got] == [s.key for s in want] and len(got) > 0
        for a, b in zip(got, want):
            assert (a.speaker, a.text, a.meta) == (b.speaker, b.text, b.meta)
            assert np.array_equal(a.audio, b.audio)
    # The WebDataset stream opens the same way (a seeded shuffle gives the same order from either place).
    remote = [(s.key, s.audio) for s in stream_shards(urls, shuffle_buffer=3, seed=2, distributed=False)]
    here = [(s.key, s.audio) for s in stream_shards(list_shards(local, "train"), shuffle_buffer=3, seed=2,
                                                     distributed=False)]
    assert [k for k, _ in remote] == [k for k, _ in here] and sorted(k for k, _ in remote) == ["aa-0", "aa-1", "bb-0"]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(remote, here))


def test_code_shards_and_their_info_read_from_a_url(tmp_path, bucket):
    local = tmp_path / "codes"
    write_code_shard(local / "train-000000.tar", [_code_utt("k0", 0), _code_utt("k1", 1)])
    info = CodeShardInfo(codec_hash="0" * 64, codec_path="codec.pt", codebook_size=64, n_prosody=1, n_content=2,
                         n_detail=3, latent_dim=8, frame_rate=80.0, inventory_hash=None)
    write_code_info(local, info)
    _upload(local, f"{bucket}/codes")
    assert read_code_info(f"{bucket}/codes") == info
    (url,) = storage.glob(f"{bucket}/codes", "train-*.tar")
    for a, b in zip(iter_code_shard(url), iter_code_shard(local / "train-000000.tar")):
        assert a.key == b.key and np.array_equal(a.codes, b.codes) and np.array_equal(a.timbre, b.timbre)


def test_a_missing_prefix_or_object_is_an_error_naming_the_url(bucket):
    with pytest.raises(FileNotFoundError, match=f"{bucket}/shards: nothing there"):
        list_shards(f"{bucket}/shards", "train")
    fsspec.filesystem("memory").pipe(f"{bucket[len('memory://'):]}/shards/manifest.jsonl", b"")
    assert list_shards(f"{bucket}/shards", "train") == []  # the prefix exists: no shards of that split, no error
    with pytest.raises(FileNotFoundError, match=f"{bucket}/shards/train-000000.tar"):
        list(iter_shard(f"{bucket}/shards/train-000000.tar"))
    with pytest.raises(FileNotFoundError, match=f"{bucket}/codes/code_info.json: no code-shard info"):
        read_code_info(f"{bucket}/codes")


def test_an_unknown_protocol_names_the_url_and_what_locations_can_be():
    with pytest.raises(storage.StorageError, match=r"s4://bucket/shards: Protocol not known: s4; .*s3://bucket/prefix"):
        list_shards("s4://bucket/shards", "train")
    with pytest.raises(storage.StorageError, match="s4://bucket/x.tar"):
        list(iter_shard("s4://bucket/x.tar"))


def test_training_recipes_name_the_url_they_could_not_read(tmp_path, bucket):
    from ns3.recipes.codec import codec_training_data
    from ns3.recipes.diffusion import diffusion_training_data

    with pytest.raises(FileNotFoundError, match=f"{bucket}/shards: nothing there"):
        codec_training_data(f"{bucket}/shards", tmp_path / "align")
    with pytest.raises(FileNotFoundError, match=f"{bucket}/codes: nothing there"):
        diffusion_training_data(f"{bucket}/codes", None, num_phones=12)


def test_paths_shards_url_points_the_training_stages_at_a_url_or_a_folder():
    from pipelines.common import training_shards

    default = load_params(PROJECT / "params.yaml")
    assert default.paths.shards_url is None
    assert training_shards(default, "shards") == default.resolve("data") / "shards"
    remote = load_params(PROJECT / "params.yaml", overrides={"paths.shards_url": "s3://team-bucket/ns3/"})
    assert training_shards(remote, "shards") == "s3://team-bucket/ns3/shards"
    assert training_shards(remote, "codes") == "s3://team-bucket/ns3/codes"
    folder = load_params(PROJECT / "params.yaml", overrides={"paths.shards_url": "mirror"})
    assert training_shards(folder, "codes") == folder.root / "mirror" / "codes"
    with pytest.raises(ConfigError, match="paths.shards_url"):
        load_params(PROJECT / "params.yaml", overrides={"paths.shards_url": ""})
