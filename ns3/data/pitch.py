"""F0, voicing and normalised log-F0 on the codec grid (80 frames/s), for prosody supervision.

WORLD (pyworld) estimates F0 with a 12.5 ms frame period, which is exactly our hop (200 samples at
16 kHz); WORLD puts frame i at time i x 12.5 ms, the same convention as the centred mel frames, and
the track is trimmed/padded to ``num_frames(T)`` so it lines up with phone labels and codes.
Log-F0 is normalised per speaker (mean/std of voiced log-F0 over the training split), which removes
the speaker's register and leaves intonation: the prosody codes should carry the latter only.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from ns3.audio import HOP_LENGTH, SAMPLE_RATE, num_frames

if TYPE_CHECKING:  # torch stays out of this module's import time
    from torch import Tensor

FRAME_PERIOD_MS = 1000.0 * HOP_LENGTH / SAMPLE_RATE  # 12.5
PITCH_STATS_FILE = "pitch_stats.json"  # SpeakerPitchStats beside the align stage's label shards


@dataclass
class PitchTrack:
    f0: np.ndarray  # [F] float32 Hz, 0 where unvoiced
    uv: np.ndarray  # [F] uint8, 1 = voiced

    @property
    def log_f0(self) -> np.ndarray:
        """[F] float32 natural-log F0 on voiced frames, 0 elsewhere."""
        out = np.zeros_like(self.f0)
        v = self.uv.astype(bool)
        out[v] = np.log(self.f0[v])
        return out


def extract_pitch(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, method: str = "dio",
                  f0_floor: float = 50.0, f0_ceil: float = 800.0) -> PitchTrack:
    """[T] float audio -> ``PitchTrack`` with ``num_frames(T)`` frames.

    ``dio`` (+ StoneMask refinement) is ~25x faster than ``harvest``; harvest is more robust on
    noisy or breathy speech. Both are WORLD's own estimators with the same frame convention.
    """
    import pyworld

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"extract_pitch expects {SAMPLE_RATE} Hz audio (got {sample_rate}); resample first")
    x = np.ascontiguousarray(audio, dtype=np.float64)
    n = num_frames(len(x))
    if n == 0:
        return PitchTrack(np.zeros(0, np.float32), np.zeros(0, np.uint8))
    if method == "dio":
        f0, t = pyworld.dio(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=FRAME_PERIOD_MS)
        f0 = pyworld.stonemask(x, f0, t, sample_rate)
    elif method == "harvest":
        f0, _ = pyworld.harvest(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=FRAME_PERIOD_MS)
    else:
        raise ValueError(f"unknown pitch method {method!r} (use 'dio' or 'harvest')")
    f0 = np.asarray(f0, np.float32)[:n]
    if len(f0) < n:
        f0 = np.pad(f0, (0, n - len(f0)))
    f0[~np.isfinite(f0)] = 0.0
    f0[f0 < f0_floor * 0.5] = 0.0  # StoneMask can nudge unvoiced zeros to tiny values
    return PitchTrack(f0=f0, uv=(f0 > 0).astype(np.uint8))


@dataclass
class SpeakerPitchStats:
    """Mean/std of voiced log-F0 per speaker, plus a global fallback for unseen speakers."""

    speakers: dict[str, tuple[float, float]]
    global_mean: float
    global_std: float

    def get(self, speaker: str) -> tuple[float, float]:
        return self.speakers.get(speaker, (self.global_mean, self.global_std))

    def to_json(self) -> dict:
        return {"global": [self.global_mean, self.global_std], "speakers": {k: list(v) for k, v in sorted(self.speakers.items())}}

    @classmethod
    def from_json(cls, d: dict) -> "SpeakerPitchStats":
        return cls({k: (float(v[0]), float(v[1])) for k, v in d["speakers"].items()}, float(d["global"][0]), float(d["global"][1]))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SpeakerPitchStats":
        return cls.from_json(json.loads(Path(path).read_text()))


class PitchStatsAccumulator:
    """Streaming sums of voiced log-F0 per speaker (shards are read once; sums merge across workers)."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}  # speaker -> [n, sum, sum of squares]

    def add(self, speaker: str, track: PitchTrack) -> None:
        lf = track.log_f0[track.uv.astype(bool)].astype(np.float64)
        s = self.sums.setdefault(speaker, [0.0, 0.0, 0.0])
        s[0] += lf.size
        s[1] += float(lf.sum())
        s[2] += float((lf ** 2).sum())

    def merge(self, other: "PitchStatsAccumulator") -> None:
        for spk, (n, a, b) in other.sums.items():
            s = self.sums.setdefault(spk, [0.0, 0.0, 0.0])
            s[0] += n
            s[1] += a
            s[2] += b

    def finish(self, min_voiced_frames: int = 10, min_std: float = 0.05) -> SpeakerPitchStats:
        """Speakers with fewer voiced frames than ``min_voiced_frames`` fall back to the global stats.

        ``min_std`` (natural-log units; 0.05 ~ 0.9 semitone) keeps a near-monotone speaker's tiny
        jitter from being blown up to unit variance.
        """
        def mean_std(n: float, a: float, b: float) -> tuple[float, float]:
            m = a / n
            return m, max(float(np.sqrt(max(b / n - m * m, 0.0))), min_std)

        tot = [sum(s[i] for s in self.sums.values()) for i in range(3)]
        if tot[0] == 0:
            raise ValueError("no voiced frames in the training split: cannot compute log-F0 statistics")
        g = mean_std(*tot)
        spk = {k: mean_std(*s) for k, s in self.sums.items() if s[0] >= min_voiced_frames}
        return SpeakerPitchStats(spk, *g)


def speaker_stats(items: Iterable[tuple[str, PitchTrack]]) -> SpeakerPitchStats:
    acc = PitchStatsAccumulator()
    for spk, track in items:
        acc.add(spk, track)
    return acc.finish()


def normalise_log_f0(track: PitchTrack, mean: float, std: float) -> np.ndarray:
    """[F] float32 (log F0 - mean) / std on voiced frames, 0 on unvoiced frames."""
    out = np.zeros(len(track.f0), np.float32)
    v = track.uv.astype(bool)
    out[v] = (np.log(track.f0[v]) - mean) / max(std, 1e-5)
    return out


MAX_F0_HZ = 4000.0  # bounds exp() of a wild prediction


def denormalise_log_f0(norm_log_f0: Tensor, voiced: Tensor, stats: Tensor) -> Tensor:
    """The inverse of ``normalise_log_f0`` on torch tensors: normalised log-F0 [B, F], voiced [B, F]
    (bool or 0/1), stats [B, 2] (mean, std per item) -> F0 [B, F] Hz, 0 on unvoiced frames."""
    log_f0 = stats[:, :1] + stats[:, 1:] * norm_log_f0
    return log_f0.clamp(max=float(np.log(MAX_F0_HZ))).exp() * voiced.to(log_f0.dtype)
