"""The ``shard`` stage as a library function: corpus -> speaker-disjoint WebDataset shards + manifest + stats.

``map_fn`` runs the per-shard work; the pipeline passes one backed by a Prefect task runner (threads,
processes or a Dask cluster), tests pass the built-in sequential map. One task per shard, never per utterance.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ns3.corpus.readers import write_rejections
from ns3.corpus.types import ReadResult, Rejection
from ns3.data.shards import SPLITS, ShardWritten, plan_shards, split_speakers, write_shard

MapFn = Callable[[Callable, list], list]


def sequential_map(fn: Callable, items: list) -> list:
    return [fn(x) for x in items]


@dataclass
class ShardStageResult:
    out_dir: Path
    shards: list[ShardWritten]
    stats: dict
    found: int
    kept: int
    rejected: int


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def dataset_stats(records: list[dict], read: ReadResult) -> dict:
    """Hours, utterances, speakers and duration percentiles, per split and in total (DVC metrics)."""
    out: dict = {
        "found": read.found,
        "kept": len(read.kept),
        "rejected": len(read.rejected),
        "rejected_by_reason": {},
    }
    for r in read.rejected:
        out["rejected_by_reason"][r.reason] = out["rejected_by_reason"].get(r.reason, 0) + 1
    for split in (*SPLITS, "total"):
        rs = records if split == "total" else [r for r in records if r["split"] == split]
        d = np.array([r["duration"] for r in rs], dtype=np.float64)
        out[split] = {
            "utterances": len(rs),
            "speakers": len({r["speaker"] for r in rs}),
            "hours": round(float(d.sum()) / 3600, 4),
            **{f"duration_p{p}": round(float(np.percentile(d, p)), 3) if len(d) else 0.0 for p in (5, 50, 95)},
        }
    return out


def shard_corpus(
    read: ReadResult,
    out_dir: str | Path,
    *,
    utts_per_shard: int,
    valid_speakers: float,
    test_speakers: float,
    seed: int,
    map_fn: MapFn = sequential_map,
) -> ShardStageResult:
    """Write shards for every kept utterance into ``out_dir``.

    Outputs: ``{split}-NNNNNN.tar`` (+ ``.done`` sidecars used to resume), ``manifest.jsonl`` (one line per
    utterance: split, shard, key, speaker, text, duration, sha256), ``shards.json``, ``rejections.jsonl``,
    ``stats.json``. Shards left over from an earlier, larger plan are removed.
    """
    read.check()
    if not read.kept:
        raise ValueError("the corpus has no usable utterance (see rejections); nothing to shard")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split_of = split_speakers((u.speaker for u in read.kept), valid_speakers, test_speakers, seed)
    plans = plan_shards(read.kept, split_of, utts_per_shard)
    written: list[ShardWritten] = map_fn(partial(write_shard, out_dir=out_dir), plans)

    keep = {p.name for p in plans} | {f"{p.name}.done" for p in plans}
    for f in out_dir.iterdir():
        if (f.suffix in (".tar", ".done") or f.name.startswith(".")) and f.name not in keep:
            f.unlink() if f.is_file() else shutil.rmtree(f)

    records = [r for w in written for r in w.records]
    late = [r for w in written for r in w.rejected]  # failed to decode in the shard workers
    if len(records) + len(late) != len(read.kept):
        raise AssertionError(f"wrote {len(records)} utterances and rejected {len(late)} at shard time, "
                             f"but {len(read.kept)} were planned")
    if late:  # they move from kept to rejected, so found = kept + rejected still holds
        written_keys = {r["key"] for r in records}
        read = ReadResult(kept=[u for u in read.kept if u.key in written_keys],
                          rejected=[*read.rejected, *(Rejection(Path(r["path"]), r["reason"], r["detail"]) for r in late)],
                          found=read.found)
        read.check()
    _atomic_write_text(out_dir / "manifest.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    _atomic_write_text(
        out_dir / "shards.json",
        json.dumps([{"name": w.name, "split": w.split, "utterances": len(w.records), "sha256": w.sha256} for w in written], indent=1),
    )
    write_rejections(read, out_dir / "rejections.jsonl")
    stats = dataset_stats(records, read)
    _atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=1, sort_keys=True))
    return ShardStageResult(out_dir, written, stats, read.found, len(read.kept), len(read.rejected))
