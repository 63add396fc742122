"""Boundary accuracy of an alignment against reference phone timings.

The reference phone string need not equal the aligned one (a G2P choice, a voice's accent), so the
two sequences are first matched by edit distance; only phones matched to an identical symbol are
scored, and the share matched is reported alongside. A phone's *onset* is the scored boundary:
onsets are unambiguous in every reference format, whereas a phone's end before a pause depends on
whether the reference counts the pause as part of it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ns3.align.types import Alignment
from ns3.text.phones import SIL, strip_stress


def match_sequences(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int, int]]:
    """Levenshtein alignment; returns (ref_index, hyp_index) pairs whose symbols are equal."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), np.int64)
    d[:, 0] = np.arange(n + 1)
    d[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        if d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] == hyp[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


@dataclass
class UtteranceBoundaryScore:
    key: str
    ref_phones: int
    hyp_phones: int
    matched: int
    errors_ms: np.ndarray  # [matched] |hyp onset - ref onset| in ms


def score_alignment(alignment: Alignment, reference: Sequence[dict], key: str = "") -> UtteranceBoundaryScore:
    """``reference``: [{"phone": "ˈɪ", "start": s, "end": s}, ...] in seconds (stress marks allowed)."""
    ref_phones = [strip_stress(p["phone"]) for p in reference]
    speech = alignment.speech_phones()
    hyp_phones = [alignment.phones[i] for i in speech]
    starts = alignment.starts / alignment.frame_rate
    pairs = match_sequences(ref_phones, hyp_phones)
    errors = np.array([abs(starts[speech[j]] - float(reference[i]["start"])) * 1000.0 for i, j in pairs])
    return UtteranceBoundaryScore(key, len(ref_phones), len(hyp_phones), len(pairs), errors)


@dataclass
class BoundaryReport:
    utterances: int = 0
    ref_phones: int = 0
    matched: int = 0
    errors_ms: list[np.ndarray] = field(default_factory=list)

    def add(self, s: UtteranceBoundaryScore) -> None:
        self.utterances += 1
        self.ref_phones += s.ref_phones
        self.matched += s.matched
        self.errors_ms.append(s.errors_ms)

    def summary(self) -> dict:
        e = np.concatenate(self.errors_ms) if self.errors_ms else np.zeros(0)
        return {
            "utterances": self.utterances,
            "ref_phones": self.ref_phones,
            "matched_phones": self.matched,
            "matched_share": self.matched / max(self.ref_phones, 1),
            "boundaries": int(e.size),
            "mean_abs_error_ms": float(e.mean()) if e.size else float("nan"),
            "median_abs_error_ms": float(np.median(e)) if e.size else float("nan"),
            "within_20ms": float((e <= 20.0).mean()) if e.size else float("nan"),
            "within_40ms": float((e <= 40.0).mean()) if e.size else float("nan"),
        }


def phone_error_rate(ref: Sequence[str], hyp: Sequence[str]) -> float:
    """Edit distance / reference length, silences ignored, stress stripped."""
    r = [strip_stress(p) for p in ref if p != SIL]
    h = [strip_stress(p) for p in hyp if p != SIL]
    return edit_distance(r, h) / max(len(r), 1)
