"""What every corpus reader shares: rejection reasons, key sanitising, audio probing, the sorted walk.

Readers never raise on a bad file: a helper raises ``Skip`` and the reader's loop turns it into a
``Rejection``. Only a wrong root or wrong arguments raise, because those are the caller's mistake.
"""
from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import soundfile as sf

from ns3.corpus.types import RawUtterance, ReadResult, Rejection

log = logging.getLogger(__name__)


class Reason(StrEnum):
    """Stable rejection codes: reports, dashboards and tests match on these strings."""

    UNREADABLE_AUDIO = "unreadable_audio"  # header cannot be read, or no samples
    DAMAGED_AUDIO = "damaged_audio"  # valid header, damaged stream: found by a full decode (shard stage, energy VAD)
    BROKEN_LINK = "broken_link"  # a symbolic link that loops or points at nothing
    EMPTY_TEXT = "empty_text"
    NON_UTF8_TEXT = "non_utf8_text"
    MISSING_TRANSCRIPT = "missing_transcript"  # audio without a transcript line (or file)
    MISSING_AUDIO = "missing_audio"  # transcript line without its audio file
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    BAD_NAME = "bad_name"  # file name or folder does not follow the layout
    DUPLICATE_KEY = "duplicate_key"
    BAD_SIDECAR = "bad_sidecar"  # LibriLight JSON that cannot be parsed or has malformed voice_activity
    NO_SPEECH = "no_speech"  # LibriLight file in which VAD finds nothing
    EXCLUDED = "excluded"  # valid, but filtered out by an option (e.g. RAVDESS song files)


class Skip(Exception):
    """Raised by reader helpers for one file; becomes a ``Rejection`` and never leaves the reader."""

    def __init__(self, reason: Reason, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def rejection(self, path: Path) -> Rejection:
        return Rejection(path=path, reason=str(self.reason), detail=self.detail)


class CorpusLayoutError(ValueError):
    """The root does not look like the layout at all (nothing to read); the message says what was expected."""


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sanitize_key(name: str) -> str:
    """Make ``name`` a WebDataset-safe key: every character outside [A-Za-z0-9_-] becomes '_'.

    Dots would split the key from its extension inside a tar, slashes would create folders.
    """
    return _UNSAFE.sub("_", name) or "_"


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds
    sample_rate: int
    channels: int


def check_link(path: Path) -> None:
    """Raises ``Skip(BROKEN_LINK)`` for a symbolic link that loops or dangles (libsndfile only says "System error")."""
    if not path.is_symlink():
        return
    try:
        path.resolve(strict=True)
    except RuntimeError as e:  # Python < 3.13 reports a loop this way
        raise Skip(Reason.BROKEN_LINK, f"symbolic link loop: {path} -> {os.readlink(path)} ... leads back to itself "
                                       "(fix or remove the link)") from e
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Skip(Reason.BROKEN_LINK, f"symbolic link loop: {path} -> {os.readlink(path)} ... leads back to "
                                           "itself (fix or remove the link)") from e
        raise Skip(Reason.BROKEN_LINK, f"symbolic link to a missing file: {path} -> {os.readlink(path)} "
                                       "(fix or remove the link)") from e


def probe_audio(path: Path) -> AudioInfo:
    """Duration from the file header only (no decode: the shard stage's decode checks the length).

    Raises ``Skip(BROKEN_LINK)`` or ``Skip(UNREADABLE_AUDIO)``.
    """
    check_link(path)
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError or TypeError depending on the damage
        raise Skip(Reason.UNREADABLE_AUDIO, f"{e.__class__.__name__}: {e}") from e
    if info.samplerate <= 0 or info.frames <= 0:
        raise Skip(Reason.UNREADABLE_AUDIO, f"no samples (frames={info.frames}, sample_rate={info.samplerate})")
    return AudioInfo(info.frames / info.samplerate, info.samplerate, info.channels)


def check_duration(duration: float, min_duration: float, max_duration: float) -> None:
    if duration < min_duration:
        raise Skip(Reason.TOO_SHORT, f"{duration:.3f} s < min_duration {min_duration} s")
    if duration > max_duration:
        raise Skip(Reason.TOO_LONG, f"{duration:.3f} s > max_duration {max_duration} s")


def check_duration_range(min_duration: float, max_duration: float) -> None:
    if not (min_duration >= 0 and max_duration > min_duration):  # also catches NaN
        raise ValueError(
            f"need 0 <= min_duration < max_duration, got min_duration={min_duration}, max_duration={max_duration}"
        )


def require_root(root: str | Path, layout: str, expected: str) -> Path:
    path = Path(root)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: {layout} root is not a folder; point it at the folder holding {expected}")
    return path


def walk(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files under ``root`` whose names end with one of ``suffixes`` (case-insensitive), sorted by relative path.

    Hidden files and folders are skipped: they are tool droppings (macOS ``._x.wav``, our own ``.x.tmp``),
    not corpus content, and counting them as rejections would only add noise.
    Symlinked folders are followed (corpora are often assembled from links); a folder reached twice, e.g.
    through a link back to its parent, is walked once and the loop is logged with the path it was first
    walked as. Files reached through a link keep the link's path, so keys and speakers come from the corpus
    tree, not the link target.
    """
    found: list[Path] = []
    seen: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) of each real folder -> the path it was walked as
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        first = seen.setdefault((st.st_dev, st.st_ino), dirpath)
        if first != dirpath:
            log.warning("%s: the same folder as %s, already walked (a symbolic link loop or a second link to it); "
                        "skipped", dirpath, first)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(
            Path(dirpath) / f for f in filenames if not f.startswith(".") and f.lower().endswith(suffixes)
        )
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def finalize(items: Iterable[RawUtterance | Rejection]) -> ReadResult:
    """Collect a reader's per-candidate outcomes (in walk order) into a checked ``ReadResult``.

    The first utterance with a key wins; later ones are rejected as duplicates, so the result never
    holds two records that would overwrite each other in a shard.
    """
    kept: list[RawUtterance] = []
    rejected: list[Rejection] = []
    first: dict[str, Path] = {}
    found = 0
    for item in items:
        found += 1
        if isinstance(item, Rejection):
            rejected.append(item)
        elif item.key in first:
            rejected.append(
                Rejection(item.path, str(Reason.DUPLICATE_KEY), f"key {item.key!r} already used by {first[item.key]}")
            )
        else:
            first[item.key] = item.path
            kept.append(item)
    result = ReadResult(kept=kept, rejected=rejected, found=found)
    result.check()
    return result
