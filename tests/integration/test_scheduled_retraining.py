"""`ns3 schedule` against a real `prefect server start` on loopback: a served interval schedule whose runs let
DVC skip what the first one did, and a cron deployment on a process work pool run by `prefect worker start`."""
from __future__ import annotations

import datetime
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.helpers import TINY_CORPUS, dvc_project, make_project
from tests.servers import BIN, free_port, loopback_server, stop

pytestmark = pytest.mark.server

FLOW = "ns3-scheduled"
DEADLINE_S = 420.0  # generous: two cores shared with other test processes; a pass takes well under it


@dataclass
class Server:
    api: str
    log: Path


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {"PREFECT_HOME": str(tmp / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false"}
    log = tmp / "server.log"
    argv = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with loopback_server(argv, port, log, health_url=f"http://127.0.0.1:{port}/api/health", env=env, startup_s=240):
        yield Server(f"http://127.0.0.1:{port}/api", log)


def _env(server: Server, tmp: Path) -> dict[str, str]:
    """What a user's shell has after `export PREFECT_API_URL=...`, plus fast polling for a short test."""
    return {**os.environ, "PREFECT_API_URL": server.api, "PREFECT_HOME": str(tmp / "client-home"),
            "PREFECT_RUNNER_POLL_FREQUENCY": "2", "PREFECT_WORKER_QUERY_SECONDS": "2",
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "PATH": f"{BIN}:{os.environ['PATH']}"}


@contextmanager
def _running(argv: list[str], log: Path, env: dict, cwd: Path) -> Iterator[subprocess.Popen]:
    """A command that blocks (`ns3 schedule` serving, `prefect worker start`), stopped with its process group
    (the flow runs it started included) when the block ends."""
    with open(log, "ab") as out:
        proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)
        try:
            yield proc
        finally:
            stop(proc)


@contextmanager
def _client(server: Server):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api}):
        with get_client(sync_client=True) as client:
            yield client


def _tails(*logs: Path) -> str:
    return "\n".join(f"--- {log} ---\n{log.read_text(errors='replace')[-4000:]}" for log in logs if log.exists())


def _wait(what: str, probe: Callable, logs: list[Path], proc: subprocess.Popen | None = None):
    """``probe()`` until it returns something truthy; fails with the logs when time is up or ``proc`` died."""
    deadline = time.monotonic() + DEADLINE_S
    while not (got := probe()):
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: {proc.args[0]} exited with {proc.returncode}\n{_tails(*logs)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {DEADLINE_S:.0f} s\n{_tails(*logs)}")
        time.sleep(2)
    return got


def _runs(client, deployment_id) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
                                 sort=FlowRunSort.START_TIME_ASC)


def _completed(client, deployment_id, at_least: int, logs: list[Path]):
    """The deployment's completed runs once there are ``at_least``; a failed or crashed run fails the test."""
    from prefect.client.schemas.objects import StateType

    def probe():
        runs = _runs(client, deployment_id)
        bad = [r for r in runs if r.state_type in (StateType.FAILED, StateType.CRASHED)]
        if bad:
            pytest.fail(f"flow run {bad[0].name} ended {bad[0].state_type.value}: {bad[0].state.message}\n"
                        f"{_tails(*logs)}")
        done = [r for r in runs if r.state_type == StateType.COMPLETED]
        return done if len(done) >= at_least else None

    return probe


def _deployment(client, name: str):
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_deployment_by_name(f"{FLOW}/{name}")
    except ObjectNotFound:
        return None


def _stage_results(tmp: Path) -> list[dict]:
    """What each finished pipeline run did (its MLflow `stages.json`), oldest first."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ns3")
    runs = client.search_runs([exp.experiment_id], "tags.`ns3.stage` = 'pipeline' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time ASC"])
    return [mlflow.artifacts.load_dict(f"{r.info.artifact_uri}/stages.json") for r in runs]


def test_served_schedule_reruns_the_pipeline_and_dvc_skips_what_is_done(prefect_server, tmp_path):
    env = _env(prefect_server, tmp_path)
    root, sh = dvc_project(tmp_path / "proj", TINY_CORPUS, env)  # plain params.yaml: DVC decides what runs
    log = tmp_path / "serve.log"
    logs = [log, prefect_server.log]
    with _running([BIN / "ns3", "schedule", "--interval", "5", "--stage", "corpus", "--name", "every-5s"],
                  log, env, cwd=root) as serving:
        with _client(prefect_server) as client:
            dep = _wait("the deployment", lambda: _deployment(client, "every-5s"), logs, serving)
            _wait("two completed scheduled runs", _completed(client, dep.id, 2, logs), logs, serving)

    assert dep.parameters == {"params_file": str((root / "params.yaml").resolve()), "profile": None,
                              "overrides": {}, "stages": ["corpus"]}
    assert [s.schedule.interval for s in dep.schedules] == [datetime.timedelta(seconds=5)]
    # Runs of one project never overlap: a tick during a run is cancelled, not queued behind it.
    assert dep.global_concurrency_limit.limit == 1 and dep.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert dep.work_pool_name is None  # served by the `ns3 schedule` process itself

    results = _stage_results(tmp_path)
    assert len(results) >= 2, _tails(*logs)
    # The first run made the corpus; every later run found it up to date and left it alone.
    assert results[0] == {"corpus": "ran"}
    assert all(r == {"corpus": "up to date"} for r in results[1:]), results
    assert (root / "data" / "raw" / "corpus.json").exists()
    assert "corpus" in (root / "dvc.lock").read_text()
    assert "up to date" in sh("dvc", "status", "corpus", check=True).stdout


def test_cron_deployment_on_a_work_pool_runs_on_a_worker_in_the_project(prefect_server, tmp_path):
    env = _env(prefect_server, tmp_path)
    root = make_project(tmp_path / "proj")  # no DVC repo; with overrides every stage runs anyway
    elsewhere = tmp_path / "elsewhere"  # neither command runs in the project folder
    elsewhere.mkdir()
    sets = {"corpus.synth.num_speakers": 3, "corpus.synth.utts_per_speaker": 2, "corpus.synth.style_actors": 1,
            "corpus.synth.workers": 1}
    argv = [BIN / "ns3", "--params", root / "params.yaml", "--profile", "ci",
            *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")],
            "schedule", "--cron", "0 3 * * 0", "--timezone", "Europe/Berlin", "--stage", "corpus", "--name", "weekly",
            "--work-pool", "ns3-test"]
    out = subprocess.run([str(a) for a in argv], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    assert "prefect worker start --pool ns3-test" in out.stdout

    log = tmp_path / "worker.log"
    logs = [log, prefect_server.log]
    with _client(prefect_server) as client:
        dep = client.read_deployment_by_name(f"{FLOW}/weekly")
        assert dep.parameters == {"params_file": str((root / "params.yaml").resolve()), "profile": "ci",
                                  "overrides": sets, "stages": ["corpus"]}
        assert [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules] == [("0 3 * * 0", "Europe/Berlin")]
        assert dep.work_pool_name == "ns3-test" and client.read_work_pool("ns3-test").type == "process"
        # Sunday 03:00 is far off: run the deployment now, as `prefect deployment run ns3-scheduled/weekly` does.
        run = client.create_flow_run_from_deployment(dep.id)
        with _running([BIN / "prefect", "worker", "start", "--pool", "ns3-test"], log, env, cwd=elsewhere) as worker:
            done = _wait("the worker's run", _completed(client, dep.id, 1, logs), logs, worker)
    assert [r.id for r in done] == [run.id] and done[0].parameters == dep.parameters

    raw = root / "data" / "raw"
    speakers = [p for p in (raw / "corpus").iterdir() if p.is_dir()]
    assert len(speakers) == 3  # the --set values reached the run, on top of the ci profile
    assert (raw / "corpus.json").exists() and not (elsewhere / "data").exists()
