"""How far voice conversion moves the pitch register from the source speaker to the prompt speaker.

Speaker-embedding similarity on a small codec is dominated by the codec's own artefacts, so VC is also
scored by the one speaker trait that is easy to measure exactly: the median voiced F0. For each
(source, prompt) pair we compare the converted speech against a *control*: the same source codes
decoded with the source's own timbre. Codec artefacts are common to both, so the difference isolates
what the timbre swap did:

    transfer = sum_i (c_i - k_i) (p_i - s_i) / sum_i (p_i - s_i)^2

with c, k, p, s the median log-F0 of converted, control, prompt and source. It is the least-squares
slope of the achieved log-F0 shift on the wanted one: 1 means the converted speech sits at the prompt's
register, 0 means the timbre swap left the pitch where the source had it (negative: moved away).
Pairs whose speakers differ by less than ``min_gap`` (in natural-log F0) carry no signal and are left
out; the result says how many pairs were used.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import MetricValue

MIN_VOICED_FRAMES = 10


def median_log_f0(wav: np.ndarray) -> float | None:
    """[T] float 16 kHz -> median natural-log F0 over voiced frames (WORLD dio), None if barely voiced."""
    from ns3.data.pitch import extract_pitch

    track = extract_pitch(np.asarray(wav, np.float32))
    voiced = track.f0[track.uv.astype(bool)]
    if len(voiced) < MIN_VOICED_FRAMES:
        return None
    return float(np.median(np.log(voiced)))


def pitch_transfer(
    sources: Sequence[np.ndarray],
    prompts: Sequence[np.ndarray],
    converted: Sequence[np.ndarray],
    controls: Sequence[np.ndarray],
    min_gap: float = 0.05,
) -> MetricValue:
    """Slope of the log-F0 shift achieved by VC on the shift wanted (see the module docstring).

    All four sequences are aligned per pair; ``controls[i]`` is ``sources[i]``'s codes decoded with its
    own timbre. ``detail`` carries ``pairs`` (used), ``skipped_unvoiced`` and ``skipped_small_gap``.
    """
    n = len(sources)
    if not n == len(prompts) == len(converted) == len(controls):
        raise ValueError(f"pitch_transfer needs aligned pairs, got {n}/{len(prompts)}/{len(converted)}/{len(controls)}")
    achieved, wanted = [], []
    unvoiced = small = 0
    for s, p, c, k in zip(sources, prompts, converted, controls):
        f = [median_log_f0(w) for w in (s, p, c, k)]
        if any(v is None for v in f):
            unvoiced += 1
            continue
        fs, fp, fc, fk = f
        if abs(fp - fs) < min_gap:
            small += 1
            continue
        achieved.append(fc - fk)
        wanted.append(fp - fs)
    counts = {"pairs": len(wanted), "skipped_unvoiced": unvoiced, "skipped_small_gap": small}
    if not wanted:
        return MetricValue.unavailable(
            f"no pair with voiced audio and a source/prompt log-F0 gap >= {min_gap} ({n} pairs given)", **counts)
    a, w = np.asarray(achieved), np.asarray(wanted)
    return MetricValue.of(float(np.dot(a, w) / np.dot(w, w)), **counts)
