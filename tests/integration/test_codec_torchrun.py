"""`torchrun --nproc-per-node 2 -m pipelines.codec_train` on gloo: rank 0 alone writes and logs."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import mlflow
import pytest

from tests.helpers import TINY_CORPUS, TINY_TRAINING, deep_merge, dvc_project


@pytest.mark.slow  # ~2 min: corpus, shard and align on the tiny corpus, then two training processes
def test_two_rank_training_writes_one_summary_one_metrics_file_and_one_tagged_run(tmp_path, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "MLFLOW_TRACKING_URI": uri,
           "PATH": f"{bindir}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    settings = deep_merge(TINY_CORPUS, TINY_TRAINING)
    settings["variant"] = "two-ranks"
    root, sh = dvc_project(tmp_path / "proj", settings, env)
    for stage in ("corpus", "shard", "align"):
        sh("ns3", stage, check=True)
    out = sh("torchrun", "--standalone", "--nproc-per-node", "2", "-m", "pipelines.codec_train", "--params",
             str(root / "params.yaml"), check=True)

    summary = json.loads((root / "data" / "codec" / "train_summary.json").read_text())
    assert summary["steps"] == TINY_TRAINING["codec"]["train"]["max_steps"] and summary["world_size"] == 2, out.stdout[-2000:]
    assert json.loads((root / "metrics" / "train_codec.json").read_text())["steps"] == summary["steps"]
    # No rank left a temp file behind (each would have written and renamed its own).
    leftovers = [p for p in root.rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert not leftovers, leftovers

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("ns3")
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.info.run_name == "train_codec"]
    assert len(runs) == 1, [r.info.run_id for r in runs]  # one run, not one per rank
    run = runs[0]
    assert run.data.tags["ns3.variant"] == "two-ranks" and run.data.tags["ns3.profile"] == "test"
    assert run.data.metrics["train_codec/steps"] == summary["steps"]
