"""The Dask task runner the data stages map their shards on (``shard.task_runner: dask``).

A Prefect task on a Dask worker runs Prefect's task engine in that worker process, which records the task run
through the Prefect API named in the settings the driver sends along with each task. Without
``PREFECT_API_URL`` the driver talks to a temporary server it started itself, and those settings name no
server at all; every worker process then starts a temporary server of its own (tens of seconds each, once per
worker) and records the shard tasks there, where the flow run never shows them. ``StageDaskRunner`` sends the
driver's temporary server instead. That server listens on this machine's loopback only: workers on other
machines need a Prefect server they can reach, and the runner says so before any shard is sent.

A temporary LocalCluster starts its workers through nannies in this process, and a nanny sets its
``distributed.nanny.pre-spawn-environ`` (``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``, ...) in *this* process's
environment before spawning; left there, every process started from this one afterwards (MFA in the align
stage, any subprocess of a later stage) would inherit one OpenMP thread. The runner puts those variables back
once the workers are up.
"""
from __future__ import annotations

import ipaddress
import os
from contextlib import ExitStack, contextmanager
from typing import Iterable, Iterator
from urllib.parse import urlsplit

from prefect_dask import DaskTaskRunner


def api_url_for_workers() -> tuple[str, bool]:
    """The Prefect API the workers must report to, and whether it is this process's temporary server."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if url:
        return url, False
    from prefect.server.api.server import SubprocessASGIServer

    # The flow run already started it (Prefect keeps one per process); start() is a no-op then.
    server = SubprocessASGIServer()
    server.start()
    return server.api_url, True


def _host(address: str) -> str:
    """'tcp://10.0.0.7:40123' or 'http://[::1]:4200/api' -> '10.0.0.7' / '::1'."""
    return urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_addresses() -> set[str]:
    """Every address of this machine's network interfaces (a worker there can reach our loopback)."""
    import psutil  # a dependency of distributed

    return {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}


def workers_elsewhere(api_url: str, worker_addresses: Iterable[str], local: set[str]) -> list[str]:
    """Workers that cannot reach ``api_url``: it is a loopback address and they run on another machine."""
    if not _is_loopback(_host(api_url)):
        return []
    return sorted(w for w in worker_addresses if not _is_loopback(_host(w)) and _host(w) not in local)


@contextmanager
def environment_kept(keys: Iterable[str]) -> Iterator[None]:
    """Whatever happens to ``os.environ[key]`` for ``keys`` inside the block is undone when it ends."""
    before = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _nanny_environment_keys() -> list[str]:
    import dask

    return [*dask.config.get("distributed.nanny.pre-spawn-environ", {}), "PYTHONHASHSEED"]


class StageDaskRunner(DaskTaskRunner):
    """``DaskTaskRunner`` whose workers record their task runs in the flow's own Prefect API."""

    def __enter__(self):
        from prefect.settings import PREFECT_API_URL, temporary_settings

        self._pinned = ExitStack()
        # Undone at the end as well: a nanny that restarts a crashed worker mid-stage sets its variables again.
        self._pinned.enter_context(environment_kept(_nanny_environment_keys()))
        url, temporary = api_url_for_workers()
        if temporary:
            # Entered here, left in __exit__: the flow body (which submits every shard task) runs in between.
            self._pinned.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
        try:
            super().__enter__()
        except BaseException:
            self._pinned.close()
            raise
        try:
            # Connecting now (not at the first shard) starts a temporary cluster's workers, and puts the environment
            # back before the flow body starts anything (MFA); it also fails here, early, for a scheduler that
            # does not answer.
            with environment_kept(_nanny_environment_keys()):
                workers = self.client.scheduler_info()["workers"]
            far = workers_elsewhere(url, workers, local_addresses())
            if far:
                raise RuntimeError(
                    f"Dask workers on other machines ({', '.join(far[:3])}{', ...' if len(far) > 3 else ''}) cannot "
                    f"reach the Prefect API at {url}, on this machine's loopback"
                    f"{' (a temporary server: PREFECT_API_URL is not set)' if temporary else ''}. Start a Prefect "
                    "server they can reach (`prefect server start --host 0.0.0.0`) and set "
                    "PREFECT_API_URL=http://<this machine>:4200/api where you run ns3.")
        except BaseException as e:
            self.__exit__(type(e), e, e.__traceback__)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self._pinned.close()
