"""The stages' registry steps (pipelines/model_registry.py) on the session's SQLite store: params -> register ->
promote, with the data and test-set hashes the stage folders imply; nothing happens with the registry off."""
from __future__ import annotations

import json
import uuid

import torch

from ns3 import tracking
from ns3.config import load_params
from ns3.data.code_shards import file_sha256
from pipelines import model_registry
from pipelines.common import data_dir
from tests.helpers import make_project


def _project(tmp_path, **overrides):
    from ns3.codec import FACodec, FACodecHParams, save_codec

    root = make_project(tmp_path / "proj")
    tag = uuid.uuid4().hex[:8]
    params = load_params(root / "params.yaml", overrides={
        "registry.codec_model": f"codec-{tag}", "registry.tts_model": f"tts-{tag}",
        "tracking.experiment": f"registry-{tag}", **overrides})
    shards = data_dir(params, "shards")
    shards.mkdir(parents=True)
    (shards / "shards.json").write_text(json.dumps([{"name": "train-000000.tar", "split": "train", "utterances": 4,
                                                     "sha256": "a" * 64},
                                                    {"name": "test-000000.tar", "split": "test", "utterances": 4,
                                                     "sha256": "b" * 64}]))
    align = data_dir(params, "align")
    align.mkdir(parents=True)
    (align / "aligner.pt").write_bytes(b"aligner")
    (align / "inventory.json").write_text("[]")
    torch.manual_seed(0)
    hp = FACodecHParams.mini(encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4,
                             ffn_channels=32, timbre_layers=1, heads=False, decoder="istft", istft_channels=16,
                             istft_layers=1)
    save_codec(data_dir(params, "codec", "codec.pt"), FACodec(hp))
    return params


def _run(params, stage):
    return tracking.stage_run(stage, root=params.root, experiment=params.tracking.experiment)


def test_codec_stages_register_then_promote_on_the_configured_criteria(tmp_path):
    from mlflow import MlflowClient

    from ns3.model_registry.fingerprints import codec_test_set, fingerprint, shard_checksums

    params = _project(tmp_path)
    ckpt = data_dir(params, "codec", "codec.pt")
    with _run(params, "train_codec"):
        v = model_registry.register_codec(params, ckpt)
    tags = MlflowClient().get_model_version(params.registry.codec_model, v.version).tags
    assert tags["ns3.data_hash"] == fingerprint(shard_checksums(data_dir(params, "shards"), ["train", "valid"]))
    assert tags["ns3.source"] == "trained" and tags["ns3.variant"] == params.variant

    metrics = {"eval/ns3-facodec/pesq_wb": 2.0, "eval/ns3-facodec/stoi": 0.8}
    with _run(params, "evaluate_codec") as run:
        decision = model_registry.promote_codec(params, ckpt, metrics)
    assert decision.alias == "champion" and decision.candidate_version == v.version
    settings = {k: v for k, v in params.evaluate.model_dump().items() if k != "samples"}
    assert decision.test_set == codec_test_set(data_dir(params, "shards"), data_dir(params, "align"),
                                               {**settings, "seed": params.seed})
    assert MlflowClient().get_run(run.info.run_id).data.tags["ns3.test_set"] == decision.test_set

    # An evaluation with a changed scoring knob is another test set: never compared with the champion's scores.
    more = load_params(params.root / "params.yaml", overrides={
        "registry.codec_model": params.registry.codec_model, "evaluate.max_utterances": 3})
    torch.manual_seed(1)
    other = data_dir(params, "codec", "other.pt")
    from ns3.codec import FACodec, load_codec, save_codec

    save_codec(other, FACodec(load_codec(ckpt).hp))
    with _run(params, "train_codec"):
        model_registry.register_codec(params, other)
    with _run(params, "evaluate_codec"):
        d2 = model_registry.promote_codec(more, other, {k: x + 1 for k, x in metrics.items()})
    assert d2.alias == "challenger" and "not comparable" in d2.reason


def test_a_checkpoint_nobody_registered_is_evaluated_without_a_decision(tmp_path):
    params = _project(tmp_path)
    with _run(params, "evaluate_codec"):
        assert model_registry.promote_codec(params, data_dir(params, "codec", "codec.pt"), {}) is None


def test_tts_stages_register_the_bundle_and_promote_it(tmp_path):
    from ns3.diffusion.checkpoint import save_diffusion
    from ns3.diffusion.hparams import DiffusionHParams
    from ns3.diffusion.model import FactorizedDiffusion

    params = _project(tmp_path)
    codec = data_dir(params, "codec", "codec.pt")
    dhp = DiffusionHParams(num_phones=5, codebook_size=64, max_duration=4, encoder_layers=1, encoder_dim=8,
                           encoder_heads=2, encoder_hidden=16, encoder_kernel=3, phone_layers=1, phone_dim=8,
                           frame_layers=1, frame_dim=8, heads=2, hidden=16, dropout=0.0)
    diffusion = save_diffusion(data_dir(params, "diffusion", "diffusion.pt"), FactorizedDiffusion(dhp),
                               file_sha256(codec), {})
    with _run(params, "train_diffusion"):
        v = model_registry.register_tts(params, diffusion, codec)  # no data/codes here: the data hash is unknown
    lists = data_dir(params, "tts", "lists")
    lists.mkdir(parents=True)
    (lists / "librispeech.jsonl").write_text('{"id": "a"}\n')
    with _run(params, "evaluate_tts"):
        d = model_registry.promote_tts(params, diffusion, {"tts/librispeech/generated/sim_o": 0.5,
                                                           "tts/librispeech/generated/per": 0.4})
    assert d.alias == "champion" and d.candidate_version == v.version


def test_nothing_is_registered_or_promoted_with_the_registry_off(tmp_path):
    params = _project(tmp_path, **{"registry.enabled": False})
    ckpt = data_dir(params, "codec", "codec.pt")
    # No MLflow run is open: a registry call would raise, so None proves nothing was attempted.
    assert model_registry.register_codec(params, ckpt) is None
    assert model_registry.promote_codec(params, ckpt, {}) is None
    assert model_registry.register_tts(params, ckpt, ckpt) is None
    assert model_registry.promote_tts(params, ckpt, {}) is None
