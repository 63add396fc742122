"""Tiny corpora in the real LibriSpeech / LibriLight / RAVDESS layouts, with one file per bad case.

Each fixture returns the root and what a correct reader must report for every file, so tests compare
whole outcome maps rather than spot-checking.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16_000


def tone(seconds: float, sr: int = SR, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, subtype="PCM_16")
    return path


def write_garbage(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not audio at all " * 40)
    return path


# Speech/silence truth for the VAD tests (seconds). The 0.1 s dip inside the first phrase must be bridged,
# the 50 ms click at 7.5 s must be dropped.
# Boundaries are deliberately off the 10 ms frame grid.
SPEECH = [(0.513, 2.0), (2.1, 3.027), (4.005, 6.5), (7.5, 7.55), (9.0, 12.0)]
EXPECTED_REGIONS = [(0.513, 3.027), (4.005, 6.5), (9.0, 12.0)]
SIGNAL_SECONDS = 13.0


def speech_like(seconds: float = SIGNAL_SECONDS, spans=SPEECH, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Faint noise floor (about -70 dBFS) with harmonic bursts at ``spans``; one burst 12 dB quieter."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3e-4, int(seconds * sr))
    t = np.arange(len(x)) / sr
    for n, (s, e) in enumerate(spans):
        i, j = int(round(s * sr)), int(round(e * sr))
        amp = 0.08 if n == 2 else 0.3
        burst = sum(np.sin(2 * np.pi * f * t[i:j]) for f in (150.0, 300.0, 450.0)) / 3
        x[i:j] += amp * burst * (1.0 + 0.3 * np.sin(2 * np.pi * 4.0 * t[i:j]))  # syllable-rate wobble
    return x.astype(np.float32)


@dataclass(frozen=True)
class Signals:
    """The builders and the VAD truth, handed to tests through a fixture (never ``import conftest``)."""

    sr: int = SR
    speech: tuple = tuple(SPEECH)
    expected_regions: tuple = tuple(EXPECTED_REGIONS)
    seconds: float = SIGNAL_SECONDS
    tone = staticmethod(tone)
    write = staticmethod(write)
    speech_like = staticmethod(speech_like)


@pytest.fixture
def signals() -> Signals:
    return Signals()


@dataclass
class Tree:
    root: Path
    expected: dict[str, str] = field(default_factory=dict)  # file name (or "file:id") -> "kept" | reason
    durations: dict[str, float] = field(default_factory=dict)  # key -> seconds, for kept items


@pytest.fixture
def librispeech_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "LibriSpeech"
    tree = Tree(root)
    ch = root / "train" / "100" / "200"
    lines = []
    for utt, seconds, text, outcome in [
        ("0000", 1.0, "HELLO WORLD", "kept"),
        ("0001", 2.0, "IT'S  A   TEST", "kept"),
        ("0002", None, "CORRUPT AUDIO", "unreadable_audio"),
        ("0003", 1.0, "", "empty_text"),
        ("0004", 0.2, "TOO SHORT", "too_short"),
        ("0005", 5.0, "TOO LONG", "too_long"),
    ]:
        uid = f"100-200-{utt}"
        path = ch / f"{uid}.flac"
        write_garbage(path) if seconds is None else write(path, tone(seconds))
        lines.append(f"{uid} {text}".rstrip())
        tree.expected[path.name] = outcome
        if outcome == "kept":
            tree.durations[uid] = seconds
    write(ch / "100-200-0006.flac", tone(1.0))  # no transcript line
    tree.expected["100-200-0006.flac"] = "missing_transcript"
    lines.append("100-200-0009 LINE WITHOUT AUDIO")
    tree.expected["100-200.trans.txt:100-200-0009"] = "missing_audio"
    (ch / "100-200.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write(ch / "._100-200-0000.flac", tone(0.5))  # macOS AppleDouble dropping: ignored, not counted

    # Latin-1 transcript: the ASCII line is still usable, the accented one is not.
    ch = root / "train" / "100" / "300"
    write(ch / "100-300-0000.flac", tone(1.5))
    write(ch / "100-300-0001.flac", tone(1.5))
    (ch / "100-300.trans.txt").write_bytes("100-300-0000 PLAIN ASCII\n100-300-0001 CAF\xc9 AU LAIT\n".encode("latin-1"))
    tree.expected |= {"100-300-0000.flac": "kept", "100-300-0001.flac": "non_utf8_text"}
    tree.durations["100-300-0000"] = 1.5

    write(root / "train" / "101" / "400" / "101-400-0000.flac", tone(1.0))  # chapter without a transcript
    tree.expected["101-400-0000.flac"] = "missing_transcript"

    # Ids with a dot sanitise to the same key as their underscore twin: the second one is a duplicate.
    ch = root / "train" / "101" / "401"
    write(ch / "101-401-0000.v2.flac", tone(1.0))
    write(ch / "101-401-0000_v2.flac", tone(1.0))
    write(ch / "101-999-0000.flac", tone(1.0))  # name does not match its folders
    (ch / "101-401.trans.txt").write_text(
        "101-401-0000.v2 DOTTED ID\n101-401-0000_v2 UNDERSCORE ID\n101-999-0000 MISPLACED\n", encoding="utf-8"
    )
    tree.expected |= {"101-401-0000.v2.flac": "kept", "101-401-0000_v2.flac": "duplicate_key",
                      "101-999-0000.flac": "bad_name", "101-401.trans.txt:101-999-0000": "missing_audio"}
    tree.durations["101-401-0000_v2"] = 1.0

    # The same utterance under a second split: same key, so the later copy is a duplicate.
    ch = root / "zcopy" / "100" / "200"
    write(ch / "100-200-0000.flac", tone(1.0))
    (ch / "100-200.trans.txt").write_text("100-200-0000 HELLO WORLD\n", encoding="utf-8")
    tree.expected["zcopy/100-200-0000.flac"] = "duplicate_key"
    return tree


@pytest.fixture
def ravdess_tree(tmp_path: Path) -> Tree:
    root = tmp_path / "RAVDESS"
    tree = Tree(root)
    cases = {
        ("Actor_01", "03-01-01-01-01-01-01"): "kept",  # neutral, normal, statement 1
        ("Actor_01", "03-01-05-02-02-02-01"): "kept",  # angry, strong, statement 2
        ("Actor_12", "03-01-08-02-01-01-12"): "kept",  # surprised, female actor
        ("Actor_01", "03-01-09-01-01-01-01"): "bad_name",  # emotion 09 does not exist
        ("Actor_01", "03-01-01-02-01-01-01"): "bad_name",  # neutral cannot be strong
        ("Actor_01", "03-01-01-01-01"): "bad_name",  # five fields
        ("Actor_01", "take_one"): "bad_name",
        ("Actor_01", "03-01-03-01-01-01-02"): "bad_name",  # actor 02 filed under Actor_01
        ("Actor_01", "03-02-03-01-01-01-01"): "excluded",  # song
        ("Actor_02", "03-01-03-01-01-01-02"): "unreadable_audio",
    }
    for (actor, stem), outcome in cases.items():
        path = root / actor / f"{stem}.wav"
        if outcome == "unreadable_audio":
            write_garbage(path)
        else:
            write(path, tone(0.3, sr=48_000), sr=48_000)
        tree.expected[stem] = outcome
        if outcome == "kept":
            tree.durations[stem] = 0.3
    return tree


@pytest.fixture
def librilight_tree(tmp_path: Path) -> Tree:
    """One speaker, one book; ``expected`` maps file stem -> outcome for whole-file rejections."""
    root = tmp_path / "librilight" / "small"
    book = root / "1234" / "some_book_64kb"
    tree = Tree(root)

    # Sidecar VAD: 24 s file, chunks merge into <= 10 s segments; the lone 0.4 s chunk at the end is too short.
    write(book / "chapter_01.flac", speech_like(24.0, spans=[(0, 24)]))
    activity = [[0.5, 3.0], [3.5, 8.0], [8.2, 9.9], [11.0, 14.0], [14.5, 20.0], [23.0, 23.4]]
    meta = {"speaker": "1234", "book_meta": {"title": "Some Book"}, "snr": 17.5, "voice_activity": activity}
    (book / "chapter_01.json").write_text(json.dumps(meta), encoding="utf-8")

    write(book / "chapter_02.flac", speech_like())  # no sidecar: energy VAD on known speech/silence
    write(book / "chapter_03.flac", speech_like(2.0, spans=[(0.2, 1.8)]))
    (book / "chapter_03.json").write_text("{not json", encoding="utf-8")
    write_garbage(book / "chapter_04.flac")
    write(book / "chapter_05.flac", np.zeros(SR * 2, dtype=np.float32))  # digital silence
    write(book / "chapter_06.flac", speech_like(2.0, spans=[(0.2, 1.8)]))
    (book / "chapter_06.json").write_text(json.dumps({"voice_activity": [[0.1, "soon"]]}), encoding="utf-8")
    tree.expected = {
        "chapter_03": "bad_sidecar", "chapter_04": "unreadable_audio", "chapter_05": "no_speech",
        "chapter_06": "bad_sidecar",
    }
    return tree
