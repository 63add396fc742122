"""Real servers on loopback for the tests: started the documented way as their own process group, waited for
until they answer, and stopped (the whole group) when the test is done. A server that never answers fails the
test with the tail of its log, so a broken start says why."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

BIN = Path(sys.executable).parent  # console scripts of the test venv (prefect, mlflow, moto_server, dask, ...)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str | None, port: int) -> bool:
    try:
        if url is None:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status < 500
    except OSError:
        return False


@contextmanager
def loopback_server(argv: Sequence[str], port: int, log: Path, *, health_url: str | None = None,
                    env: dict[str, str] | None = None, startup_s: float = 120.0, cwd: Path | None = None) -> Iterator[str]:
    """Run ``argv`` until the block ends; yields ``http://127.0.0.1:<port>``.

    Ready when ``health_url`` answers (below HTTP 500) or, without one, when the port accepts a connection.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")
    proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + startup_s
        while not _answers(health_url, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                out.flush()
                tail = log.read_text(errors="replace")[-3000:]
                state = f"exited with {proc.returncode}" if proc.poll() is not None else f"no answer in {startup_s:.0f} s"
                raise RuntimeError(f"{argv[0]} {state}; its log ({log}):\n{tail}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        out.close()


def stop(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after ``grace_s``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)
    except ProcessLookupError:
        pass
