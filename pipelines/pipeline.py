"""The end-to-end flow (``ns3 run``): every stage in order under one parent MLflow run.

When the params are exactly what ``dvc.yaml`` sees (params.yaml, its own profile, no overrides) and the
project is a DVC repo, a stage DVC reports as up to date is skipped, and a stage that ran is recorded with
``dvc commit`` so a following ``dvc repro`` is a no-op. Otherwise every stage runs.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params
from pipelines.common import STAGES


def _dvc_repo(root: Path):
    if not (root / ".dvc").is_dir() or not (root / "dvc.yaml").exists():
        return None
    from dvc.repo import Repo

    return Repo(str(root))


def stage_flows() -> dict:
    from pipelines import align_flow, codec_flows, data_flows, report_flow

    return {
        "corpus": data_flows.corpus_flow, "shard": data_flows.shard_flow, "align": align_flow.align_flow,
        "train_codec": codec_flows.train_codec_flow, "evaluate_codec": codec_flows.evaluate_codec_flow,
        "report": report_flow.report_flow,
    }


@flow(name="ns3-pipeline")
def pipeline_flow(params: Params, stages: list[str] | None = None, use_dvc: bool = True, force: bool = False) -> dict:
    from pipelines.data_flows import configured

    log = get_run_logger()
    stages = list(stages or STAGES)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; stages are {list(STAGES)}")
    flows = stage_flows()
    repo = _dvc_repo(params.root) if use_dvc else None
    done: dict[str, str] = {}
    tracking.configure(root=params.root)
    import mlflow

    with mlflow.start_run(run_name=f"pipeline-{params.profile}") as run:
        mlflow.set_tags({"ns3.stage": "pipeline", "ns3.profile": params.profile, "git_commit": tracking.git_commit(params.root),
                         "config_hash": tracking.config_hash(params.model_dump())})
        for name in STAGES:
            if name not in stages:
                continue
            if repo is not None and not force and not repo.status(targets=[name]):
                log.info("stage %s is up to date (dvc status); skipped", name)
                done[name] = "up to date"
                continue
            configured(flows[name], params)(params)
            if repo is not None:
                repo.commit(name, force=True)
            done[name] = "ran"
        mlflow.log_dict(done, "stages.json")
        done["mlflow_run_id"] = run.info.run_id
    return done
