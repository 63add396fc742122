"""Streaming plain audio shards with WebDataset (no labels joined).

Codec training reads its labelled shards through `ns3.data.codec_stream`; this reader is for audio-only
consumers and object-store URLs.

Two modes, chosen on purpose (see the WebDataset notes on DDP):
- ``resampled=False``: each shard once per epoch, split across DDP ranks (``split_by_node``) and DataLoader
  workers (``split_by_worker``). Needs at least world_size x workers shards, or some ranks get nothing.
- ``resampled=True``: every rank draws shards with replacement forever (cap with ``epoch_size``), so ranks
  never run out at different times and DDP collectives cannot hang.
Resuming uses the solver's step count plus the seed (not an exact byte position in a shard).

The pipeline is WebDataset's (shard lists, node/worker splitting, shuffles, epochs), but the tars are opened
by `ns3.data.shards.iter_tar_groups` like every other shard reader, so ``s3://`` and other fsspec URLs work
here as in training (WebDataset's own opener knows only local files, pipes and curl/gsutil URLs).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ns3.audio import decode_audio_bytes
from ns3.data.shards import ShardSample, iter_tar_groups


def _decode(sample: dict) -> ShardSample:
    meta = json.loads(sample["json"])
    return ShardSample(meta["key"], meta["speaker"], meta["text"], decode_audio_bytes(sample["flac"]), meta)


def _tar_samples(shards):
    """WebDataset stage: dict(url=...) per shard -> one WebDataset sample dict per utterance."""
    for shard in shards:
        for key, parts in iter_tar_groups(shard["url"]):
            yield {"__key__": key, "__url__": shard["url"], **parts}


def stream_shards(
    urls: Iterable[str | Path],
    *,
    shuffle_buffer: int = 0,
    seed: int = 0,
    resampled: bool = False,
    epoch_size: int | None = None,
    distributed: bool = True,
):
    """-> an IterableDataset of ShardSample. ``urls``: local paths or URLs (`ns3.data.storage`: s3://, ...)."""
    import webdataset as wds

    urls = [str(u) for u in urls]
    if not urls:
        raise ValueError("no shards to stream: run `ns3 shard` first or check paths.data")
    stages = [wds.ResampledShards(urls, seed=seed) if resampled else wds.SimpleShardList(urls),
              wds.split_by_node if distributed else wds.single_node_only, wds.split_by_worker]
    if shuffle_buffer and not resampled:  # resampling already draws shards at random
        stages.append(wds.detshuffle(len(urls), seed=seed))
    stages.append(_tar_samples)
    if shuffle_buffer:
        stages.append(wds.shuffle(shuffle_buffer, seed=seed))
    ds = wds.DataPipeline(*stages, wds.map(_decode))
    if epoch_size:
        ds = ds.with_epoch(epoch_size)
    return ds
