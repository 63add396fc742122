"""Stage runs log to the MLflow experiment params.yaml names (tracking.experiment)."""
from __future__ import annotations

import uuid

from ns3 import tracking
from ns3.config import load_params
from tests.helpers import PROJECT


def test_stage_run_opens_its_run_in_the_configured_experiment(tmp_path):
    import mlflow

    params = load_params(PROJECT / "params.yaml", overrides={"tracking.experiment": f"exp-{uuid.uuid4().hex[:8]}"})
    with tracking.stage_run("corpus", params={"a": 1}, root=tmp_path, experiment=params.tracking.experiment) as run:
        pass
    exp = mlflow.MlflowClient().get_experiment_by_name(params.tracking.experiment)
    assert exp is not None and run.info.experiment_id == exp.experiment_id
    assert load_params(PROJECT / "params.yaml").tracking.experiment == tracking.DEFAULT_EXPERIMENT == "ns3"
