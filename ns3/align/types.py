"""The one alignment type every backend (built-in, MFA, TextGrid import) produces.

Durations are whole frames on the codec grid (80 frames/s) and sum exactly to the utterance's
frame count, so ``np.repeat(phone_ids, durations)`` is a frame label track the codec can use as-is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ns3.audio import FRAME_RATE
from ns3.text.inventory import PhoneInventory, UnknownReport
from ns3.text.phones import SIL


@dataclass(frozen=True)
class WordSpan:
    text: str
    start: int  # first frame
    end: int  # one past the last frame
    phone_start: int  # index into Alignment.phones
    phone_end: int  # one past the last phone


@dataclass
class Alignment:
    phones: list[str]  # [N] stress-free symbols, '<sil>' for silences
    durations: np.ndarray  # [N] int64 frames, each >= 1, sum == num_frames
    words: list[WordSpan] = field(default_factory=list)
    stress: list[int] | None = None  # [N] 0/1/2 per phone (0 for silences)
    frame_rate: int = FRAME_RATE

    def __post_init__(self) -> None:
        self.durations = np.asarray(self.durations, dtype=np.int64)
        if len(self.phones) != len(self.durations):
            raise ValueError(f"{len(self.phones)} phones but {len(self.durations)} durations")
        if len(self.durations) and self.durations.min() < 1:
            raise ValueError("every phone needs at least one frame")
        if self.stress is not None and len(self.stress) != len(self.phones):
            raise ValueError(f"{len(self.stress)} stress values for {len(self.phones)} phones")

    @property
    def num_frames(self) -> int:
        return int(self.durations.sum())

    @property
    def starts(self) -> np.ndarray:
        """[N] first frame of each phone."""
        return np.concatenate(([0], np.cumsum(self.durations)[:-1])).astype(np.int64)

    def phone_ids(self, inventory: PhoneInventory, report: UnknownReport | None = None, where: str = "") -> np.ndarray:
        return np.asarray(inventory.encode(self.phones, report, where), dtype=np.int64)

    def frame_labels(self, inventory: PhoneInventory, report: UnknownReport | None = None, where: str = "") -> np.ndarray:
        """[num_frames] int16 phone id per frame."""
        return np.repeat(self.phone_ids(inventory, report, where), self.durations).astype(np.int16)

    def times(self) -> list[tuple[str, float, float]]:
        """(phone, start_s, end_s) per phone."""
        s = self.starts
        return [(p, s[i] / self.frame_rate, (s[i] + self.durations[i]) / self.frame_rate) for i, p in enumerate(self.phones)]

    def speech_phones(self) -> list[int]:
        """Indices of the non-silence phones."""
        return [i for i, p in enumerate(self.phones) if p != SIL]

    def to_json(self) -> dict:
        return {
            "frame_rate": self.frame_rate,
            "phones": list(self.phones),
            "durations": [int(d) for d in self.durations],
            "stress": None if self.stress is None else [int(s) for s in self.stress],
            "words": [
                {"text": w.text, "start": w.start, "end": w.end, "phone_start": w.phone_start, "phone_end": w.phone_end}
                for w in self.words
            ],
        }

    @classmethod
    def from_json(cls, d: dict) -> "Alignment":
        return cls(
            phones=list(d["phones"]),
            durations=np.asarray(d["durations"], np.int64),
            words=[WordSpan(**w) for w in d.get("words", [])],
            stress=d.get("stress"),
            frame_rate=int(d.get("frame_rate", FRAME_RATE)),
        )


def fit_to_frames(durations: np.ndarray, num_frames: int) -> np.ndarray:
    """Adjust integer durations so they sum to ``num_frames`` keeping every entry >= 1.

    Used when a backend's timing grid differs from ours (MFA's 10 ms frames, TextGrid seconds):
    the difference is taken from / given to the last (and, if needed, the longest) phones.
    """
    d = np.maximum(np.asarray(durations, np.int64).copy(), 1)
    if num_frames < len(d):
        raise ValueError(f"{num_frames} frames cannot hold {len(d)} phones")
    diff = num_frames - int(d.sum())
    if diff > 0:
        d[-1] += diff
    while diff < 0:
        i = int(np.argmax(d))
        take = min(-diff, int(d[i]) - 1)
        d[i] -= take
        diff += take
    return d


def seconds_to_durations(bounds: list[tuple[float, float]], num_frames: int, frame_rate: int = FRAME_RATE) -> np.ndarray:
    """Contiguous (start_s, end_s) intervals -> frame durations summing to ``num_frames``.

    Each boundary is rounded to the nearest frame edge independently, so rounding errors do not
    accumulate along the utterance.
    """
    edges = [round(b[0] * frame_rate) for b in bounds] + [num_frames]
    edges[0] = 0
    edges = np.minimum(np.asarray(edges, np.int64), num_frames)
    return fit_to_frames(np.diff(edges), num_frames)
