"""Scheduled retraining (``ns3 schedule``): the end-to-end flow as a Prefect deployment with a cron or interval
schedule, served by a long-lived process or registered with a process work pool.

A deployment's parameters travel through the Prefect API as JSON, so the deployed flow takes what
``ns3 run`` is given on its command line (params file, profile, ``--set`` overrides, stages), loads the
params inside each run and calls ``pipeline_flow`` like ``ns3 run`` does: when the params are plain (the
project's params.yaml on its own profile, no overrides) DVC skips the stages that are up to date, so a
scheduled run re-does only what changed since the last one.

Every flow run starts in the project folder (the params file's folder): the deployment's storage is that
folder, and its entrypoint is a module path, so a worker imports the project's ``pipelines`` package from
there (or the installed one) without remote storage or an image.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import flow

from ns3.config import default_params_path, load_params
from pipelines.pipeline import dvc_sees, pipeline_flow
from pipelines.stages import stage

FLOW_NAME = "ns3-scheduled"
ENTRYPOINT = "pipelines.schedule.scheduled_pipeline"  # a module path: no ':' so from_source imports it

NO_SERVER = (
    "ns3 schedule needs a long-lived Prefect server: the temporary server Prefect starts without one stops "
    "with this process and never schedules anything. Start one with\n"
    "    prefect server start\n"
    "and point this shell (and any worker) at it:\n"
    "    export PREFECT_API_URL=http://127.0.0.1:4200/api\n"
    "(or `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api` once for the profile)."
)


class ScheduleError(ValueError):
    """A schedule that cannot be made; the message says what to change."""


@flow(name=FLOW_NAME)
def scheduled_pipeline(params_file: str | None = None, profile: str | None = None,
                       overrides: dict[str, Any] | None = None, stages: list[str] | None = None) -> dict:
    """One scheduled run of the pipeline: ``ns3 [--params F] [--profile P] [--set k=v ...] run [--stage S ...]``."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    overrides = overrides or {}
    params = load_params(params_file, profile, overrides)
    # This run's own heartbeat lets the server mark it crashed if its process dies; the nested pipeline and
    # stage flows would each add ~1 s joining theirs and tell it nothing more.
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return pipeline_flow(params, stages=stages or None, use_dvc=dvc_sees(params_file, profile, overrides))


def deployment_parameters(params_file: str | Path | None, profile: str | None, overrides: dict[str, Any] | None,
                          stages: list[str] | None) -> dict[str, Any]:
    """The deployment's parameters, validated now so that a bad knob fails here rather than at 03:00.

    The params file is made absolute (runs start in the project folder, but the deployment should say which
    file it reads); stages get their registry names. Raises ``ConfigError`` for bad params and
    ``ScheduleError`` for an unknown stage or an override JSON cannot carry.
    """
    path = Path(params_file).resolve() if params_file else default_params_path()
    overrides = dict(overrides or {})
    try:
        same = json.loads(json.dumps(overrides)) == overrides
    except (TypeError, ValueError):
        same = False
    if not same:
        # YAML reads some values (dates, timestamps) as objects JSON has no type for; quote them.
        raise ScheduleError(f"--set values must be plain JSON values (numbers, strings, lists, mappings) to "
                            f"travel as deployment parameters; got {overrides!r}")
    load_params(path, profile, overrides)
    try:
        names = [stage(s).name for s in stages] if stages else None
    except KeyError as e:
        raise ScheduleError(e.args[0]) from None
    return {"params_file": str(path), "profile": profile, "overrides": overrides, "stages": names}


def make_schedule(cron: str | None, interval: float | None, timezone: str | None = None):
    """Exactly one of a cron string (in ``timezone``, default UTC) or an interval in seconds."""
    from prefect.schedules import Cron, Interval

    if (cron is None) == (interval is None):
        raise ScheduleError('give one of --cron (e.g. "0 3 * * 0": Sundays at 03:00) or --interval SECONDS')
    if timezone is not None:
        # Prefect checks the zone only when the server stores the schedule; say it before anything is created.
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone {timezone!r}; use an IANA name such as Europe/Berlin") from None
    try:
        if cron is not None:
            return Cron(cron, timezone=timezone)
        if interval <= 0:
            raise ValueError(f"--interval must be a positive number of seconds, got {interval:g}")
        return Interval(interval, timezone=timezone)
    except ValueError as e:
        raise ScheduleError(str(e)) from None


def require_server() -> str:
    """The API URL of a reachable Prefect server; ``ScheduleError`` saying how to start one otherwise."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ScheduleError(NO_SERVER)
    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        raise ScheduleError(f"no Prefect server answers at PREFECT_API_URL={url} ({error}).\n\n{NO_SERVER}")
    return url


def _deployment(name: str, project: Path, schedule, parameters: dict[str, Any], work_pool: str | None = None):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    source = flow.from_source(str(project), ENTRYPOINT)
    return source, dict(
        name=name, schedules=[schedule], parameters=parameters, tags=["ns3"],
        description=f"ns3 run on {parameters['params_file']}, scheduled by `ns3 schedule`",
        # Runs share the project's data folder and DVC lock, so they must not overlap. A tick that comes while
        # a run is still going is cancelled rather than queued: the next tick sees its changes anyway, and
        # a pipeline slower than its schedule would otherwise pile up a backlog without end.
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        **({"work_pool_name": work_pool} if work_pool else {}),
    )


def serve(name: str, project: Path, schedule, parameters: dict[str, Any]) -> None:
    """Create the deployment and run its scheduled flow runs from this process until it is stopped."""
    from prefect import serve as prefect_serve

    source, kwargs = _deployment(name, project, schedule, parameters)
    prefect_serve(source.to_deployment(**kwargs))


def _ensure_process_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=name, type=ProcessWorker.type, base_job_template=ProcessWorker.get_default_base_job_template()))
            return
    if pool.type != ProcessWorker.type:
        # Other pool types run flows in containers or remote machines, which would need an image or remote
        # storage holding the project; a process worker reads it from the project folder.
        raise ScheduleError(f"work pool {name!r} is a {pool.type!r} pool; ns3 schedule registers with process "
                            f"pools (create one: prefect work-pool create NAME --type process)")


def register(name: str, project: Path, schedule, parameters: dict[str, Any], work_pool: str) -> str:
    """Create (or update) the deployment on ``work_pool`` (a process pool, created if missing); returns its id.

    A worker started with ``prefect worker start --pool <work_pool>`` on a machine that sees ``project``
    runs the scheduled flow runs.
    """
    _ensure_process_pool(work_pool)
    source, kwargs = _deployment(name, project, schedule, parameters, work_pool)
    return str(source.deploy(**kwargs, build=False, push=False, print_next_steps=False, ignore_warnings=True))
