"""Praat TextGrid I/O (praatio) for alignments, in MFA's conventions.

MFA writes one TextGrid per utterance with a ``words`` and a ``phones`` interval tier; silence is
an empty interval (older releases: 'sil'/'sp'), unknown words are aligned to 'spn'. We read that
into ``Alignment`` (seconds -> 80 frames/s durations summing to the audio's frame count) and write
our own alignments the same way, so Praat and MFA tooling can open them.
"""
from __future__ import annotations

import os
from pathlib import Path

from ns3.align.types import Alignment, WordSpan, seconds_to_durations
from ns3.audio import FRAME_RATE
from ns3.text.phones import SIL, UNK, strip_stress

SILENCE_LABELS = {"", "sil", "sp", "<eps>", "<sil>", "silence"}
UNKNOWN_LABELS = {"spn", "<unk>"}


class TextGridError(ValueError):
    pass


def write_textgrid(alignment: Alignment, path: str | Path) -> Path:
    """Write ``words`` and ``phones`` tiers (long TextGrid format), atomically."""
    from praatio import textgrid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fr = alignment.frame_rate
    end = alignment.num_frames / fr
    phones = [(s, e, "" if p == SIL else p) for p, s, e in alignment.times()]
    words = [(w.start / fr, w.end / fr, w.text or "<unk>") for w in alignment.words]
    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("words", words, 0.0, end))
    tg.addTier(textgrid.IntervalTier("phones", [x for x in phones if x[2]], 0.0, end))
    tmp = path.with_name(f".{path.name}.tmp")
    tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True)
    os.replace(tmp, path)
    return path


def read_textgrid(path: str | Path, num_frames: int | None = None, frame_rate: int = FRAME_RATE,
                  phone_tier: str = "phones", word_tier: str = "words") -> Alignment:
    """TextGrid -> ``Alignment``.

    ``num_frames``: the utterance's frame count on our grid (``ns3.audio.num_frames(len(audio))``);
    defaults to the TextGrid's end time in frames. Silence labels become ``<sil>`` (adjacent
    silences merge), 'spn' becomes ``<unk>``, stress marks are stripped.
    """
    from praatio import textgrid

    path = Path(path)
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=True, reportingMode="silence")
    except FileNotFoundError as e:
        raise TextGridError(f"{path}: TextGrid not found") from e
    except Exception as e:  # praatio raises several types on malformed files
        raise TextGridError(f"{path}: not a readable TextGrid ({e.__class__.__name__}: {e})") from e
    if phone_tier not in tg.tierNames:
        raise TextGridError(f"{path}: no '{phone_tier}' tier (tiers: {list(tg.tierNames)})")
    intervals = sorted(tg.getTier(phone_tier).entries, key=lambda iv: iv.start)
    if num_frames is None:
        num_frames = int(round(tg.maxTimestamp * frame_rate))

    # Close gaps (praatio leaves untiered time out) by treating them as silence.
    spans: list[tuple[float, float, str]] = []
    t = 0.0
    for iv in intervals:
        if iv.start > t + 1e-6:
            spans.append((t, iv.start, SIL))
        label = iv.label.strip()
        sym = SIL if label.lower() in SILENCE_LABELS else UNK if label.lower() in UNKNOWN_LABELS else strip_stress(label)
        spans.append((iv.start, iv.end, sym))
        t = iv.end
    if not spans:
        raise TextGridError(f"{path}: the '{phone_tier}' tier is empty")
    if tg.maxTimestamp > t + 1e-6:
        spans.append((t, tg.maxTimestamp, SIL))
    merged: list[list] = []
    for s, e, p in spans:
        if merged and p == SIL and merged[-1][2] == SIL:
            merged[-1][1] = e
        else:
            merged.append([s, e, p])
    # Phones shorter than half a frame round to nothing: keep them at one frame (fit_to_frames
    # takes the frame back from the longest phone) rather than dropping a symbol.
    durations = seconds_to_durations([(s, e) for s, e, _ in merged], num_frames, frame_rate)
    phones = [p for _, _, p in merged]
    starts = [0]
    for d in durations[:-1]:
        starts.append(starts[-1] + int(d))

    words = []
    if word_tier in tg.tierNames:
        for iv in tg.getTier(word_tier).entries:
            label = iv.label.strip()
            if label.lower() in SILENCE_LABELS:
                continue
            inside = [i for i, (s, e, p) in enumerate(merged) if p != SIL and s >= iv.start - 1e-6 and e <= iv.end + 1e-6]
            if inside:
                a, b = inside[0], inside[-1] + 1
                words.append(WordSpan(label, starts[a], starts[b - 1] + int(durations[b - 1]), a, b))
    return Alignment(phones=phones, durations=durations, words=words, frame_rate=frame_rate)
