"""Codec training data: audio shards joined by key to the align stage's label shards -> CodecExample.

Label shards have the audio shard's name under the align output folder and hold, per key, ``labels.npy``
(frame phone ids), ``lf0n.npy`` (speaker-normalised log-F0) and ``uv.npy``; ``pitch_stats.json`` beside
them holds the per-speaker statistics that normalisation used (unseen speakers: the global ones). Utterances the aligner
could not align have no labels; they are counted and left out (the align stage lists why).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ns3.data import storage
from ns3.data.batch import CodecExample
from ns3.data.pitch import PITCH_STATS_FILE, SpeakerPitchStats
from ns3.data.shards import iter_shard, iter_tar_groups


def _npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


@dataclass
class LabelledShards:
    examples: list[CodecExample]
    speakers: dict[str, int]  # speaker -> id used by the speaker head
    missing_labels: int  # utterances with audio but no alignment


def labelled_example(audio: np.ndarray, key: str, speaker: str, labels: dict[str, bytes], speakers: dict[str, int],
                     pitch_stats: SpeakerPitchStats) -> CodecExample:
    """One utterance's audio [T] + its label-tar members -> a validated CodecExample (speaker -100 if unknown)."""
    ex = CodecExample(
        wav=audio, phone_ids=_npy(labels["labels.npy"]).astype(np.int64),
        f0=_npy(labels["lf0n.npy"]).astype(np.float32), uv=_npy(labels["uv.npy"]).astype(np.float32),
        speaker_id=speakers.get(speaker, -100), key=key, f0_stats=pitch_stats.get(speaker),
    )
    ex.validate()
    return ex


def speaker_index(manifest: str | Path, split: str = "train") -> dict[str, int]:
    """Speaker -> contiguous id over a split of the shard manifest (a path or a URL; sorted, so stable across runs)."""
    speakers = set()
    with storage.open_binary(manifest) as raw:  # line by line: a LibriLight manifest has millions of lines
        for line in io.TextIOWrapper(raw, encoding="utf-8"):
            if line.strip():
                r = json.loads(line)
                if r["split"] == split:
                    speakers.add(r["speaker"])
    return {s: i for i, s in enumerate(sorted(speakers))}


def load_labelled(shards: Sequence[str | Path], label_dir: str | Path, speakers: dict[str, int],
                  per_shard: int | None = None) -> LabelledShards:
    """Every utterance of ``shards`` that has labels, as CodecExample (speaker -100 when not in ``speakers``);
    with ``per_shard``, only the first that many labelled utterances of each shard (a bounded sample).

    Holds the set in memory: for evaluation samples, tools and tests. Training streams instead
    (`ns3.data.codec_stream.CodecBatchStream`, same examples)."""
    label_dir = Path(label_dir)
    stats_path = label_dir / PITCH_STATS_FILE
    if not stats_path.exists():
        raise FileNotFoundError(f"{stats_path}: no pitch statistics; re-run `ns3 align` (it writes them)")
    pitch_stats = SpeakerPitchStats.load(stats_path)
    examples, missing = [], 0
    for shard in shards:
        labels_path = label_dir / storage.basename(shard)
        if not labels_path.exists():
            raise FileNotFoundError(f"{labels_path}: no labels for {storage.basename(shard)}; run `ns3 align` first")
        labels = {k: parts for k, parts in iter_tar_groups(labels_path)}
        taken = 0
        for s in iter_shard(shard):
            if per_shard is not None and taken >= per_shard:
                break
            parts = labels.get(s.key)
            if parts is None:
                missing += 1
                continue
            examples.append(labelled_example(s.audio, s.key, s.speaker, parts, speakers, pitch_stats))
            taken += 1
    return LabelledShards(examples, speakers, missing)
