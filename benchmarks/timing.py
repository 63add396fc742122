"""The one timing rule the benchmarks share: one warm-up call, then the median of ``repeats`` timed calls."""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls, after one untimed warm-up call
    (allocator growth, one-off kernel selection)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@contextmanager
def contending_process() -> Iterator[None]:
    """One other CPU-bound process (``python -c "while True: pass"``) for the duration of the block: how a
    stage behaves on a user's busy laptop. Fair sharing of 2 cores among 3 busy threads costs 1.5x."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let the scheduler see it
        yield
    finally:
        busy.kill()
        busy.wait()
