"""The corpus and shard stages as Prefect flows logging to MLflow, through `ns3`, DVC, and an MLflow server."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml

from ns3.config import load_params
from tests.helpers import TINY_CORPUS, dvc_project, make_project, set_param


def _project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "proj", TINY_CORPUS)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profile"] = "test"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def _runs(uri: str, experiment: str = "ns3"):
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=500)


def test_pipeline_flow_logs_nested_stage_runs(tmp_path, prefect_harness, monkeypatch):
    from pipelines.pipeline import pipeline_flow

    root = _project(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params = load_params(root / "params.yaml")
    result = pipeline_flow(params, stages=["corpus", "shard"], use_dvc=False)
    assert result["corpus"] == result["shard"] == "ran" and "align" not in result

    stats = json.loads((root / "metrics" / "shard.json").read_text())
    assert stats["total"]["utterances"] == 5 * 3 and stats["found"] == stats["kept"] + stats["rejected"]
    assert sorted(p.name for p in (root / "data" / "shards").glob("*.tar"))[0].startswith("test-")

    client, runs = _runs(uri)
    by_name = {r.info.run_name: r for r in runs}
    parent = by_name["pipeline-test"]
    for stage in ("corpus", "shard"):
        run = by_name[stage]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["config_hash"] and run.data.tags["git_commit"]
    shard = by_name["shard"]
    assert shard.data.metrics["shard/total/utterances"] == 15
    assert shard.data.params["shard.utts_per_shard"] == "4"
    artifacts = {a.path for a in client.list_artifacts(shard.info.run_id, "shard")}
    assert "shard/manifest.jsonl" in artifacts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.server
def test_flows_log_to_an_mlflow_server_over_http(tmp_path, prefect_harness, monkeypatch):
    from pipelines.data_flows import corpus_flow

    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "art")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{uri}/health", timeout=2).read().strip() == b"OK":
                    break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("mlflow server did not become healthy on loopback")
                time.sleep(0.5)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        root = _project(tmp_path)
        corpus_flow(load_params(root / "params.yaml"))
        client, runs = _runs(uri)
        (run,) = [r for r in runs if r.info.run_name == "corpus"]
        assert run.data.metrics["corpus/utterances"] == 15
        assert any(a.path == "corpus.json" for a in client.list_artifacts(run.info.run_id))
        assert (tmp_path / "art").exists()  # artifacts went through the server's proxy
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_cli_stages_and_dvc_repro_is_incremental(tmp_path, prefect_harness):
    """`dvc repro` runs `ns3 corpus` and `ns3 shard`; a second `dvc repro` is a no-op."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    root, sh = dvc_project(tmp_path / "proj", TINY_CORPUS, env)
    first = sh("dvc", "repro", "shard")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Running stage 'corpus'" in first.stdout and "Running stage 'shard'" in first.stdout
    assert json.loads((root / "metrics" / "shard.json").read_text())["total"]["utterances"] == 15
    second = sh("dvc", "repro", "shard")
    assert second.returncode == 0
    assert "Running stage" not in second.stdout and "didn't change" in second.stdout
    # A knob that does not change results (the worker count) re-runs nothing.
    set_param(root, "shard.workers", 1)
    assert "Running stage" not in sh("dvc", "repro", "shard").stdout
    # A changed knob re-runs only the stage that depends on it: shard, not corpus.
    set_param(root, "shard.utts_per_shard", 2)
    third = sh("dvc", "repro", "shard")
    assert third.returncode == 0, third.stderr[-3000:]
    assert "Running stage 'shard'" in third.stdout and "Running stage 'corpus'" not in third.stdout
    shards = json.loads((root / "data" / "shards" / "shards.json").read_text())
    assert shards and all(s["utterances"] <= 2 for s in shards)  # the new plan, not the old 4-per-shard one
    bad = sh("ns3", "--set", "shard.workerz=3", "shard")
    assert bad.returncode == 2 and "shard.workerz: unknown key" in bad.stderr
