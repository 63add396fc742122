"""WebDataset shards: plan, write (atomic, deterministic, resumable), read.

A shard is a plain tar: per utterance ``<key>.flac`` (16 kHz mono PCM16) and ``<key>.json``
(key, speaker, text, duration, source, start, end, sha256 of the PCM samples, extra). Tar headers use a fixed
mtime/owner and JSON is written with sorted keys, so the same input and params give byte-identical shards.
Each shard is written to a temp name and renamed; a ``.done`` sidecar records the plan hash, so a re-run after a
crash redoes only missing or stale shards.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ns3.audio import SAMPLE_RATE, AudioError, DamagedAudioError, decode_audio_bytes, encode_flac, load_audio, to_int16
from ns3.corpus.types import RawUtterance
from ns3.data import storage

SPLITS = ("train", "valid", "test")
SHARD_PATTERN = "{split}-{index:06d}.tar"


@dataclass(frozen=True)
class ShardPlan:
    """One shard to write: its file name and the utterances in order."""

    split: str
    index: int
    utterances: tuple[RawUtterance, ...]

    @property
    def name(self) -> str:
        return SHARD_PATTERN.format(split=self.split, index=self.index)

    def digest(self) -> str:
        """Hash of everything that determines the shard's bytes (inputs + format version)."""
        h = hashlib.sha256(b"ns3-shard-v1")
        for u in self.utterances:
            try:
                st = os.stat(u.path)
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:  # vanished since the scan: write_shard rejects it; the plan must still hash
                size, mtime = -1, -1
            h.update(json.dumps([u.to_json(), size, mtime], sort_keys=True).encode())
        return h.hexdigest()


@dataclass
class ShardSample:
    """One utterance read back from a shard. ``audio``: [T] float32 at 16 kHz."""

    key: str
    speaker: str
    text: str
    audio: np.ndarray
    meta: dict = field(default_factory=dict)


def _held_out_count(spec: float, n_speakers: int) -> int:
    return max(1, int(round(spec * n_speakers))) if spec < 1 else int(spec)


def split_speakers(speakers: Iterable[str], valid: float, test: float, seed: int) -> dict[str, str]:
    """Speaker -> split. Speaker-disjoint by construction; a seeded shuffle of the sorted speaker list."""
    spk = sorted(set(speakers))
    n_valid, n_test = _held_out_count(valid, len(spk)), _held_out_count(test, len(spk))
    if n_valid + n_test >= len(spk):
        raise ValueError(
            f"{len(spk)} speakers cannot give {n_valid} valid + {n_test} test speakers and keep any for training; "
            "lower shard.splits.valid_speakers/test_speakers or use a larger corpus"
        )
    random.Random(f"split-{seed}").shuffle(spk)
    out = {s: "test" for s in spk[:n_test]}
    out.update({s: "valid" for s in spk[n_test:n_test + n_valid]})
    out.update({s: "train" for s in spk[n_test + n_valid:]})
    return out


def plan_shards(utterances: list[RawUtterance], split_of: dict[str, str], utts_per_shard: int) -> list[ShardPlan]:
    """Group utterances by split, sort by key, cut into shards of ``utts_per_shard``."""
    plans = []
    for split in SPLITS:
        utts = sorted((u for u in utterances if split_of[u.speaker] == split), key=lambda u: u.key)
        for i in range(0, len(utts), utts_per_shard):
            plans.append(ShardPlan(split, i // utts_per_shard, tuple(utts[i:i + utts_per_shard])))
    return plans


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = len(data), 0, 0o444, 0, 0, "ns3", "ns3"
    tar.addfile(ti, io.BytesIO(data))


def _load_segment(u: RawUtterance) -> np.ndarray:
    audio = load_audio(u.path, SAMPLE_RATE)
    if u.start is not None or u.end is not None:
        a = int(round((u.start or 0.0) * SAMPLE_RATE))
        b = int(round(u.end * SAMPLE_RATE)) if u.end is not None else len(audio)
        audio = audio[a:b]
    return audio


@dataclass
class ShardWritten:
    name: str
    split: str
    records: list[dict]
    sha256: str
    skipped: bool  # True when an up-to-date shard from an earlier run was kept
    # Planned utterances whose audio failed to decode here ({path, reason, detail}, as rejections.jsonl rows):
    # records + rejected = the plan's utterances.
    rejected: list[dict] = field(default_factory=list)


# The readers' rejection codes (ns3.corpus.readers.common.Reason) for what only a full decode finds.
DAMAGED_AUDIO, UNREADABLE_AUDIO = "damaged_audio", "unreadable_audio"


def write_shard(plan: ShardPlan, out_dir: str | Path) -> ShardWritten:
    """Write one shard atomically; keep it if a previous run already wrote it from the same plan.

    An utterance whose audio does not decode (damaged after a valid header, or changed since the scan) is
    left out and returned in ``rejected``; the shard goes on, and no temp file outlives a failure.
    """
    out_dir = Path(out_dir)
    final, done = out_dir / plan.name, out_dir / f"{plan.name}.done"
    digest = plan.digest()
    if final.exists() and done.exists():
        info = json.loads(done.read_text())
        if info.get("plan") == digest:
            return ShardWritten(plan.name, plan.split, info["records"], info["sha256"], skipped=True,
                                rejected=info.get("rejected", []))
    tmp = out_dir / f".{plan.name}.tmp"
    records, rejected = [], []
    try:
        with open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for u in plan.utterances:
                try:
                    pcm = to_int16(_load_segment(u))
                except AudioError as e:
                    reason = DAMAGED_AUDIO if isinstance(e, DamagedAudioError) else UNREADABLE_AUDIO
                    rejected.append({"path": str(u.path), "reason": reason, "detail": f"at shard time: {e}"})
                    continue
                meta = {
                    "key": u.key, "speaker": u.speaker, "text": u.text, "chapter": u.chapter,
                    "duration": round(len(pcm) / SAMPLE_RATE, 4), "source": str(u.path), "start": u.start, "end": u.end,
                    "sha256": hashlib.sha256(pcm.tobytes()).hexdigest(), "sample_rate": SAMPLE_RATE, "extra": u.extra,
                }
                _tar_add(tar, f"{u.key}.flac", encode_flac(pcm))
                _tar_add(tar, f"{u.key}.json", json.dumps(meta, sort_keys=True, ensure_ascii=False).encode())
                records.append({**meta, "split": plan.split, "shard": plan.name})
        sha = hashlib.sha256(tmp.read_bytes()).hexdigest()
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    tmp_done = out_dir / f".{plan.name}.done.tmp"
    try:
        tmp_done.write_text(json.dumps({"plan": digest, "sha256": sha, "records": records, "rejected": rejected},
                                       sort_keys=True))
        os.replace(tmp_done, done)
    finally:
        tmp_done.unlink(missing_ok=True)
    return ShardWritten(plan.name, plan.split, records, sha, skipped=False, rejected=rejected)


def iter_tar_groups(path: str | Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample of a WebDataset tar, in file order.

    Members are grouped by key, the name up to the first dot ("k.labels.npy" -> key "k", ext "labels.npy").
    ``path`` is a local path or a URL (`ns3.data.storage`); the tar is read as a stream, front to back, so an
    object store serves it in a few large reads and nothing seeks.
    """
    with storage.open_binary(path) as f, tarfile.open(fileobj=f, mode="r|*") as tar:
        current: dict[str, bytes] = {}
        key = None
        for m in tar:
            if not m.isfile():
                continue
            k, _, ext = m.name.partition(".")
            if key is not None and k != key:
                yield key, current
                current = {}
            key = k
            current[ext] = tar.extractfile(m).read()
        if key is not None:
            yield key, current


def iter_shard(path: str | Path, decode_audio: bool = True) -> Iterator[ShardSample]:
    """Samples of one shard (a local path or a URL) in file order."""
    for key, parts in iter_tar_groups(path):
        yield _sample(path, key, parts, decode_audio)


def _sample(path: str | Path, key: str, parts: dict[str, bytes], decode_audio: bool) -> ShardSample:
    if "json" not in parts or "flac" not in parts:
        raise ValueError(f"{path}: sample {key!r} lacks {'json' if 'json' not in parts else 'flac'}; re-run `ns3 shard`")
    meta = json.loads(parts["json"])
    audio = decode_audio_bytes(parts["flac"]) if decode_audio else np.zeros(0, np.float32)
    return ShardSample(key, meta["speaker"], meta["text"], audio, meta)


def list_shards(shards_dir: str | Path, split: str) -> list[Path] | list[str]:
    """Shards of a split, in order: `Path`s in a local folder, URL strings under a URL (`ns3.data.storage`)."""
    return storage.glob(shards_dir, f"{split}-[0-9][0-9][0-9][0-9][0-9][0-9].tar")
