"""The end-to-end flow (``ns3 run``): every registry stage in order under one parent MLflow run.

When the params are exactly what ``dvc.yaml`` sees (params.yaml, its own profile, no overrides) and the
project is a DVC repo, a stage DVC reports as up to date is skipped, and a stage that ran is recorded with
``dvc commit`` so a following ``dvc repro`` is a no-op. Otherwise every stage runs.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params, default_params_path
from pipelines.common import task_runner
from pipelines.stages import STAGE_NAMES, stage


def _dvc_repo(root: Path):
    if not (root / ".dvc").is_dir() or not (root / "dvc.yaml").exists():
        return None
    from dvc.repo import Repo

    return Repo(str(root))


def dvc_sees(params_file: str | Path | None, profile: str | None, overrides: dict | None) -> bool:
    """Whether these are exactly the params ``dvc.yaml`` sees: a file named params.yaml (DVC reads the one
    beside dvc.yaml, which is where ``params.root`` puts the repo), on its own profile, with no overrides.
    Only then can DVC's verdict "up to date" stand for these params."""
    path = Path(params_file) if params_file else default_params_path()
    if overrides or path.name != "params.yaml":
        return False
    return profile in (None, (yaml.safe_load(path.read_text()) or {}).get("profile", "mini"))


def configured_flow(name: str, params: Params):
    """The stage's Prefect flow; stages that map per-shard work get the task runner the params ask for."""
    s = stage(name)
    flow_fn = s.load_flow()
    if s.maps_shards:
        sh = params.shard
        return flow_fn.with_options(task_runner=task_runner(sh.task_runner, sh.workers, sh.dask_address))
    return flow_fn


@flow(name="ns3-pipeline")
def pipeline_flow(params: Params, stages: list[str] | None = None, use_dvc: bool = True, force: bool = False) -> dict:
    log = get_run_logger()
    wanted = {stage(s).name for s in stages} if stages else set(STAGE_NAMES)  # KeyError names the known stages
    repo = _dvc_repo(params.root) if use_dvc else None
    done: dict[str, str] = {}
    tracking.configure(params.tracking.experiment, root=params.root)
    import mlflow

    with mlflow.start_run(run_name=f"pipeline-{params.profile}") as run:
        mlflow.set_tags({"ns3.stage": "pipeline", "ns3.profile": params.profile, "ns3.variant": params.variant,
                         "git_commit": tracking.git_commit(params.root),
                         "config_hash": tracking.config_hash(params.model_dump())})
        for name in STAGE_NAMES:
            if name not in wanted:
                continue
            if repo is not None and not force and not repo.status(targets=[name]):
                log.info("stage %s is up to date (dvc status); skipped", name)
                done[name] = "up to date"
                continue
            configured_flow(name, params)(params)
            if repo is not None:
                repo.commit(name, force=True)
            done[name] = "ran"
        mlflow.log_dict(done, "stages.json")
        done["mlflow_run_id"] = run.info.run_id
    return done
