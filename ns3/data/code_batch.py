"""Diffusion training batches from code shards: padding, frame-budget batching, a resumable stream.

A batch holds whole utterances (the prompt is a prefix of the same utterance, so no crops): codes
[B, L, T], phone ids / durations / phone-level prosody codes [B, P], their masks, and the timbre [B, D].
Batches are formed by frame count (``batch_frames`` >= B x T_max), from a shuffle buffer sorted by length,
so padding stays small.

The stream follows `ns3.data.codec_stream`'s contract (a BatchSource: ``stream(epoch, start)`` yields
exactly ``list(stream(epoch, 0))[start:]``): shards permuted per (seed, epoch) and split over ranks, a
seeded shuffle buffer, and a fixed number of batches per epoch on every rank so DDP never hangs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ns3.data.code_shards import CodeUtterance, iter_code_shard
from ns3.data.rank_stream import rank_items


@dataclass
class CodeBatch:
    codes: Tensor  # [B, L, T] long, 0 where padded
    frame_mask: Tensor  # [B, T] bool
    phone_ids: Tensor  # [B, P] long, 0 where padded
    durations: Tensor  # [B, P] long (frames; sums to the item's T), 0 where padded
    phone_prosody: Tensor  # [B, P] long
    phone_mask: Tensor  # [B, P] bool
    timbre: Tensor  # [B, D]
    keys: list[str]
    speakers: list[str]

    def to(self, device: torch.device | str) -> "CodeBatch":
        moved = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.__dict__.items()}
        return CodeBatch(**moved)

    @property
    def size(self) -> int:
        return self.codes.shape[0]


def collate_codes(items: Sequence[CodeUtterance]) -> CodeBatch:
    if not items:
        raise ValueError("collate_codes: empty batch")
    levels = {u.codes.shape[0] for u in items}
    if len(levels) != 1:
        raise ValueError(f"utterances with different code levels {sorted(levels)} in one batch: "
                         f"{[u.key for u in items][:4]}...")
    b, n_lev = len(items), levels.pop()
    t = max(u.codes.shape[1] for u in items)
    p = max(len(u.phone_ids) for u in items)
    codes = torch.zeros(b, n_lev, t, dtype=torch.long)
    frame_mask = torch.zeros(b, t, dtype=torch.bool)
    phones, durs, pros = (torch.zeros(b, p, dtype=torch.long) for _ in range(3))
    phone_mask = torch.zeros(b, p, dtype=torch.bool)
    for i, u in enumerate(items):
        f, n = u.codes.shape[1], len(u.phone_ids)
        if int(np.sum(u.durations)) != f:
            raise ValueError(f"{u.key}: durations sum to {int(np.sum(u.durations))} frames but the codes have {f}; "
                             "re-run `ns3 extract-codes`")
        codes[i, :, :f] = torch.from_numpy(np.asarray(u.codes, dtype=np.int64))
        frame_mask[i, :f] = True
        phones[i, :n] = torch.from_numpy(np.asarray(u.phone_ids, dtype=np.int64))
        durs[i, :n] = torch.from_numpy(np.asarray(u.durations, dtype=np.int64))
        pros[i, :n] = torch.from_numpy(np.asarray(u.phone_prosody, dtype=np.int64))
        phone_mask[i, :n] = True
    timbre = torch.from_numpy(np.stack([np.asarray(u.timbre, dtype=np.float32) for u in items]))
    return CodeBatch(codes, frame_mask, phones, durs, pros, phone_mask, timbre, [u.key for u in items],
                     [u.speaker for u in items])


def frame_budget_groups(items: Sequence[CodeUtterance], batch_frames: int) -> list[list[CodeUtterance]]:
    """Sort by length and cut into groups whose padded size (B x T_max) stays within ``batch_frames``.

    An utterance longer than the budget forms a batch of its own (it is never dropped)."""
    groups: list[list[CodeUtterance]] = []
    cur: list[CodeUtterance] = []
    for u in sorted(items, key=lambda u: u.codes.shape[1]):
        longest = max([u.codes.shape[1]] + [c.codes.shape[1] for c in cur])
        if cur and longest * (len(cur) + 1) > batch_frames:
            groups.append(cur)
            cur = []
        cur.append(u)
    if cur:
        groups.append(cur)
    return groups


class CodeBatchStream:
    """BatchSource of CodeBatch over code shards (see the module docstring)."""

    def __init__(self, *, shards: Sequence[str | Path], batch_frames: int, seed: int, shuffle_buffer: int,
                 batches_per_epoch: int, rank: int = 0, world_size: int = 1) -> None:
        self.shards = [str(s) for s in shards]
        if len(self.shards) < world_size:
            raise ValueError(f"{len(self.shards)} code shards cannot feed {world_size} ranks: lower "
                             "shard.utts_per_shard so the train split has at least one shard per rank")
        self.batch_frames, self.seed = batch_frames, seed
        self.shuffle_buffer, self.rank, self.world_size = max(1, shuffle_buffer), rank, world_size
        self.batches_per_epoch = max(1, batches_per_epoch)

    def __call__(self, epoch: int, start: int) -> Iterator[CodeBatch]:
        rng = np.random.default_rng([self.seed, epoch, self.rank, 7])
        source = rank_items(self.shards, iter_code_shard, seed=self.seed, epoch=epoch, rank=self.rank,
                            world_size=self.world_size)
        pending: list[list[CodeUtterance]] = []
        for index in range(self.batches_per_epoch):
            if not pending:  # fill a buffer, cut it into length-sorted groups, serve them in random order
                buf = [next(source) for _ in range(self.shuffle_buffer)]
                pending = frame_budget_groups(buf, self.batch_frames)
                pending = [pending[i] for i in rng.permutation(len(pending))]
            group = pending.pop()
            if index >= start:  # skipped on resume: read, never collated
                yield collate_codes(group)
