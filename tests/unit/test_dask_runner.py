"""The Dask task runner's guards that need no cluster: which workers cannot reach a loopback Prefect API, and
the driver environment a nanny would leave changed. (tests/integration/test_dask.py runs the stages on Dask.)"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("prefect_dask")

from pipelines.common import task_runner  # noqa: E402
from pipelines.dask_runner import StageDaskRunner, environment_kept, workers_elsewhere  # noqa: E402

LOCAL = {"127.0.0.1", "10.0.0.5", "::1"}


def test_workers_on_other_machines_cannot_reach_a_loopback_api():
    workers = ["tcp://127.0.0.1:40001", "tcp://10.0.0.5:40002", "tcp://10.0.0.7:40003", "tls://[fe80::2]:40004"]
    for api in ("http://127.0.0.1:8123/api", "http://localhost:4200/api", "http://[::1]:4200/api"):
        assert workers_elsewhere(api, workers, LOCAL) == ["tcp://10.0.0.7:40003", "tls://[fe80::2]:40004"]


def test_any_worker_can_reach_an_api_on_the_network():
    workers = ["tcp://10.0.0.7:40003", "tcp://127.0.0.1:40001"]
    assert workers_elsewhere("http://10.0.0.5:4200/api", workers, LOCAL) == []
    assert workers_elsewhere("https://prefect.example.org/api", workers, LOCAL) == []
    assert workers_elsewhere("http://127.0.0.1:4200/api", ["tcp://127.0.0.1:1", "tcp://10.0.0.5:2"], LOCAL) == []


def test_environment_kept_undoes_changes_and_additions(monkeypatch):
    monkeypatch.setenv("NS3_TEST_SET", "mine")
    monkeypatch.delenv("NS3_TEST_UNSET", raising=False)
    with environment_kept(["NS3_TEST_SET", "NS3_TEST_UNSET"]):
        os.environ.update(NS3_TEST_SET="1", NS3_TEST_UNSET="1")
    assert os.environ["NS3_TEST_SET"] == "mine" and "NS3_TEST_UNSET" not in os.environ


def test_the_dask_kind_builds_the_guarded_runner():
    local = task_runner("dask", 3)
    assert type(local) is StageDaskRunner and local.cluster_kwargs == {"n_workers": 3, "threads_per_worker": 1}
    remote = task_runner("dask", 3, "tcp://scheduler:8786")
    assert type(remote) is StageDaskRunner and remote.address == "tcp://scheduler:8786"
    assert type(remote.duplicate()) is StageDaskRunner  # what a flow run enters
