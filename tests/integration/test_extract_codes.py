"""The extract_codes stage on the micro corpus: shard -> align (tiny aligner) -> a tiny random-weight codec ->
code shards. Durations sum to F, counts reconcile with reasons, the extracted codes + stored timbre decode to
the codec's own encode -> decode, batching changes nothing, reruns keep shards, another codec re-extracts."""
from __future__ import annotations

import json
import shutil
import tarfile

import numpy as np
import pytest
import torch

from ns3.codec import FACodec, FACodecHParams
from ns3.codec.checkpoint import save_codec
from ns3.codec.codes import FactorCodes
from ns3.data.code_shards import CodecMismatchError, check_codec, file_sha256, iter_code_shard, read_code_info
from ns3.data.shards import _tar_add, iter_shard, iter_tar_groups, list_shards
from ns3.recipes.extract import DURATION_MISMATCH, NO_ALIGNMENT, extract_codes

HP = FACodecHParams.mini(
    encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4, ffn_channels=32,
    timbre_layers=1, heads=False, anti_alias=False, decoder="istft", istft_channels=16, istft_layers=1,
    normalized_codes=True,
)


def _codec(path, seed: int):
    torch.manual_seed(seed)
    save_codec(path, FACodec(HP))
    return path


@pytest.fixture(scope="module")
def stage_inputs(micro_corpus, tmp_path_factory):
    """Audio shards, their alignments (one utterance's alignment removed, one off by a frame, one off by 5)."""
    from ns3.align.model import AlignerConfig
    from ns3.align.stage import align_shards
    from ns3.align.train import TrainSchedule
    from ns3.corpus.readers import read_librispeech
    from ns3.data.sharding import shard_corpus

    root = tmp_path_factory.mktemp("extract")
    read = read_librispeech(micro_corpus, min_duration=0.5, max_duration=30)
    shard_corpus(read, root / "shards", utts_per_shard=4, valid_speakers=1, test_speakers=1, seed=5)
    shards = [p for s in ("train", "valid", "test") for p in list_shards(root / "shards", s)]
    aligned = align_shards(shards, root / "align", config=AlignerConfig(channels=16, kernel_size=3, dilations=(1,)),
                           schedule=TrainSchedule(rounds=1, flat_epochs=1, epochs_per_round=1))
    failed = {f["key"] for f in aligned.failures}
    # Edit the first train shard's labels: drop one alignment, lengthen one by a frame, one by five.
    labels = root / "align" / shards[0].name
    groups = [(k, p) for k, p in iter_tar_groups(labels)]
    dropped, nudged, broken = groups[0][0], groups[1][0], groups[2][0]
    with tarfile.open(labels, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, parts in groups[1:]:
            if key in (nudged, broken):
                doc = json.loads(parts["phones.json"])
                doc["durations"][-1] += 1 if key == nudged else 5
                parts = {**parts, "phones.json": json.dumps(doc).encode()}
            for ext, data in parts.items():
                _tar_add(tar, f"{key}.{ext}", data)
    codec = _codec(root / "codec.pt", seed=0)
    return {"root": root, "shards": shards, "labels": root / "align", "codec": codec, "dropped": dropped,
            "nudged": nudged, "broken": broken, "align_failed": failed}


@pytest.fixture(scope="module")
def extracted(stage_inputs):
    s = stage_inputs
    return extract_codes(s["codec"], s["shards"], s["labels"], s["root"] / "codes", batch_size=1)


def _codes(out_dir):
    return {u.key: u for p in sorted(out_dir.glob("*.tar")) for u in iter_code_shard(p)}


def test_code_shards_mirror_the_audio_shards_and_counts_reconcile(stage_inputs, extracted):
    s, m = stage_inputs, extracted.metrics
    out = s["root"] / "codes"
    assert sorted(p.name for p in out.glob("*.tar")) == sorted(p.name for p in s["shards"])
    total = sum(1 for p in s["shards"] for _ in iter_tar_groups(p))
    assert m["utterances"] == total == m["extracted"] + m["skipped"]
    for r in extracted.shards:
        assert r.utterances == r.extracted + len(r.skipped)
    reasons = {x["key"]: x["reason"] for x in extracted.skipped}
    assert reasons[s["dropped"]] == NO_ALIGNMENT and reasons[s["broken"]] == DURATION_MISMATCH
    assert s["nudged"] not in reasons and m["durations_adjusted"] == 1
    assert m["skipped_by_reason"][NO_ALIGNMENT] == 1 + len(s["align_failed"])
    skipped_file = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert skipped_file == extracted.skipped
    codes = _codes(out)
    assert set(codes) == {k for p in s["shards"] for k, _ in iter_tar_groups(p)} - set(reasons)
    for shard in s["shards"]:  # same keys, same order as the audio shard
        audio_keys = [k for k, _ in iter_tar_groups(shard) if k not in reasons]
        assert [u.key for u in iter_code_shard(out / shard.name)] == audio_keys
    for u in codes.values():
        assert u.codes.shape == (6, -(-u.num_samples // 200)) and int(u.durations.sum()) == u.num_frames
        assert len(u.phone_ids) == len(u.durations) == len(u.phone_prosody) > 0
        assert 0 <= u.codes.min() and u.codes.max() < 64 and 0 <= u.phone_prosody.min() and u.phone_prosody.max() < 64
    assert codes[s["nudged"]].durations.sum() == codes[s["nudged"]].num_frames  # the extra frame was taken back
    assert m["frames"] == sum(u.num_frames for u in codes.values())
    assert set(m["code_usage"]) == {"p", "c1", "c2", "d1", "d2", "d3"}
    assert all(0 < v <= 1 for v in m["code_usage"].values())
    info = read_code_info(out)
    assert info.codec_hash == file_sha256(s["codec"]) and info.num_levels == 6 and info.codebook_size == 64
    assert info.inventory_hash == json.loads((s["labels"] / "metrics.json").read_text())["inventory_hash"]
    assert json.loads((out / "metrics.json").read_text()) == m


def test_extracted_codes_decode_to_the_codecs_own_round_trip(stage_inputs, extracted):
    from ns3.codec.checkpoint import load_codec

    s = stage_inputs
    model = load_codec(s["codec"])
    codes = _codes(s["root"] / "codes")
    audio = {x.key: x.audio for p in s["shards"] for x in iter_shard(p)}
    checked = 0
    for key, u in list(codes.items())[:4]:
        wav = torch.from_numpy(audio[key])[None]
        enc = model.encode(wav)
        own = model.decode(enc.codes, enc.timbre)[0, : len(audio[key])]
        stacked = torch.from_numpy(u.codes)[None]
        ours = model.decode(FactorCodes.from_stacked(stacked, 1, 2), torch.from_numpy(u.timbre)[None])[0, : u.num_samples]
        assert u.num_samples == len(audio[key])
        torch.testing.assert_close(ours, own, atol=1e-5, rtol=1e-4)
        assert own.abs().max() > 0
        # The phone-level prosody codes pool the same latent the prosody codebook read.
        _, latent = model.encode_with_prosody_latent(wav)
        d = torch.from_numpy(u.durations)[None]
        pros = model.phone_prosody_codes(latent, d, torch.ones_like(d, dtype=torch.bool))[0]
        assert np.array_equal(pros.numpy(), u.phone_prosody)
        checked += 1
    assert checked == 4


def test_batched_extraction_equals_one_by_one(stage_inputs, extracted):
    s = stage_inputs
    batched = extract_codes(s["codec"], s["shards"], s["labels"], s["root"] / "codes_b3", batch_size=3)
    assert batched.metrics["shards_reused"] == 0
    one, three = _codes(s["root"] / "codes"), _codes(s["root"] / "codes_b3")
    assert list(one) == list(three)
    for key, u in one.items():
        v = three[key]
        assert np.array_equal(u.codes, v.codes) and np.array_equal(u.phone_prosody, v.phone_prosody), key
        np.testing.assert_allclose(u.timbre, v.timbre, atol=1e-5, rtol=1e-5)
    assert batched.metrics["code_usage"] == extracted.metrics["code_usage"]


def test_rerun_keeps_shards_and_another_codec_re_extracts(stage_inputs, extracted, tmp_path):
    s = stage_inputs
    out = tmp_path / "codes"
    shutil.copytree(s["root"] / "codes", out)
    codec = tmp_path / "codec.pt"
    shutil.copy(s["codec"], codec)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    again = extract_codes(codec, s["shards"], s["labels"], out, batch_size=2)
    assert again.metrics["shards_reused"] == len(s["shards"])
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")} == stamps
    assert {k: v for k, v in again.metrics.items() if k not in ("seconds", "shards_reused")} == \
        {k: v for k, v in extracted.metrics.items() if k not in ("seconds", "shards_reused")}
    # A shard whose output was damaged is not trusted, even with its sidecar in place.
    victim = out / s["shards"][-1].name
    victim.write_bytes(b"damaged")
    assert extract_codes(codec, s["shards"], s["labels"], out).metrics["shards_reused"] == len(s["shards"]) - 1
    assert len(list(iter_code_shard(victim))) > 0

    old_info = read_code_info(out)
    _codec(codec, seed=1)  # retrained: same path, other weights
    with pytest.raises(CodecMismatchError, match=old_info.codec_hash):
        check_codec(old_info, codec)
    redone = extract_codes(codec, s["shards"], s["labels"], out)
    assert redone.metrics["shards_reused"] == 0
    new_info = read_code_info(out)
    assert new_info.codec_hash == file_sha256(codec) != old_info.codec_hash
    check_codec(new_info, codec)
    before, after = _codes(s["root"] / "codes"), _codes(out)
    assert list(before) == list(after)
    assert any(not np.array_equal(before[k].codes, after[k].codes) for k in before)
    # Code shards of audio shards that are gone are removed with their sidecars.
    fewer = extract_codes(codec, s["shards"][:-1], s["labels"], out)
    assert fewer.metrics["shards_reused"] == len(s["shards"]) - 1
    assert not (out / s["shards"][-1].name).exists() and not (out / f"{s['shards'][-1].name}.done").exists()


def test_flow_logs_metrics_to_mlflow_and_writes_the_metrics_file(stage_inputs, tmp_path, prefect_harness, monkeypatch):
    import mlflow

    from ns3.config import load_params
    from pipelines.extract_flow import extract_codes_flow
    from tests.helpers import make_project

    s = stage_inputs
    root = make_project(tmp_path / "proj")
    data = root / "data"
    (data / "codec").mkdir(parents=True)
    for name in ("shards", "align"):
        (data / name).symlink_to(s["root"] / name)
    shutil.copy(s["codec"], data / "codec" / "codec.pt")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = load_params(root / "params.yaml", overrides={"extract.splits": ["test"], "shard.workers": 1})
    metrics = extract_codes_flow(params)
    n_test = len(list_shards(data / "shards", "test"))
    assert metrics["shards"] == n_test and sorted(p.name for p in (data / "codes").glob("*.tar"))[0].startswith("test-")
    assert json.loads((root / "metrics" / "extract_codes.json").read_text()) == metrics
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ns3").experiment_id],
                                filter_string="tags.`ns3.stage` = 'extract_codes'")
    assert run.data.metrics["extract_codes/utterances"] == metrics["utterances"]
    assert run.data.metrics["extract_codes/code_usage/c1"] == metrics["code_usage"]["c1"]
    assert run.data.metrics["extract_codes/skipped_by_reason/no_alignment"] == metrics["skipped_by_reason"]["no_alignment"]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "extract_codes")} >= {"extract_codes/code_info.json"}


def test_unfactorized_codec_codes_train_a_diffusion_over_one_attribute(stage_inputs, tmp_path):
    """-factorization: the plain codec's codes (zero timbre) extract, and the diffusion trains on its six levels
    as one attribute (every prompt shows all of them)."""
    import dataclasses

    from ns3.builders import diffusion_train_spec
    from ns3.config import load_params
    from ns3.recipes.diffusion import diffusion_training_data, train_diffusion
    from tests.helpers import PROJECT

    s = stage_inputs
    torch.manual_seed(0)
    codec = tmp_path / "plain.pt"
    save_codec(codec, FACodec(FACodecHParams.unfactorized(HP)))
    out = extract_codes(codec, s["shards"], s["labels"], tmp_path / "codes")
    assert out.metrics["extracted"] > 0
    info = read_code_info(tmp_path / "codes")
    assert not info.factorized and info.num_levels == 6
    codes = _codes(tmp_path / "codes")
    assert all(not u.timbre.any() for u in codes.values())

    params = load_params(PROJECT / "params.yaml", overrides={"codec.model.factorized": False,
                                                            "paths.data": str(tmp_path / "data")})
    data = diffusion_training_data(tmp_path / "codes", codec, num_phones=100)
    assert not data.factorized
    spec = dataclasses.replace(diffusion_train_spec(params, data), max_steps=2, max_minutes=None, batch_frames=400,
                               valid_utterances=2, eval_every=1000, samples=0)
    assert spec.hparams.levels == ("q1", "q2", "q3", "q4", "q5", "q6")
    assert set(spec.hparams.level_attributes) == {"codes"}
    trained = train_diffusion(spec, data)
    assert trained.steps == 2 and trained.checkpoint.exists()
    assert {"valid/acc/q1", "valid/acc/q6"} <= set(trained.summary), sorted(trained.summary)
