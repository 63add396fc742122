"""Object storage on an S3-compatible server: moto's server on loopback stands in for AWS / MinIO / Ceph.

- a DVC remote on it: ``dvc push``, wipe the cache and the outputs, ``dvc pull``, the same bytes;
- real shards (the shard writer on the micro corpus) uploaded to a bucket read back through every reader from
  ``s3://`` exactly as from the local copies;
- the training stages with ``paths.shards_url=s3://...``: the codec trains on shards that exist only in the
  bucket, then the diffusion on code shards that exist only there;
- a missing bucket is an error naming the URL, the endpoint and what to check.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ns3.config import load_params
from ns3.data.shards import iter_shard, list_shards
from tests.helpers import PROJECT, TINY_TRAINING
from tests.servers import BIN, free_port, loopback_server

pytestmark = pytest.mark.server

BUCKET = "ns3-team"
SHARDS_URL = f"s3://{BUCKET}/ns3"  # what a user puts in paths.shards_url: <url>/shards and <url>/codes


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _upload(client, folder: Path, prefix: str) -> int:
    files = [f for f in sorted(folder.iterdir()) if f.is_file()]
    for f in files:
        client.upload_file(str(f), BUCKET, f"{prefix}/{f.name}")
    return len(files)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto in server mode on a free loopback port; this process talks to it through the standard AWS_* variables."""
    import boto3
    import s3fs

    tmp = tmp_path_factory.mktemp("moto")
    port = free_port()
    argv = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with loopback_server(argv, port, tmp / "moto.log", health_url=f"http://127.0.0.1:{port}/moto-api/") as url:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
                mp.delenv(name, raising=False)
            # No ~/.aws file may decide anything here: the variables below are the whole configuration.
            mp.setenv("AWS_CONFIG_FILE", str(tmp / "no-config"))
            mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-credentials"))
            mp.setenv("AWS_ACCESS_KEY_ID", "testing")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            mp.setenv("AWS_ENDPOINT_URL", url)
            client = boto3.client("s3")
            client.create_bucket(Bucket=BUCKET)
            try:
                yield SimpleNamespace(url=url, client=client, tmp=tmp)
            finally:
                s3fs.S3FileSystem.clear_instance_cache()  # cached clients point at this server, about to stop


@pytest.fixture(scope="module")
def shard_set(s3, micro_corpus, tmp_path_factory):
    """Audio shards of the micro corpus and their alignments (tiny aligner), the shards uploaded to the bucket.

    The shards sit in ``local/shards``; ``data/`` (the training stages' data folder) holds only the alignments,
    so a training run that finds shards found them in the bucket.
    """
    from ns3.align.model import AlignerConfig
    from ns3.align.stage import align_shards
    from ns3.align.train import TrainSchedule
    from ns3.corpus.readers import read_librispeech
    from ns3.data.sharding import shard_corpus

    root = tmp_path_factory.mktemp("object-storage")
    local = root / "local" / "shards"
    read = read_librispeech(micro_corpus, min_duration=0.5, max_duration=30)
    shard_corpus(read, local, utts_per_shard=4, valid_speakers=1, test_speakers=1, seed=5)
    shards = [p for split in ("train", "valid", "test") for p in list_shards(local, split)]
    align_shards(shards, root / "data" / "align", config=AlignerConfig(channels=16, kernel_size=3, dilations=(1,)),
                 schedule=TrainSchedule(rounds=1, flat_epochs=1, epochs_per_round=1))
    assert _upload(s3.client, local, "ns3/shards") > len(shards)  # the tars + manifest, .done sidecars, stats
    return SimpleNamespace(root=root, local=local, shards=shards, data=root / "data")


def test_dvc_remote_round_trip_gives_back_identical_bytes(s3, shard_set, tmp_path):
    """The documented commands: remote add -d / modify endpointurl / modify --local credentials, push, pull."""
    repo = tmp_path / "repo"
    shutil.copytree(shard_set.local, repo / "data" / "shards")
    # DVC gets no AWS_* variable: the remote's own config (endpoint in .dvc/config, keys in config.local) must do.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"),
               DVC_NO_ANALYTICS="1")
    dvc = str(BIN / "dvc")

    def sh(*cmd: str) -> None:
        out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"

    sh("git", "init", "-q")
    sh(dvc, "init", "-q")
    sh(dvc, "add", "data/shards")
    sh(dvc, "remote", "add", "-d", "store", f"s3://{BUCKET}/dvc")
    sh(dvc, "remote", "modify", "store", "endpointurl", s3.url)
    sh(dvc, "remote", "modify", "--local", "store", "access_key_id", "testing")
    sh(dvc, "remote", "modify", "--local", "store", "secret_access_key", "testing")
    assert "secret_access_key" not in (repo / ".dvc" / "config").read_text()  # git-tracked: no secrets in it
    assert "secret_access_key" in (repo / ".dvc" / "config.local").read_text()  # git-ignored by dvc init

    before = _digests(repo / "data" / "shards")
    assert len(before) > 3
    sh(dvc, "push")
    pushed = s3.client.list_objects_v2(Bucket=BUCKET, Prefix="dvc/").get("KeyCount", 0)
    assert pushed == len(before) + 1  # every file once (content-addressed) + the directory listing (.dir)

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data" / "shards")
    sh(dvc, "pull")
    assert _digests(repo / "data" / "shards") == before


def test_shards_read_from_s3_equal_the_local_copies(s3, shard_set):
    from ns3.data import storage
    from ns3.data.codec_data import speaker_index
    from ns3.data.codec_stream import CodecBatchStream
    from ns3.data.pitch import SpeakerPitchStats
    from ns3.data.stream import stream_shards

    url = f"{SHARDS_URL}/shards"
    for split in ("train", "valid", "test"):
        remote, local = list_shards(url, split), list_shards(shard_set.local, split)
        assert [storage.basename(u) for u in remote] == [p.name for p in local] and remote
        assert all(u.startswith(f"{url}/{split}-") for u in remote)
        for u, p in zip(remote, local):
            got, want = list(iter_shard(u)), list(iter_shard(p))
            assert [s.key for s in got] == [s.key for s in want]
            for a, b in zip(got, want):
                assert (a.speaker, a.text, a.meta) == (b.speaker, b.text, b.meta) and np.array_equal(a.audio, b.audio)
    assert speaker_index(f"{url}/manifest.jsonl") == speaker_index(shard_set.local / "manifest.jsonl")

    remote, local = list_shards(url, "train"), list_shards(shard_set.local, "train")
    streamed = [(s.key, s.audio) for s in stream_shards(remote, shuffle_buffer=8, seed=3, distributed=False)]
    here = [(s.key, s.audio) for s in stream_shards(local, shuffle_buffer=8, seed=3, distributed=False)]
    assert [k for k, _ in streamed] == [k for k, _ in here] and len(streamed) >= 8
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(streamed, here))

    # The codec's training stream: audio from the bucket joined to the local labels, batch for batch the same.
    align = shard_set.data / "align"

    speakers = speaker_index(shard_set.local / "manifest.jsonl")

    def stream(shards):
        return CodecBatchStream(shards=shards, label_dir=align, speakers=speakers,
                                pitch_stats=SpeakerPitchStats.load(align / "pitch_stats.json"), batch_size=2,
                                crop_samples=4000, seed=1, shuffle_buffer=4, utterances=8, batches_per_epoch=3)

    for a, b in zip(stream(remote)(0, 0), stream(local)(0, 0), strict=True):
        for f in dataclasses.fields(a):
            assert torch.equal(getattr(a, f.name), getattr(b, f.name)), f.name


def _params(shard_set, **overrides):
    """params.yaml with the data folder in the test's temp dir, training streamed from the bucket, tiny budgets."""
    codec = {f"codec.train.{k}": v for k, v in TINY_TRAINING["codec"]["train"].items()}
    diffusion = {f"diffusion.train.{k}": v for k, v in TINY_TRAINING["diffusion"]["train"].items()}
    return load_params(PROJECT / "params.yaml", overrides={
        "paths.data": str(shard_set.data), "paths.metrics": str(shard_set.root / "metrics"),
        "paths.shards_url": SHARDS_URL, **codec, "codec.train.max_steps": 2, "codec.train.threads": 2, **diffusion,
        "diffusion.train.max_steps": 1, "diffusion.train.threads": 2, "diffusion.train.samples": 0,
        "diffusion.check_pairs": 0, **overrides})


@pytest.fixture(scope="module")
def trained_codec(s3, shard_set):
    from pipelines.codec_flows import run_train_codec

    assert not (shard_set.data / "shards").exists()  # nothing local to fall back on
    return run_train_codec(_params(shard_set))


def test_codec_trains_on_shards_streamed_from_s3(shard_set, trained_codec):
    assert trained_codec["steps"] == 2 and trained_codec["stopped_reason"] == "max_steps"
    assert trained_codec["train_utterances"] > 0 and (shard_set.data / "codec" / "codec.pt").is_file()
    assert not (shard_set.data / "shards").exists()


def test_diffusion_trains_on_code_shards_streamed_from_s3(s3, shard_set, trained_codec):
    from ns3.recipes.extract import extract_codes
    from pipelines.diffusion_flows import run_train_diffusion

    codes = shard_set.root / "local" / "codes"  # extracted next to the local shards, then only uploaded
    extract_codes(shard_set.data / "codec" / "codec.pt", shard_set.shards, shard_set.data / "align", codes)
    _upload(s3.client, codes, "ns3/codes")
    assert not (shard_set.data / "codes").exists()
    summary = run_train_diffusion(_params(shard_set))
    assert summary["steps"] == 1 and summary["train_utterances"] > 0
    assert (shard_set.data / "diffusion" / "diffusion.pt").is_file()


def test_a_missing_bucket_names_the_url_the_endpoint_and_the_fix(s3, shard_set):
    from ns3.data import storage
    from ns3.recipes.codec import codec_training_data

    with pytest.raises(FileNotFoundError) as missing:
        codec_training_data("s3://no-such-bucket/ns3/shards", shard_set.data / "align")
    msg = str(missing.value)
    assert msg.startswith("s3://no-such-bucket/ns3/shards: bucket 'no-such-bucket' does not exist"), msg
    assert f"AWS_ENDPOINT_URL={s3.url}" in msg and "aws s3 sync data/shards" in msg
    with pytest.raises(FileNotFoundError, match=f"{SHARDS_URL}/shards/train-999999.tar: nothing there"):
        list(iter_shard(f"{SHARDS_URL}/shards/train-999999.tar"))
    assert storage.exists(f"{SHARDS_URL}/shards/manifest.jsonl")
