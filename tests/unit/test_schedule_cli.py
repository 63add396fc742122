"""`ns3 schedule` without a server: the schedule and deployment parameters it builds, the DVC rule each run
applies, and the error that names the missing server."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ns3.cli import app
from ns3.config import ConfigError
from pipelines import schedule as sched
from pipelines.pipeline import dvc_sees
from tests.helpers import make_project
from tests.servers import free_port


@pytest.fixture
def project(tmp_path) -> Path:
    root = make_project(tmp_path / "proj")
    data = yaml.safe_load((root / "params.yaml").read_text())
    data["profile"] = "ci"  # a file whose own profile is not the default
    (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


def test_cron_and_interval_schedules():
    cron = sched.make_schedule("0 3 * * 0", None, "Europe/Berlin")
    assert (cron.cron, cron.timezone) == ("0 3 * * 0", "Europe/Berlin")
    assert sched.make_schedule(None, 5, None).interval == datetime.timedelta(seconds=5)
    for cron, interval, message in [(None, None, "give one of"), ("0 3 * * 0", 5, "give one of"),
                                    ("every sunday", None, "Invalid cron"), (None, 0, "positive")]:
        with pytest.raises(sched.ScheduleError, match=message):
            sched.make_schedule(cron, interval)
    with pytest.raises(sched.ScheduleError, match="unknown time zone 'Europe/Atlantis'"):
        sched.make_schedule("0 3 * * 0", None, "Europe/Atlantis")


def test_deployment_parameters_are_validated_json(project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a relative --params is made absolute
    p = sched.deployment_parameters(Path("proj/params.yaml"), "mini", {"corpus.synth.num_speakers": 3},
                                    ["corpus", "train-codec"])
    assert p == {"params_file": str(project.resolve() / "params.yaml"), "profile": "mini",
                 "overrides": {"corpus.synth.num_speakers": 3}, "stages": ["corpus", "train_codec"]}
    assert json.loads(json.dumps(p)) == p
    assert sched.deployment_parameters(project / "params.yaml", None, None, [])["stages"] is None
    with pytest.raises(sched.ScheduleError, match="unknown stage 'tokenize'"):
        sched.deployment_parameters(project / "params.yaml", None, None, ["tokenize"])
    with pytest.raises(sched.ScheduleError, match="plain JSON values"):  # YAML reads 2024-01-01 as a date
        sched.deployment_parameters(project / "params.yaml", None, {"variant": datetime.date(2024, 1, 1)}, None)
    with pytest.raises(ConfigError, match=r"shard\.workerz"):  # a bad knob fails when scheduling, not at 03:00
        sched.deployment_parameters(project / "params.yaml", None, {"shard.workerz": 2}, None)


def test_dvc_sees_only_the_projects_own_params(project):
    params = project / "params.yaml"
    assert dvc_sees(params, None, {}) and dvc_sees(params, "ci", None)
    assert not dvc_sees(params, "mini", {})  # another profile's overlay: DVC tracks the file's own
    assert not dvc_sees(params, None, {"seed": 1})
    other = project / "other.yaml"
    other.write_text(params.read_text())
    assert not dvc_sees(other, None, {})


def test_a_scheduled_run_is_ns3_run_of_its_parameters(project, monkeypatch):
    calls = []
    monkeypatch.setattr(sched, "pipeline_flow",
                        lambda p, stages, use_dvc: calls.append((p.profile, p.seed, stages, use_dvc)) or {})
    sched.scheduled_pipeline.fn(str(project / "params.yaml"), None, {}, ["corpus"])
    sched.scheduled_pipeline.fn(str(project / "params.yaml"), None, {"seed": 7}, None)
    assert calls[0][0] == "ci" and calls[0][2:] == (["corpus"], True)
    assert calls[1][1:] == (7, None, False)


def _invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_cli_builds_the_deployment_it_serves_or_registers(project, monkeypatch):
    served, registered = [], []
    monkeypatch.setattr(sched, "require_server", lambda: "http://server/api")
    monkeypatch.setattr(sched, "serve", lambda *a: served.append(a))
    monkeypatch.setattr(sched, "register", lambda *a: registered.append(a))
    r = _invoke("--params", str(project / "params.yaml"), "--profile", "mini", "--set", "corpus.synth.num_speakers=3",
                "schedule", "--cron", "0 3 * * 0", "--stage", "corpus", "--name", "weekly")
    assert r.exit_code == 0, r.output
    name, root, when, parameters = served[0]
    assert (name, root, when.cron) == ("weekly", project.resolve(), "0 3 * * 0")
    assert parameters["profile"] == "mini" and parameters["overrides"] == {"corpus.synth.num_speakers": 3}
    r = _invoke("--params", str(project / "params.yaml"), "schedule", "--interval", "60", "--work-pool", "gpu")
    assert r.exit_code == 0, r.output
    assert registered[0][3]["stages"] is None and registered[0][4] == "gpu"
    assert "prefect worker start --pool gpu" in r.output
    assert len(served) == 1


def test_cli_without_a_server_says_how_to_start_one(project, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setattr(sched, "serve", lambda *a: pytest.fail("served without a server"))
    argv = ("--params", str(project / "params.yaml"), "schedule", "--interval", "5")
    # unset (Prefect would start a throw-away server), then set but nobody listening
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        r = _invoke(*argv)
    assert r.exit_code == 2 and "prefect server start" in r.output and "PREFECT_API_URL" in r.output
    url = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        r = _invoke(*argv)
    assert r.exit_code == 2 and f"no Prefect server answers at PREFECT_API_URL={url}" in r.output
