"""The model registry against a real MLflow server on loopback: versions compete for the champion alias, the
decision is recorded on the version and the evaluation run, and ``models:/<name>@champion`` resolves to the
champion's own checkpoint bytes (through the codec loader, the pyfunc and the CLI)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from ns3 import tracking
from ns3.codec import FACodec, FACodecHParams, load_codec, save_codec
from ns3.data.code_shards import file_sha256
from ns3.model_registry import (ALIGN, CODEC, CODEC_HASH_TAG, DIFFUSION, DIFFUSION_HASH_TAG, promote_evaluated,
                                register_codec, register_tts, resolve_model)
from tests.integration.test_tts import models  # noqa: F401  (micro-corpus codec, untrained diffusion, aligner)
from tests.servers import BIN, free_port, loopback_server

pytestmark = pytest.mark.server

TINY = FACodecHParams.mini(encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4,
                           ffn_channels=32, timbre_layers=1, heads=False, anti_alias=False, decoder="istft",
                           istft_channels=16, istft_layers=1)
PESQ, STOI = "eval/ns3-facodec/pesq_wb", "eval/ns3-facodec/stoi"
CRITERIA = {PESQ: "higher", STOI: "not_lower"}
EXPERIMENT = "registry-test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    argv = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp / 'db'}",
            "--artifacts-destination", str(tmp / "art"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with loopback_server(argv, port, tmp / "server.log", health_url=f"http://127.0.0.1:{port}/health",
                         env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}) as url:
        yield url


@pytest.fixture()
def tracking_uri(server, monkeypatch):
    """MLFLOW_TRACKING_URI -> the server for this test; the session's store (and no active experiment) after it."""
    import mlflow
    from mlflow.tracking import fluent

    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    yield server
    mlflow.set_tracking_uri(before)
    # mlflow has no public way to forget the active experiment; ours lives on the server, not in the next test's store
    fluent._active_experiment_id = None


def _codec(path, seed):
    torch.manual_seed(seed)
    save_codec(path, FACodec(TINY))
    return path


def _train_run(root, name, ckpt, seed):
    with tracking.stage_run("train_codec", params={"codec": {"seed": seed}}, root=root, experiment=EXPERIMENT,
                            tags={"ns3.variant": "baseline"}):
        return register_codec(name, ckpt, data_hash=f"shards-{seed}", params={"seed": seed})


def _evaluate(root, name, ckpt, metrics, test_set="T1"):
    with tracking.stage_run("evaluate_codec", root=root, experiment=EXPERIMENT) as run:
        tracking.log_metrics(metrics)
        decision = promote_evaluated(name, CODEC_HASH_TAG, file_sha256(ckpt), metrics=metrics, test_set=test_set,
                                     criteria=CRITERIA)
    return decision, run.info.run_id


def test_versions_compete_for_champion_and_the_champion_resolves_to_its_bytes(tracking_uri, tmp_path, monkeypatch):
    import mlflow
    from mlflow import MlflowClient

    name = "ns3-codec"
    ckpts = [_codec(tmp_path / f"codec{i}.pt", seed=i) for i in (1, 2, 3)]
    versions = [_train_run(tmp_path, name, c, seed) for seed, c in enumerate(ckpts, 1)]
    assert [v.version for v in versions] == ["1", "2", "3"] and all(v.created for v in versions)
    again = _train_run(tmp_path, name, ckpts[0], 1)  # a stage re-run that trained nothing new adds no version
    assert (again.version, again.created) == ("1", False)

    client = MlflowClient()
    v1 = client.get_model_version(name, "1")
    assert v1.tags[CODEC_HASH_TAG] == file_sha256(ckpts[0]) and v1.tags["ns3.data_hash"] == "shards-1"
    assert v1.tags["ns3.kind"] == "codec" and v1.tags["git_commit"] and v1.tags["ns3.variant"] == "baseline"
    assert v1.run_id == versions[0].run_id

    first, _ = _evaluate(tmp_path, name, ckpts[0], {PESQ: 2.0, STOI: 0.80})
    assert first.alias == "champion" and "no champion" in first.reason
    second, _ = _evaluate(tmp_path, name, ckpts[1], {PESQ: 2.5, STOI: 0.85})
    assert second.alias == "champion" and second.champion_version == "1"
    third, run3 = _evaluate(tmp_path, name, ckpts[2], {PESQ: 2.4, STOI: 0.90})
    assert third.alias == "challenger" and third.champion_version == "2"

    model = client.get_registered_model(name)
    assert model.aliases == {"champion": "2", "challenger": "3"}
    assert client.get_model_version(name, "1").tags["ns3.superseded_by"] == "2"
    v3 = client.get_model_version(name, "3").tags
    assert v3["ns3.decision"] == "challenger" and v3["ns3.decision_against"] == "2" and v3["ns3.test_set"] == "T1"
    assert PESQ in v3["ns3.decision_reason"] and "2.4 vs 2.5" in v3["ns3.decision_reason"]
    assert v3["ns3.eval.T1"] == run3
    checks = {c["metric"]: c for c in json.loads(v3["ns3.decision_checks"])}
    assert checks[PESQ]["passed"] is False and checks[PESQ]["margin"] == pytest.approx(-0.1)
    assert checks[STOI]["passed"] is True
    run = client.get_run(run3)
    assert run.data.tags["ns3.registry.alias"] == "challenger" and run.data.tags["ns3.registry.version"] == "3"
    assert run.data.tags["ns3.test_set"] == "T1" and "2.4 vs 2.5" in run.data.tags["ns3.registry.reason"]
    recorded = json.loads(mlflow.artifacts.load_text(f"runs:/{run3}/registry/decision.json"))
    assert recorded["alias"] == "challenger" and recorded["champion_version"] == "2"

    # Only like with like: version 3 scored (much better) on another test set is not compared with the champion.
    other, _ = _evaluate(tmp_path, name, ckpts[2], {PESQ: 4.0, STOI: 0.99}, test_set="T2")
    assert other.alias == "challenger" and "not comparable" in other.reason
    assert client.get_registered_model(name).aliases["champion"] == "2"

    files = resolve_model(f"models:/{name}@champion", cache_dir=tmp_path / "cache")
    assert files.version == "2" and files.path(CODEC).read_bytes() == ckpts[1].read_bytes()
    champion, reference = load_codec(files.path(CODEC)), load_codec(ckpts[1])
    assert all(torch.equal(a, b) for a, b in zip(champion.state_dict().values(), reference.state_dict().values()))
    assert resolve_model(f"models:/{name}/2", cache_dir=tmp_path / "cache").root == files.root  # cached by version

    # The pyfunc's predict is the codec's resynthesis.
    wav = 0.1 * np.random.default_rng(0).standard_normal(3200).astype(np.float32)
    out = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict([wav.tolist()])
    with torch.inference_mode():
        enc = reference.encode(torch.from_numpy(wav)[None])
        expected = reference.decode(enc.codes, enc.timbre)[0, :3200].numpy()
    assert np.allclose(np.asarray(out[0]), expected, atol=1e-5)

    # The CLI takes the URI wherever it takes a checkpoint (one resolver).
    from typer.testing import CliRunner

    from ns3.cli import app

    monkeypatch.setenv("NS3_MODEL_CACHE", str(tmp_path / "cli-cache"))
    sf.write(tmp_path / "a.wav", wav, 16000, subtype="FLOAT")
    r = CliRunner().invoke(app, ["codec", "encode", f"models:/{name}@champion", str(tmp_path / "a.wav"),
                                 "--out", str(tmp_path / "a.npz")])
    assert r.exit_code == 0, r.output
    codes = np.load(tmp_path / "a.npz")
    for factor in ("prosody", "content", "detail"):  # the champion's codes, not another version's
        assert np.array_equal(codes[factor], getattr(enc.codes, factor)[0].numpy())
    assert list((tmp_path / "cli-cache").rglob("codec*.pt"))


def test_a_tts_version_bundles_diffusion_codec_and_aligner_and_synthesizes(tracking_uri, models, tmp_path,
                                                                           monkeypatch):
    import mlflow
    from mlflow import MlflowClient
    from typer.testing import CliRunner

    from ns3.audio import write_audio
    from ns3.cli import app
    from ns3.data.shards import iter_shard, list_shards
    from ns3.diffusion.checkpoint import load_diffusion

    sim, per = "tts/librispeech/generated/sim_o", "tts/librispeech/generated/per"
    with tracking.stage_run("train_diffusion", root=tmp_path, experiment=EXPERIMENT):
        v = register_tts("ns3-tts", models / "diffusion.pt", models / "codec.pt", models / "align",
                         data_hash="codes-1", voice="en-us", generation={"steps": 1})
    tags = MlflowClient().get_model_version("ns3-tts", v.version).tags
    assert tags["ns3.kind"] == "tts" and tags[CODEC_HASH_TAG] == file_sha256(models / "codec.pt")
    with tracking.stage_run("evaluate_tts", root=tmp_path, experiment=EXPERIMENT):
        d = promote_evaluated("ns3-tts", DIFFUSION_HASH_TAG, file_sha256(models / "diffusion.pt"),
                              metrics={sim: 0.5, per: 0.4}, test_set="L1", criteria={sim: "higher", per: "not_higher"})
    assert d.alias == "champion"

    files = resolve_model("models:/ns3-tts@champion", cache_dir=tmp_path / "cache")
    assert sorted(files.files) == [ALIGN, CODEC, DIFFUSION]
    # only what prompts need from the align stage travels with the model
    assert sorted(p.name for p in files.path(ALIGN).iterdir()) == ["aligner.pt", "inventory.json"]
    load_diffusion(files.path(DIFFUSION), codec_path=files.path(CODEC))  # refuses a codec it was not trained on

    sample = next(iter_shard(list_shards(models / "shards", "test")[0]))
    write_audio(tmp_path / "prompt.wav", sample.audio)
    monkeypatch.setenv("NS3_MODEL_CACHE", str(tmp_path / "cli-cache"))
    # the registered model alone: its codec and aligner are the defaults of --codec and --align-dir
    r = CliRunner().invoke(app, ["tts", "hello there", "--prompt", str(tmp_path / "prompt.wav"), "--out",
                                 str(tmp_path / "out.wav"), "--one-step", "--diffusion", "models:/ns3-tts@champion"])
    assert r.exit_code == 0, r.output
    assert '"nfe": 15' in r.output and (tmp_path / "out.wav").stat().st_size > 1000

    wavs = mlflow.pyfunc.load_model("models:/ns3-tts@champion").predict(
        [{"text": "hello there", "prompt_wav": sample.audio.tolist()}])
    assert len(wavs) == 1 and len(wavs[0]) > 1600 and np.isfinite(wavs[0]).all()
