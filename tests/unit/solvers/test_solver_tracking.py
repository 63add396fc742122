"""Solver output in MLflow: metric curves under the shared names, audio samples and spectrogram pictures."""
from __future__ import annotations

import mlflow
import pytest

from ns3 import tracking
from test_solver_codec import _solver


@pytest.mark.slow  # ~20 s, mostly creating the MLflow SQLite store
def test_codec_run_logs_curves_samples_and_pictures(tmp_path):
    tracking.configure(experiment="solver-tests", root=tmp_path)  # artifacts under tmp_path, not the repo
    with mlflow.start_run() as run:
        result = _solver(tmp_path, max_steps=2, adv_start_step=1, log_every=1, eval_every=2).run()
    assert result.steps == 2
    client = mlflow.MlflowClient()
    rec = client.get_metric_history(run.info.run_id, "codec/rec")
    assert [m.step for m in rec] == [1, 2]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "disc/loss")] == [2]
    assert client.get_metric_history(run.info.run_id, "eval/codec_rec")
    files = {f.path for f in client.list_artifacts(run.info.run_id, "samples/step_0000002")}
    assert {"samples/step_0000002/spectrograms.png", "samples/step_0000002/0_original.wav",
            "samples/step_0000002/0_reconstructed.wav"} <= files
