"""What every stage flow shares: the task runner, the per-shard map, MLflow stage runs, DVC metrics files."""
from __future__ import annotations

import os
import socket
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from prefect import get_run_logger, task, unmapped
from prefect.cache_policies import NONE

from ns3.config import Params
from ns3.tracking import flatten, log_metrics

def task_runner(kind: str, workers: int, dask_address: str | None = None):
    """The Prefect task runner a data stage maps its shards on."""
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=workers)
    try:
        from pipelines.dask_runner import StageDaskRunner
    except ImportError:
        raise RuntimeError("task_runner 'dask' needs prefect-dask: pip install 'ns3[dask]'") from None
    if dask_address:
        return StageDaskRunner(address=dask_address)
    return StageDaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})


def worker_threads(kind: str, workers: int, dask_address: str | None = None) -> int | None:
    """Torch threads per mapped task so that workers x threads <= this machine's cores.

    A remote Dask cluster's workers are sized by whoever started it (None: leave torch's default there, which
    is the worker's OMP_NUM_THREADS: 1 under Dask's nanny unless ``dask worker`` was started with it set).
    """
    from ns3.runtime import threads_per_worker

    return None if kind == "dask" and dask_address else threads_per_worker(workers)


def _where() -> str:
    """The process running a mapped call: its Dask worker's address, else host and pid."""
    if "distributed" in sys.modules:  # always imported in a Dask worker; not worth importing to find out
        from distributed import get_worker

        try:
            return get_worker().address
        except ValueError:  # not inside a Dask task
            pass
    return f"{socket.gethostname()} pid {os.getpid()}"


@task(retries=2, retry_delay_seconds=2, cache_policy=NONE, task_run_name="shard-work")
def _apply(fn: Callable, item: Any) -> tuple[Any, str]:
    return fn(item), _where()


def prefect_map(fn: Callable, items: list) -> list:
    """Map ``fn`` over ``items`` as Prefect tasks on the current flow's task runner (results in order).

    Logs where the calls ran (a Dask worker's address, or host and pid), so a stage's log shows whether its
    shards really went to the cluster and which worker wrote which share.
    """
    futures = _apply.map(unmapped(fn), items)
    done = [f.result() for f in futures]
    where = Counter(w for _, w in done)
    name = getattr(getattr(fn, "func", fn), "__name__", "shard work")
    get_run_logger().info("%s: %d shard task(s) ran on %s", name, len(done),
                          ", ".join(f"{w} ({n})" for w, n in sorted(where.items())))
    return [r for r, _ in done]


def write_metrics(params: Params, name: str, metrics: dict) -> Path:
    """``<paths.metrics>/<name>.json`` (a DVC metrics file), written atomically."""
    from ns3.recipes.state import write_json_atomic

    return write_json_atomic(params.resolve("metrics") / f"{name}.json", metrics)


def log_stage_metrics(stage: str, metrics: dict) -> None:
    """Flatten nested numeric metrics to ``<stage>/<a>/<b>`` MLflow keys (the namespace used everywhere)."""
    flat = {f"{stage}/{k.replace('.', '/')}": v for k, v in flatten(metrics).items() if isinstance(v, (int, float))}
    log_metrics(flat)


def data_dir(params: Params, *parts: str) -> Path:
    return params.resolve("data").joinpath(*parts)


def training_shards(params: Params, name: str) -> str | Path:
    """Where a training stage streams the shard set ``name`` ("shards" or "codes") from: ``<paths.shards_url>/
    <name>`` when that is set (a URL, or a folder relative to the params file), else ``<paths.data>/<name>``."""
    from ns3.data import storage

    url = params.paths.shards_url
    if url is None:
        return data_dir(params, name)
    return storage.join(url, name) if storage.is_url(url) else params.resolve("shards_url") / name

