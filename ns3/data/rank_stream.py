"""The per-rank, per-epoch order in which a training stream reads its shards (shared by every stream).

Epoch ``e`` of rank ``r``: the shards are permuted with a generator seeded by (seed, e), and the rank takes
every ``world_size``-th of them (ranks read disjoint shards). A rank whose shards run out goes over them
again in a new seeded order, so every rank can yield the same number of batches (DDP collectives would
hang otherwise). Everything is a pure function of (seed, epoch, rank), which is what exact resume needs.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

T = TypeVar("T")


def rank_items(shards: Sequence[str], read: Callable[[str], Iterable[T]], *, seed: int, epoch: int, rank: int,
               world_size: int) -> Iterator[T]:
    """This rank's items of ``epoch``, over and over; raises when its shards hold nothing."""
    order = np.random.default_rng([seed, epoch]).permutation(len(shards))
    mine = [shards[i] for i in order[rank::world_size]]
    for cycle in itertools.count():
        if cycle:
            mine = [mine[i] for i in np.random.default_rng([seed, epoch, rank, cycle]).permutation(len(mine))]
        got = False
        for shard in mine:
            for item in read(shard):
                got = True
                yield item
        if not got:
            raise ValueError(f"rank {rank}: its training shards {mine[:3]}... hold no usable utterance")
