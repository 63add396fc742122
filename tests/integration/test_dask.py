"""shard -> align -> extract_codes on Dask, against the thread runner: a temporary LocalCluster (two worker
processes, one thread each), and a real ``dask scheduler`` with two ``dask worker`` processes on loopback driven
by ``ns3 run`` exactly as a user types it (no Prefect server configured).

Every output file must equal the thread runner's (bytes; JSON files without their wall-clock times and absolute
paths), and the per-shard work must have run in the Dask workers: the stage logs name the worker that ran each
shard task (a thread runner names this process), and for the real cluster the scheduler's own task stream
must show every task on the two workers."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT, make_project
from tests.servers import BIN, free_port, loopback_server

pytestmark = pytest.mark.server

# Small enough for two cores: the session's micro corpus (24 utterances) in 4 shards (2 train, 1 valid,
# 1 test), a one-round tiny aligner, a tiny random codec.
OVERLAY = {
    "shard": {"utts_per_shard": 8, "splits": {"valid_speakers": 1, "test_speakers": 1}, "workers": 2},
    "align": {"aligner": {"channels": 16, "dilations": [1]},
              "schedule": {"rounds": 1, "flat_epochs": 1, "epochs_per_round": 1}},
}
STAGES = ("shard", "align", "extract_codes")
# Per-shard calls each stage maps: 4 shards written, 2 train shards scanned, 4 aligned, 4 extracted.
EXPECTED_TASKS = {"write_shard": 4, "scan_shard": 2, "align_shard": 4, "extract_shard": 4}
# The only fields allowed to differ between runs: wall-clock durations (metrics.json, the .done sidecars) and
# absolute paths into each run's own project folder (a result's `output`, code_info.json's `codec_path`).
VOLATILE = {"seconds", "train_seconds", "output", "codec_path"}
PLACEMENT = re.compile(r"(\w+): (\d+) shard task\(s\) ran on (.+)$")


def _tiny_codec(path: Path) -> Path:
    import torch

    from ns3.codec import FACodec, FACodecHParams
    from ns3.codec.checkpoint import save_codec

    hp = FACodecHParams.mini(encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4,
                             ffn_channels=32, timbre_layers=1, heads=False, anti_alias=False, decoder="istft",
                             istft_channels=16, istft_layers=1)
    torch.manual_seed(0)
    save_codec(path, FACodec(hp))
    return path


def _project(root: Path, corpus: Path, codec: Path) -> Path:
    """A project on the `test` profile whose corpus stage is done (pointing at ``corpus``) and codec trained."""
    make_project(root, OVERLAY)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["profile"] = "test"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    raw = root / "data" / "raw"
    raw.mkdir(parents=True)
    # What `ns3 corpus` records for a corpus that already exists.
    (raw / "corpus.json").write_text(json.dumps({"source": "librispeech", "layout": "librispeech", "root": str(corpus),
                                                  "reference_alignments": str(corpus / "reference_alignments.jsonl"),
                                                  "style": None}))
    (root / "data" / "codec").mkdir()
    shutil.copy(codec, root / "data" / "codec" / "codec.pt")
    return root


@contextmanager
def _stage_log():
    """Messages of the flow-run loggers while the block runs."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger, handler = logging.getLogger("prefect.flow_runs"), Keep()
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def _run_in_process(root: Path, overrides: dict) -> list[str]:
    """The three stages as `ns3 shard`, `ns3 align`, `ns3 extract-codes` run them (configured_flow)."""
    from ns3.config import load_params
    from pipelines.pipeline import configured_flow

    params = load_params(root / "params.yaml", overrides=overrides)
    with _stage_log() as lines:
        for name in STAGES:
            configured_flow(name, params)(params)
    return lines


def _placements(lines) -> dict[str, Counter]:
    """{mapped function: Counter(where it ran -> calls)} from the stage logs' placement lines."""
    out: dict[str, Counter] = {}
    for line in lines:
        m = PLACEMENT.search(line)
        if m:
            where = Counter({w: int(n) for w, n in re.findall(r"(.+?) \((\d+)\)(?:, |$)", m.group(3))})
            assert sum(where.values()) == int(m.group(2)), line
            out.setdefault(m.group(1), Counter()).update(where)
    return out


def _strip(doc):
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in VOLATILE}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def _fingerprint(data: Path) -> dict[str, str]:
    """sha256 of every output file under ``data/{shards,align,codes}``: of its bytes, or for JSON (lines) files
    of the content without the VOLATILE fields."""
    out = {}
    for sub in ("shards", "align", "codes"):
        for p in sorted((data / sub).rglob("*")):
            if not p.is_file():
                continue
            if p.suffix in (".json", ".done", ".jsonl"):
                text = p.read_text()
                doc = [json.loads(x) for x in text.splitlines() if x.strip()] if p.suffix == ".jsonl" else json.loads(text)
                blob = json.dumps(_strip(doc), sort_keys=True).encode()
            else:
                blob = p.read_bytes()
            out[str(p.relative_to(data))] = hashlib.sha256(blob).hexdigest()
    return out


@pytest.fixture(scope="module")
def codec(tmp_path_factory) -> Path:
    return _tiny_codec(tmp_path_factory.mktemp("codec") / "codec.pt")


@pytest.fixture(scope="module")
def threads_run(micro_corpus, codec, prefect_harness, tmp_path_factory):
    root = _project(tmp_path_factory.mktemp("threads"), micro_corpus, codec)
    return root, _run_in_process(root, {"shard.task_runner": "threads"})


@pytest.fixture(scope="module")
def local_cluster_run(micro_corpus, codec, prefect_harness, tmp_path_factory):
    root = _project(tmp_path_factory.mktemp("dask-local"), micro_corpus, codec)
    keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")
    before = {k: os.environ.get(k) for k in keys}
    lines = _run_in_process(root, {"shard.task_runner": "dask"})
    return root, lines, before, {k: os.environ.get(k) for k in keys}


@pytest.fixture(scope="module")
def scheduler_run(micro_corpus, codec, tmp_path_factory):
    """A `dask scheduler` and two `dask worker`s, each its own process on loopback, started from a folder that
    is neither the repository nor the project (paths must not be relative to a worker's cwd); then `ns3 run`
    in another process, with no Prefect server configured, as a user would type it."""
    import torch
    from distributed import Client, get_task_stream

    from ns3.runtime import threads_per_worker

    tmp = tmp_path_factory.mktemp("dask-scheduler")
    root = _project(tmp / "proj", micro_corpus, codec)
    elsewhere = tmp / "workers"
    elsewhere.mkdir()
    # Torch threads per worker task, set the way a user sizes workers to their cores (without it Dask's nanny
    # starts each with OMP_NUM_THREADS=1): the thread runner's count, so the float work, and the bytes, compare.
    env = {"PYTHONPATH": str(PROJECT), "OMP_NUM_THREADS": str(threads_per_worker(2))}
    port, nannies = free_port(), (free_port(), free_port())
    address = f"tcp://127.0.0.1:{port}"
    logs = [tmp / "w0.log", tmp / "w1.log"]
    with loopback_server([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                          "--dashboard-address", "127.0.0.1:0"],  # its HTTP server (health, metrics) stays on loopback
                         port, tmp / "scheduler.log", cwd=elsewhere, env=env), \
         loopback_server(_worker(address, "w0", nannies[0], elsewhere), nannies[0], logs[0], cwd=elsewhere, env=env), \
         loopback_server(_worker(address, "w1", nannies[1], elsewhere), nannies[1], logs[1], cwd=elsewhere, env=env), \
         Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
        workers = set(client.scheduler_info()["workers"])
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
        # The aligner trains in the driver: give `ns3` this process's torch thread count, which trained the
        # reference aligner (1e-8 weight differences otherwise).
        run_env.update(PREFECT_HOME=str(tmp / "prefect"), MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
                       OMP_NUM_THREADS=str(torch.get_num_threads()))
        with get_task_stream(client=client) as stream:
            out = subprocess.run(
                [str(BIN / "ns3"), "--params", str(root / "params.yaml"), "--set", "shard.task_runner=dask",
                 "--set", f"shard.dask_address={address}", "run", *(a for s in STAGES for a in ("--stage", s))],
                cwd=root, env=run_env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"ns3 run failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return {"root": root, "lines": (out.stdout + out.stderr).splitlines(), "workers": workers, "tasks": stream.data,
            "worker_logs": [p.read_text(errors="replace") for p in logs]}


def _worker(address: str, name: str, nanny_port: int, cwd: Path) -> list[str]:
    return [str(BIN / "dask"), "worker", address, "--name", name, "--nthreads", "1",
            "--nanny-port", str(nanny_port), "--no-dashboard", "--local-directory", str(cwd / name)]


def _assert_same_outputs(run: Path, reference: Path) -> None:
    ours, theirs = _fingerprint(run / "data"), _fingerprint(reference / "data")
    for sub in ("shards", "align", "codes"):  # a comparison of nothing would prove nothing
        assert sum(k.startswith(f"{sub}/") and k.endswith(".tar") for k in theirs) == 4, sorted(theirs)
    assert sorted(ours) == sorted(theirs)
    assert [k for k in theirs if ours[k] != theirs[k]] == []


def test_thread_runner_runs_the_shard_work_in_this_process(threads_run):
    _, lines = threads_run
    placed = _placements(lines)
    assert {k: sum(v.values()) for k, v in placed.items()} == EXPECTED_TASKS
    assert {w for v in placed.values() for w in v} == {f"{socket.gethostname()} pid {os.getpid()}"}


def test_local_cluster_matches_the_thread_runner(threads_run, local_cluster_run):
    _assert_same_outputs(local_cluster_run[0], threads_run[0])


def test_local_cluster_ran_the_shard_work_on_its_workers(local_cluster_run):
    placed = _placements(local_cluster_run[1])
    assert {k: sum(v.values()) for k, v in placed.items()} == EXPECTED_TASKS
    where = {w for v in placed.values() for w in v}
    # Only a Dask worker has an address to report; this process would report its pid.
    assert where and all(re.fullmatch(r"tcp://127\.0\.0\.1:\d+", w) for w in where), where
    # One temporary cluster per stage, two workers each.
    assert all(len(placed[f]) <= 2 for f in EXPECTED_TASKS)


def test_local_cluster_leaves_this_process_environment_as_it_was(local_cluster_run):
    """The clusters' nannies set OMP_NUM_THREADS=1 (and more) here to spawn their workers; processes this one
    starts later must not inherit that."""
    _, _, before, after = local_cluster_run
    assert after == before


def test_scheduler_and_workers_match_the_thread_runner(threads_run, scheduler_run):
    _assert_same_outputs(scheduler_run["root"], threads_run[0])


def test_scheduler_ran_the_shard_work_on_the_two_workers(scheduler_run):
    run = scheduler_run
    placed = _placements(run["lines"])
    assert {k: sum(v.values()) for k, v in placed.items()} == EXPECTED_TASKS
    assert {w for v in placed.values() for w in v} == run["workers"]  # both workers took shards
    # The scheduler's own record: every shard task finished on one of the two workers.
    shard_tasks = [t for t in run["tasks"] if t["key"].startswith("_apply-")]
    assert len(shard_tasks) == sum(EXPECTED_TASKS.values()), [t["key"] for t in run["tasks"]]
    assert {t["worker"] for t in shard_tasks} == run["workers"] and all(t["status"] == "OK" for t in shard_tasks)
    # Prefect's task engine ran on the workers and reported to the driver's temporary server, instead of
    # starting one of its own in each worker (what happens when the runner sends no API URL along).
    logs = "".join(run["worker_logs"])
    assert logs.count("Task run 'shard-work' - Finished in state Completed()") == sum(EXPECTED_TASKS.values())
    assert "Starting temporary server" not in logs


def test_workers_on_other_machines_and_a_loopback_prefect_api_fail_before_any_shard(prefect_harness, monkeypatch):
    """Such workers could never report their task runs: the runner stops with what to do instead, before any
    shard task is sent. (Which addresses count as other machines: tests/unit/test_dask_runner.py.)"""
    from prefect import flow

    import pipelines.dask_runner as dask_runner
    from pipelines.common import prefect_map

    monkeypatch.setattr(dask_runner, "workers_elsewhere", lambda api, workers, local: ["tcp://10.9.9.9:40000"])
    ran: list = []
    runner = dask_runner.StageDaskRunner(cluster_kwargs={"n_workers": 1, "processes": False, "threads_per_worker": 1})

    @flow(task_runner=runner)
    def stage():
        return prefect_map(ran.append, [1])

    with pytest.raises(RuntimeError, match=r"10\.9\.9\.9.*prefect server start --host 0\.0\.0\.0"):
        stage()
    assert ran == []
