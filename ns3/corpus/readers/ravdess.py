"""RAVDESS layout: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav``, seven two-digit fields in the file name.

Fields: modality (01 full-AV, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song),
emotion (01-08), intensity (01 normal, 02 strong; neutral has only normal), statement (01/02, the
two fixed sentences), repetition (01/02), actor (odd = male, even = female). The emotion-MCD
protocol needs emotion and intensity per file, so they travel in ``extra``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from ns3.corpus.readers.common import (
    CorpusLayoutError, Reason, Skip, check_duration, check_duration_range, finalize, probe_audio, require_root, walk,
)
from ns3.corpus.types import RawUtterance, ReadResult

EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust", 8: "surprised"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
INTENSITIES = {1: "normal", 2: "strong"}
MODALITIES = {1: "full-AV", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name, decoded."""

    modality: str
    vocal_channel: str
    emotion: str
    emotion_id: int
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def gender(self) -> str:
        return "male" if self.actor % 2 else "female"

    @property
    def text(self) -> str:
        return STATEMENTS[self.statement]


def parse_ravdess_name(stem: str) -> RavdessName:
    """``"03-01-06-01-02-01-12"`` -> fields. Raises ``Skip(BAD_NAME)`` saying which field is wrong."""
    m = _NAME.match(stem)
    if m is None:
        raise Skip(Reason.BAD_NAME, f"{stem!r} is not seven two-digit fields MM-VV-EE-II-SS-RR-AA")
    modality, channel, emotion, intensity, statement, repetition, actor = (int(g) for g in m.groups())
    for name, value, allowed in (
        ("modality", modality, MODALITIES), ("vocal channel", channel, VOCAL_CHANNELS), ("emotion", emotion, EMOTIONS),
        ("intensity", intensity, INTENSITIES), ("statement", statement, STATEMENTS), ("repetition", repetition, (1, 2)),
    ):
        if value not in allowed:
            raise Skip(Reason.BAD_NAME, f"{stem}: {name} {value:02d} is not one of {sorted(allowed)}")
    if actor < 1:
        raise Skip(Reason.BAD_NAME, f"{stem}: actor 00 does not exist (actors are numbered from 01)")
    if EMOTIONS[emotion] == "neutral" and INTENSITIES[intensity] == "strong":
        raise Skip(Reason.BAD_NAME, f"{stem}: neutral has no strong intensity in RAVDESS")
    return RavdessName(
        modality=MODALITIES[modality], vocal_channel=VOCAL_CHANNELS[channel], emotion=EMOTIONS[emotion],
        emotion_id=emotion, intensity=INTENSITIES[intensity], statement=statement, repetition=repetition, actor=actor,
    )


def read_ravdess(
    root: str | Path, *, min_duration: float = 0.0, max_duration: float = math.inf, include_song: bool = False
) -> ReadResult:
    """Every ``.wav`` under ``root`` (the folder holding ``Actor_XX``), decoded from its file name.

    Key = file stem, speaker = ``Actor_XX``, text = the statement. Song files are rejected as
    ``excluded`` unless ``include_song``: the emotion protocol uses speech only.
    """
    check_duration_range(min_duration, max_duration)
    root = require_root(root, "RAVDESS", "Actor_XX/MM-VV-EE-II-SS-RR-AA.wav")
    files = walk(root, (".wav",))
    if not files:
        raise CorpusLayoutError(f"{root}: no .wav files; expected RAVDESS layout Actor_XX/MM-VV-EE-II-SS-RR-AA.wav")
    return finalize(_read_file(f, min_duration, max_duration, include_song) for f in files)


def _read_file(path: Path, min_duration: float, max_duration: float, include_song: bool):
    stem = path.name[: -len(".wav")]
    try:
        fields = parse_ravdess_name(stem)
        folder = _ACTOR_DIR.match(path.parent.name)
        if folder is None or int(folder.group(1)) != fields.actor:
            raise Skip(Reason.BAD_NAME, f"actor {fields.actor:02d} file must sit in Actor_{fields.actor:02d}/")
        if fields.vocal_channel == "song" and not include_song:
            raise Skip(Reason.EXCLUDED, "song file (include_song=False)")
        info = probe_audio(path)
        check_duration(info.duration, min_duration, max_duration)
    except Skip as skip:
        return skip.rejection(path)
    extra = {
        "emotion": fields.emotion, "emotion_id": fields.emotion_id, "intensity": fields.intensity,
        "statement": fields.statement, "repetition": fields.repetition, "actor": fields.actor, "gender": fields.gender,
        "modality": fields.modality, "vocal_channel": fields.vocal_channel,
    }
    return RawUtterance(
        key=stem, speaker=f"Actor_{fields.actor:02d}", path=path, text=fields.text, duration=info.duration, extra=extra,
    )
