"""Collecting variants from metrics JSON files and from a temporary SQLite MLflow store."""
from __future__ import annotations

import json
import uuid

import pytest
from report_fixtures import BASELINE, write_json

from evaluation.report import ReportInputError, build_tables, collect_from_files, collect_from_mlflow
from evaluation.report.ablation import SIM_RESEMBLYZER
from evaluation.report.collect import VariantResult


def test_files_parse_metrics_notes_and_paths(metric_files, metrics_dir):
    results = collect_from_files(metric_files)
    assert [r.name for r in results] == ["baseline", "no_bottleneck", "no_detail", "prosody_v2"]
    base = results[0]
    assert base.value("reconstruction", "ns3-facodec", "pesq_wb") == pytest.approx(2.1)
    assert base.value("reconstruction", "opus-6k", "mstft") is None
    assert base.value("vc", "ns3-facodec", "sim_o") == pytest.approx(0.71)
    assert base.codec_hparams["hop_length"] == 200
    assert base.unavailable == {"codec2-3.2k": "c2enc not found on PATH (apt-get install codec2)"}
    # Relative paths resolve against the JSON file's folder.
    assert base.recon_samples[0].reference == metrics_dir.resolve() / "audio" / "ref.wav"
    assert base.recon_samples[0].systems["opus-6k"].name == "opus.wav"
    assert base.vc_samples[0].converted.name == "facodec.wav"
    assert base.figures["spectrograms"].is_file()


def test_reasons_prefer_the_specific_cause():
    r = VariantResult("v", "x.json", reconstruction={"a": {"pesq_wb": None}},
                      unavailable={"b": "binary missing"}, metric_notes={"wer": "unavailable: no model"})
    assert r.reason("reconstruction", "b", "pesq_wb") == "b: binary missing"
    assert "no model" in r.reason("vc", "a", "wer")
    assert "has no vc results" in r.reason("vc", "a", "sim_o")
    assert "pesq_wb not reported for a" in r.reason("reconstruction", "a", "pesq_wb")


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("variant"), "variant.name"),
    (lambda d: d["reconstruction"]["opus-6k"].update(stoi="0.8"), r"reconstruction\.opus-6k\.stoi"),
    (lambda d: d.update(vc=[1, 2]), "vc: expected an object"),
    (lambda d: d["samples"]["vc"][0].pop("prompt"), r"samples\.vc\[0\]"),
])
def test_bad_files_name_the_key(tmp_path, mutate, match):
    data = json.loads(json.dumps(BASELINE))
    mutate(data)
    path = write_json(tmp_path / "bad.json", data)
    with pytest.raises(ReportInputError, match=match) as err:
        collect_from_files([path])
    assert "bad.json" in str(err.value)


def test_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ns3 evaluate"):
        collect_from_files([tmp_path / "none.json"])
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ReportInputError, match="broken.json"):
        collect_from_files([tmp_path / "broken.json"])


# --------------------------------------------------------------------------------------------- MLflow

def _log_run(client, exp_id: str, variant: str, start: int, metrics: dict, params: dict,
             status: str = "FINISHED", stage: str = "evaluate_codec", artifact: dict | None = None) -> str:
    run = client.create_run(exp_id, start_time=start, tags={"ns3.stage": stage, "ns3.variant": variant})
    rid = run.info.run_id
    for k, v in metrics.items():
        client.log_metric(rid, k, v, timestamp=start, step=0)
    for k, v in params.items():
        client.log_param(rid, k, v)
    if artifact is not None:
        client.log_dict(rid, artifact, "eval_codec.json")
    client.set_terminated(rid, status=status, end_time=start + 1)
    return rid


@pytest.fixture(scope="module")
def mlflow_store(mlflow_uri, tmp_path_factory):
    """Fake evaluate runs: an old and a newest baseline, a failed and a non-evaluation run, one ablation."""
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri
    experiment = f"report-{uuid.uuid4().hex[:8]}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(experiment, artifact_location=tmp_path_factory.mktemp("mlartifacts").as_uri())
    params = {"codec.model.information_bottleneck": "True", "codec.model.use_detail": "True",
              "codec.model.prosody_input": "v1", "codec.model.hop_length": "200",
              "codec.model.sample_rate": "16000", "codec.model.num_codebooks": "6",
              "codec.model.codebook_size": "1024"}
    # An older baseline run (superseded), the latest baseline, a failed newer run, and an ablation.
    _log_run(client, exp, "baseline", 1_000, {"eval/ns3-facodec/pesq_wb": 1.0}, params)
    ids = {"baseline": _log_run(
        client, exp, "baseline", 2_000,
        {"eval/ns3-facodec/pesq_wb": 2.1, "eval/ns3-facodec/stoi": 0.83, "eval/opus-6k/pesq_wb": 1.5,
         "eval/vc/sim_o": 0.71, "eval/vc/per": 0.31}, params,
        artifact={"variant": {"name": "baseline", "overrides": {"x": 1}}, "unavailable": BASELINE["unavailable"],
                  "metric_notes": BASELINE["metric_notes"]})}
    _log_run(client, exp, "baseline", 3_000, {"eval/ns3-facodec/pesq_wb": 0.5}, params, status="FAILED")
    _log_run(client, exp, "baseline", 4_000, {"eval/ns3-facodec/pesq_wb": 0.4}, params, stage="train_codec")
    ids["no_bottleneck"] = _log_run(
        client, exp, "no_bottleneck", 2_500, {"eval/ns3-facodec/pesq_wb": 2.3, "eval/vc/sim_o": 0.62},
        {**params, "codec.model.information_bottleneck": "False"})
    return uri, experiment, ids


def test_mlflow_latest_finished_run_per_variant(mlflow_store):
    uri, experiment, ids = mlflow_store
    results = {r.name: r for r in collect_from_mlflow(uri, experiment)}
    assert set(results) == {"baseline", "no_bottleneck"}
    base = results["baseline"]
    assert base.source == f"mlflow run {ids['baseline']}"
    assert base.value("reconstruction", "ns3-facodec", "pesq_wb") == pytest.approx(2.1)
    assert base.value("reconstruction", "opus-6k", "pesq_wb") == pytest.approx(1.5)
    assert base.value("vc", "ns3-facodec", "sim_o") == pytest.approx(0.71)
    assert base.codec_hparams["information_bottleneck"] is True and base.codec_hparams["hop_length"] == 200
    assert base.unavailable["codec2-3.2k"].startswith("c2enc")  # read from the logged JSON artifact
    assert base.overrides == {"x": 1}
    assert results["no_bottleneck"].codec_hparams["information_bottleneck"] is False
    assert results["no_bottleneck"].unavailable == {}


def test_mlflow_results_feed_the_tables(mlflow_store):
    uri, experiment, _ = mlflow_store
    tables = build_tables(collect_from_mlflow(uri, experiment))
    ib = next(t for t in tables.ablations if t.key == "ablation_information_bottleneck")
    assert ib.cell(SIM_RESEMBLYZER, "Ours (without)").value == pytest.approx(0.62)
    assert ib.cell(SIM_RESEMBLYZER, "Ours moves that way").text == "✓"
    assert tables.codec.cell("codec2-3.2k", "PESQ ↑").text == "n/a"
    assert "not reported" in tables.codec.cell("ns3-facodec [baseline]", "MCD ↓").reason


def test_mlflow_unfinished_runs_on_request_and_missing_experiment(mlflow_store):
    uri, experiment, _ = mlflow_store
    results = {r.name: r for r in collect_from_mlflow(uri, experiment, finished_only=False)}
    assert results["baseline"].value("reconstruction", "ns3-facodec", "pesq_wb") == pytest.approx(0.5)
    with pytest.raises(ReportInputError, match="'nope' not found"):
        collect_from_mlflow(uri, experiment="nope")


def test_mlflow_no_runs_gives_empty_list(mlflow_store):
    uri, experiment, _ = mlflow_store
    assert collect_from_mlflow(uri, experiment, stage="no_such_stage") == []
