"""LibriSpeech layout: ``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` + ``<spk>-<chapter>.trans.txt``.

Each transcript line is ``<utt-id> TEXT``. The root may be one split (``train-clean-100``) or a folder
of splits; speaker and chapter come from the two folders above each file. A candidate is an audio
file, or a transcript line whose audio file is missing, so ``found`` counts both.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ns3.corpus.readers.common import (
    CorpusLayoutError, Reason, Skip, check_duration, check_duration_range, finalize, probe_audio, require_root,
    sanitize_key, walk,
)
from ns3.corpus.types import RawUtterance, ReadResult, Rejection

_TRANS_SUFFIX = ".trans.txt"


@dataclass(frozen=True)
class TranscriptLine:
    """One line of a ``.trans.txt``: the text, or the reason it cannot be used."""

    line: int  # 1-based
    text: str = ""
    problem: Skip | None = None


def parse_transcript(path: Path) -> dict[str, TranscriptLine]:
    """Read a LibriSpeech transcript line by line, so one bad line costs one utterance, not the chapter.

    A line that is not valid UTF-8 or has no text is kept as an entry carrying its problem; an id
    listed twice with different text makes both unusable.
    """
    entries: dict[str, TranscriptLine] = {}
    for n, raw in enumerate(path.read_bytes().splitlines(), start=1):
        raw = raw.removeprefix(b"\xef\xbb\xbf") if n == 1 else raw  # BOM from some editors
        parts = raw.strip().split(maxsplit=1)
        if not parts:
            continue
        uid = parts[0].decode("utf-8", errors="replace")
        try:
            text = " ".join(parts[1].decode("utf-8").split()) if len(parts) > 1 else ""
        except UnicodeDecodeError as e:
            entry = TranscriptLine(n, problem=Skip(Reason.NON_UTF8_TEXT, f"{path.name} line {n}: {e}"))
        else:
            entry = TranscriptLine(n, text) if text else TranscriptLine(
                n, problem=Skip(Reason.EMPTY_TEXT, f"{path.name} line {n}: no text after the id")
            )
        previous = entries.get(uid)
        if previous is not None:
            if previous.problem is None and entry.problem is None and previous.text == entry.text:
                continue  # an identical repeat is harmless
            entry = TranscriptLine(
                previous.line,
                problem=Skip(Reason.DUPLICATE_KEY, f"{path.name} lists {uid} twice (lines {previous.line} and {n})"),
            )
        entries[uid] = entry
    return entries


def read_librispeech(
    root: str | Path, *, min_duration: float = 0.0, max_duration: float = math.inf
) -> ReadResult:
    """Every utterance of a LibriSpeech-layout tree, with durations from the FLAC headers.

    Keys are the utterance ids (sanitised); speaker and chapter are the folder names.
    """
    check_duration_range(min_duration, max_duration)
    root = require_root(root, "LibriSpeech", "<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac")
    files = walk(root, (".flac", _TRANS_SUFFIX))
    if not files:
        raise CorpusLayoutError(
            f"{root}: no .flac or .trans.txt files; expected LibriSpeech layout "
            "<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac with <speaker>-<chapter>.trans.txt"
        )
    by_dir: dict[Path, list[Path]] = defaultdict(list)
    for f in files:
        by_dir[f.parent].append(f)
    # walk() sorted the files, so the folders come out in sorted order too
    return finalize(item for d, group in by_dir.items() for item in _read_chapter(d, group, min_duration, max_duration))


def _read_chapter(folder: Path, files: list[Path], min_duration: float, max_duration: float):
    speaker, chapter = folder.parent.name, folder.name
    trans_path = folder / f"{speaker}-{chapter}{_TRANS_SUFFIX}"
    others = [f.name for f in files if f.name.endswith(_TRANS_SUFFIX) and f != trans_path]
    entries: dict[str, TranscriptLine] | None = parse_transcript(trans_path) if trans_path.is_file() else None
    matched: set[str] = set()

    for audio in (f for f in files if f.name.lower().endswith(".flac")):
        uid = audio.name[: -len(".flac")]
        try:
            if not uid.startswith(f"{speaker}-{chapter}-"):
                raise Skip(Reason.BAD_NAME, f"expected {speaker}-{chapter}-<utt>.flac inside {speaker}/{chapter}/")
            if entries is None:
                hint = f" (found {', '.join(others)})" if others else ""
                raise Skip(Reason.MISSING_TRANSCRIPT, f"no {trans_path.name} next to it{hint}")
            entry = entries.get(uid)
            if entry is None:
                raise Skip(Reason.MISSING_TRANSCRIPT, f"{trans_path.name} has no line for {uid}")
            matched.add(uid)
            if entry.problem is not None:
                raise entry.problem
            info = probe_audio(audio)
            check_duration(info.duration, min_duration, max_duration)
        except Skip as skip:
            yield skip.rejection(audio)
            continue
        yield RawUtterance(
            key=sanitize_key(uid), speaker=speaker, path=audio, text=entry.text, duration=info.duration, chapter=chapter
        )

    for uid, entry in (entries or {}).items():
        if uid not in matched:
            yield Rejection(trans_path, str(Reason.MISSING_AUDIO), f"line {entry.line}: {uid}.flac not found")

