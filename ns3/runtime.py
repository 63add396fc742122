"""CPU budget of a process: how many torch threads each worker may use, and OpenMP that sleeps.

Two things make a stage far slower than its share of a busy machine (measured in benchmarks/):
- oversubscription: N pool workers each running torch with one thread per core ask for N x cores
  threads, and every parallel region waits for its slowest thread;
- spinning: OpenMP threads busy-wait between parallel regions, stealing the cores other processes
  (and our own workers) need. ``OMP_WAIT_POLICY=PASSIVE`` makes them sleep instead. It is read when
  the OpenMP runtime loads, i.e. on ``import torch``, so `ns3/__init__.py` sets it first.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def passive_openmp() -> None:
    """Ask OpenMP threads to sleep rather than spin (a user's explicit setting wins)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's or taskset's share)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` concurrent workers so that workers x threads <= cores."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


def pin_torch_threads(n: int | None) -> None:
    """Set torch's intra-op thread count in a worker (None: leave it). Idempotent, so concurrent
    thread-pool workers that all pass the same ``threads_per_worker`` value agree."""
    if n is None:
        return
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(int(n))


@contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Run a block with ``n`` torch intra-op threads (None: leave as is); restores the previous count.

    torch's thread count is per process, so concurrent thread-pool workers share it: give them all the
    same ``threads_per_worker`` value, set once around the whole map.
    """
    import torch

    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(int(n))
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
