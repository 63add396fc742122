"""Energy voice-activity detection and cutting long recordings into segments at silences.

LibriLight ships one FLAC per LibriVox file (often tens of minutes) with VAD chunks in a JSON
sidecar; when the sidecar lacks them we fall back to the energy detector here. Either way the
chunks are merged greedily into segments no longer than ``max_duration``, so every cut lands in
a silence unless a single speech run is itself longer than the limit.

Energy is measured on non-overlapping frames, in dB relative to the loudest frame of the file
(so the threshold does not depend on recording gain), with an absolute floor so that a file of
digital silence or faint hum yields no speech at all.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

_EPS = 1e-12  # keeps log10 finite on digital silence (-120 dB)


@dataclass(frozen=True)
class Region:
    """A time span in seconds, ``start < end``."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class FrameEnergy:
    """Per-frame energy of a recording: ``db`` [F] in dBFS (mean square; a full-scale sine is -3 dB)."""

    db: np.ndarray
    frame_shift: float  # seconds per frame
    duration: float  # seconds of audio the frames cover (the last frame may be partial)


def frame_energy(audio: np.ndarray, sample_rate: int, frame_shift: float = 0.01) -> FrameEnergy:
    """[T] or [T, C] audio -> per-frame energy. Channels are averaged first."""
    a = np.asarray(audio, dtype=np.float64)
    if a.ndim == 2:
        a = a.mean(axis=1)
    hop = _frame_samples(sample_rate, frame_shift)
    return FrameEnergy(_frames_db(a, hop), hop / sample_rate, len(a) / sample_rate)


def frame_energy_file(path: str | Path, frame_shift: float = 0.01, block_frames: int = 6000) -> FrameEnergy:
    """Per-frame energy of an audio file, streamed in blocks so an hour-long file never sits in memory.

    Raises the soundfile error when the file cannot be decoded; callers turn it into a rejection.
    """
    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        hop = _frame_samples(sr, frame_shift)
        parts, total = [], 0
        # Blocks are whole multiples of the hop, so frames never straddle two blocks.
        for block in f.blocks(blocksize=hop * block_frames, dtype="float64", always_2d=True):
            mono = block.mean(axis=1)
            total += len(mono)
            parts.append(_frames_db(mono, hop))
    db = np.concatenate(parts) if parts else np.zeros(0)
    return FrameEnergy(db, hop / sr, total / sr)


def energy_vad(
    energy: FrameEnergy,
    *,
    threshold_db: float = -35.0,
    floor_db: float = -60.0,
    hangover: float = 0.1,
    min_silence: float = 0.3,
    min_speech: float = 0.1,
) -> list[Region]:
    """Speech regions of a recording from its frame energies.

    A frame is speech when it is within ``threshold_db`` of the loudest frame and above the absolute
    ``floor_db``. Pauses shorter than ``min_silence`` are bridged (they are inside a phrase, not between
    phrases), runs shorter than ``min_speech`` are dropped (clicks), and each surviving run is extended
    by ``hangover`` seconds because word endings decay below the threshold before they stop.
    """
    db = energy.db
    if db.size == 0:
        return []
    fs = energy.frame_shift
    active = (db > db.max() + threshold_db) & (db > floor_db)

    gap = int(round(min_silence / fs))
    bridged: list[tuple[int, int]] = []
    for s, e in _runs(active):
        if bridged and s - bridged[-1][1] < gap:
            bridged[-1] = (bridged[-1][0], e)
        else:
            bridged.append((s, e))

    shortest = max(1, int(round(min_speech / fs)))
    hang = int(round(hangover / fs))
    regions: list[tuple[int, int]] = []
    for s, e in bridged:
        if e - s < shortest:
            continue
        e = min(e + hang, len(db))
        if regions and s <= regions[-1][1]:
            regions[-1] = (regions[-1][0], e)
        else:
            regions.append((s, e))
    # rounded to the microsecond so frame arithmetic does not leak float noise into keys and reports
    return [Region(round(s * fs, 6), round(min(e * fs, energy.duration), 6)) for s, e in regions]


def normalize_regions(regions: list[Region], duration: float) -> list[Region]:
    """Sort, clip to [0, duration], drop empty spans and merge overlaps (sidecar VAD is not always tidy)."""
    out: list[Region] = []
    for r in sorted(regions, key=lambda r: (r.start, r.end)):
        s, e = max(0.0, r.start), min(duration, r.end)
        if e <= s:
            continue
        if out and s <= out[-1].end:
            out[-1] = Region(out[-1].start, max(e, out[-1].end))
        else:
            out.append(Region(s, e))
    return out


def merge_regions(regions: list[Region], max_duration: float, *, max_gap: float | None = None) -> list[Region]:
    """Greedily join consecutive speech regions into segments of at most ``max_duration`` seconds.

    A segment spans from its first region's start to its last region's end, so the silences between
    segments are dropped and every cut falls in a silence. ``max_gap`` (seconds) forbids joining
    across a longer pause. A single region longer than ``max_duration`` has no silence to cut at; it is
    split into equal parts, each within the limit. Input must be sorted and non-overlapping.
    """
    if max_duration <= 0:
        raise ValueError(f"max_duration must be > 0, got {max_duration}")
    pieces: list[Region] = []
    for r in regions:
        n = max(1, math.ceil(r.duration / max_duration - 1e-9))
        step = r.duration / n
        pieces.extend(Region(r.start + i * step, r.end if i == n - 1 else r.start + (i + 1) * step) for i in range(n))

    segments: list[Region] = []
    for r in pieces:
        if segments:
            cur = segments[-1]
            fits = r.end - cur.start <= max_duration + 1e-9
            close = max_gap is None or r.start - cur.end <= max_gap
            if fits and close:
                segments[-1] = Region(cur.start, r.end)
                continue
        segments.append(r)
    return segments


def _frame_samples(sample_rate: int, frame_shift: float) -> int:
    hop = int(round(sample_rate * frame_shift))
    if hop < 1:
        raise ValueError(f"frame_shift {frame_shift} s is below one sample at {sample_rate} Hz")
    return hop


def _frames_db(mono: np.ndarray, hop: int) -> np.ndarray:
    """[T] -> [ceil(T / hop)] mean-square energy in dB; a partial last frame is averaged over what it has."""
    n = len(mono)
    if n == 0:
        return np.zeros(0)
    full = n // hop
    ms = (mono[: full * hop].reshape(full, hop) ** 2).mean(axis=1)
    if n > full * hop:
        ms = np.append(ms, (mono[full * hop :] ** 2).mean())
    return 10.0 * np.log10(ms + _EPS)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Boolean [F] -> [(start, end)) frame index pairs of its True runs."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))
