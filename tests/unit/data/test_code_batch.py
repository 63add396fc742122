"""Diffusion batches from code shards: padding, the frame budget, and the stream's exact resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ns3.data.code_batch import CodeBatchStream, collate_codes, frame_budget_groups
from ns3.data.code_shards import CodeUtterance, write_code_shard


def utt(key: str, phones: int, seed: int) -> CodeUtterance:
    rng = np.random.default_rng(seed)
    durs = rng.integers(1, 6, phones)
    f = int(durs.sum())
    return CodeUtterance(key=key, speaker=key.split("-")[0], codes=rng.integers(0, 32, (6, f)),
                         timbre=rng.standard_normal(4).astype(np.float32), phone_ids=rng.integers(1, 20, phones),
                         durations=durs, phone_prosody=rng.integers(0, 32, phones), num_samples=f * 200)


def test_collate_pads_and_masks():
    items = [utt("a-1", 3, 0), utt("b-1", 5, 1)]
    b = collate_codes(items)
    f0, f1 = items[0].codes.shape[1], items[1].codes.shape[1]
    assert b.codes.shape == (2, 6, max(f0, f1)) and b.phone_ids.shape == (2, 5)
    assert b.frame_mask.sum(1).tolist() == [f0, f1] and b.phone_mask.sum(1).tolist() == [3, 5]
    assert torch.equal(b.codes[0, :, :f0], torch.from_numpy(items[0].codes))
    assert (b.durations.sum(1) == b.frame_mask.sum(1)).all()
    bad = utt("c-1", 3, 2)
    bad.durations = bad.durations + 1
    with pytest.raises(ValueError, match="c-1.*durations sum"):
        collate_codes([bad])


def test_frame_budget_groups_keep_every_utterance_within_budget():
    items = [utt(f"s-{i}", n, i) for i, n in enumerate([2, 9, 4, 30, 6, 3, 7])]
    groups = frame_budget_groups(items, batch_frames=40)
    assert sorted(u.key for g in groups for u in g) == sorted(u.key for u in items)  # nothing lost
    for g in groups:
        longest = max(u.codes.shape[1] for u in g)
        assert len(g) == 1 or longest * len(g) <= 40


def test_stream_resumes_exactly_and_splits_ranks(tmp_path):
    shards = []
    for s in range(4):
        path = tmp_path / f"train-{s:06d}.tar"
        write_code_shard(path, [utt(f"s{s}-{i}", 3 + (i % 4), 10 * s + i) for i in range(6)])
        shards.append(path)
    stream = CodeBatchStream(shards=shards, batch_frames=60, seed=5, shuffle_buffer=8, batches_per_epoch=7)
    full = list(stream(1, 0))
    assert len(full) == 7
    rest = list(stream(1, 3))
    assert [b.keys for b in rest] == [b.keys for b in full[3:]]
    assert [b.keys for b in stream(2, 0)] != [b.keys for b in full]  # a new epoch, a new order
    r0 = CodeBatchStream(shards=shards, batch_frames=60, seed=5, shuffle_buffer=4, batches_per_epoch=3, world_size=2)
    r1 = CodeBatchStream(shards=shards, batch_frames=60, seed=5, shuffle_buffer=4, batches_per_epoch=3, rank=1, world_size=2)
    k0 = {k.split("-")[0] for b in r0(0, 0) for k in b.keys}
    k1 = {k.split("-")[0] for b in r1(0, 0) for k in b.keys}
    assert k0 and k1 and not (k0 & k1)  # ranks read disjoint shards
