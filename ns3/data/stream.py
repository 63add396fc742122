"""Streaming plain audio shards with WebDataset (no labels joined).

Codec training reads its labelled shards through `ns3.data.codec_stream`; this reader is for audio-only
consumers and object-store URLs.

Two modes, chosen on purpose (see the WebDataset notes on DDP):
- ``resampled=False``: each shard once per epoch, split across DDP ranks (``split_by_node``) and DataLoader
  workers (``split_by_worker``). Needs at least world_size x workers shards, or some ranks get nothing.
- ``resampled=True``: every rank draws shards with replacement forever (cap with ``epoch_size``), so ranks
  never run out at different times and DDP collectives cannot hang.
Resuming uses the solver's step count plus the seed (not an exact byte position in a shard).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ns3.audio import decode_audio_bytes
from ns3.data.shards import ShardSample


def _decode(sample: dict) -> ShardSample:
    meta = json.loads(sample["json"])
    return ShardSample(meta["key"], meta["speaker"], meta["text"], decode_audio_bytes(sample["flac"]), meta)


def stream_shards(
    urls: Iterable[str | Path],
    *,
    shuffle_buffer: int = 0,
    seed: int = 0,
    resampled: bool = False,
    epoch_size: int | None = None,
    distributed: bool = True,
):
    """-> an IterableDataset of ShardSample. ``urls``: local paths or any WebDataset URL (pipe:, http, gs, ...)."""
    import webdataset as wds

    urls = [str(u) for u in urls]
    if not urls:
        raise ValueError("no shards to stream: run `ns3 shard` first or check paths.data")
    ds = wds.WebDataset(
        urls,
        resampled=resampled,
        shardshuffle=False if resampled else (len(urls) if shuffle_buffer else False),
        nodesplitter=wds.split_by_node if distributed else wds.single_node_only,
        workersplitter=wds.split_by_worker,
        empty_check=False,
        seed=seed,
        detshuffle=bool(shuffle_buffer),
    )
    if shuffle_buffer:
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    ds = ds.map(_decode)
    if epoch_size:
        ds = ds.with_epoch(epoch_size)
    return ds
