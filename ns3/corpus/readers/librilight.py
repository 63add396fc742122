"""LibriLight layout: ``<spk>/<book>/<stem>.flac`` with a ``<stem>.json`` sidecar, cut into segments.

The sidecar carries ``speaker``, ``book_meta``, ``snr`` and ``voice_activity`` ([[start, end], ...] in
seconds). Files are long, so each becomes segments of at most ``max_duration`` seconds: from the
sidecar's voice activity when present, else from the energy detector in ``ns3.corpus.vad``. The root
may be a subset (``small``) or the folder holding the subsets.

LibriLight is unlabelled: kept segments have ``text == ""`` and ``extra["unlabelled"] = True``, which
downstream stages check before asking for a transcript. A candidate is a segment, or a whole file
that could not be segmented, so ``found`` counts both.
"""
from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tqdm import tqdm

from ns3.corpus import vad
from ns3.corpus.readers.common import (
    CorpusLayoutError, Reason, Skip, check_duration_range, finalize, probe_audio, require_root, sanitize_key, walk,
)
from ns3.corpus.types import RawUtterance, ReadResult, Rejection


@dataclass(frozen=True)
class _Settings:
    min_duration: float
    max_duration: float
    max_gap: float | None
    use_sidecar_vad: bool
    frame_shift: float
    threshold_db: float
    floor_db: float
    hangover: float
    min_silence: float
    min_speech: float


def read_librilight(
    root: str | Path,
    *,
    min_duration: float = 1.0,
    max_duration: float = 30.0,
    max_gap: float | None = None,
    use_sidecar_vad: bool = True,
    frame_shift: float = 0.01,
    threshold_db: float = -35.0,
    floor_db: float = -60.0,
    hangover: float = 0.1,
    min_silence: float = 0.3,
    min_speech: float = 0.1,
    num_workers: int = 1,
    progress: bool | None = None,
) -> ReadResult:
    """Segments of every LibriLight file under ``root``; keys ``<speaker>_<file-stem>_<NNNN>`` (sanitised).

    ``max_gap`` stops a segment from spanning a pause longer than that many seconds. The energy-VAD
    knobs are those of ``ns3.corpus.vad.energy_vad``; ``use_sidecar_vad=False`` ignores the sidecar's
    voice activity. ``num_workers > 1`` segments files in parallel processes with the same result.
    ``progress=None`` shows a bar only on a terminal.
    """
    check_duration_range(min_duration, max_duration)
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if not 0 < frame_shift <= 0.1:
        raise ValueError(f"frame_shift must be in (0, 0.1] seconds, got {frame_shift}")
    root = require_root(root, "LibriLight", "<speaker>/<book>/<file>.flac (+ <file>.json)")
    files = walk(root, (".flac",))
    if not files:
        raise CorpusLayoutError(f"{root}: no .flac files; expected LibriLight layout <speaker>/<book>/<file>.flac")
    settings = _Settings(
        min_duration, max_duration, max_gap, use_sidecar_vad, frame_shift, threshold_db, floor_db, hangover,
        min_silence, min_speech,
    )
    work = partial(_segment_file, settings=settings)
    disable = None if progress is None else not progress
    bar = partial(tqdm, total=len(files), desc="librilight", unit="file", disable=disable)
    if num_workers == 1:
        per_file = bar(map(work, files))
        return finalize(item for items in per_file for item in items)
    with ProcessPoolExecutor(max_workers=num_workers) as pool:
        # map() yields in submission order, so the result does not depend on which worker finishes first
        per_file = bar(pool.map(work, files, chunksize=8))
        return finalize(item for items in per_file for item in items)


def _segment_file(path: Path, settings: _Settings) -> list[RawUtterance | Rejection]:
    speaker, book = path.parent.parent.name, path.parent.name
    try:
        meta = _read_sidecar(path.with_suffix(".json"))
        info = probe_audio(path)
        activity = meta.get("voice_activity") if settings.use_sidecar_vad else None
        if activity is not None:
            regions, source = vad.normalize_regions(_parse_activity(activity), info.duration), "sidecar"
        else:
            regions, source = _energy_regions(path, settings), "energy"
        if not regions:
            raise Skip(Reason.NO_SPEECH, f"{source} VAD found no speech in {info.duration:.1f} s")
    except Skip as skip:
        return [skip.rejection(path)]

    extra = {"unlabelled": True, "vad_source": source}
    if isinstance(meta.get("snr"), (int, float)):
        extra["snr"] = float(meta["snr"])
    book_meta = meta.get("book_meta")
    title = book_meta.get("title") if isinstance(book_meta, dict) else None
    if isinstance(title, str):
        extra["book_title"] = title

    out: list[RawUtterance | Rejection] = []
    for i, seg in enumerate(vad.merge_regions(regions, settings.max_duration, max_gap=settings.max_gap)):
        key = sanitize_key(f"{speaker}_{path.stem}_{i:04d}")
        if seg.duration < settings.min_duration:
            span = f"{key} [{seg.start:.2f}, {seg.end:.2f}] s"
            detail = f"{span}: {seg.duration:.3f} s < min_duration {settings.min_duration} s"
            out.append(Rejection(path, str(Reason.TOO_SHORT), detail))
            continue
        out.append(RawUtterance(
            key=key, speaker=speaker, path=path, text="", duration=seg.duration, chapter=book,
            start=seg.start, end=seg.end, extra={**extra, "segment": i},
        ))
    return out


def _read_sidecar(path: Path) -> dict:
    """The JSON sidecar as a dict; {} when there is none (the energy VAD then does the work)."""
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Skip(Reason.BAD_SIDECAR, f"{path.name}: {e}") from e
    if not isinstance(meta, dict):
        raise Skip(Reason.BAD_SIDECAR, f"{path.name}: expected a JSON object, got {type(meta).__name__}")
    return meta


def _parse_activity(activity) -> list[vad.Region]:
    if not isinstance(activity, list):
        raise Skip(Reason.BAD_SIDECAR, f"voice_activity must be a list of [start, end], got {type(activity).__name__}")
    regions = []
    for n, pair in enumerate(activity):
        ok = (
            isinstance(pair, (list, tuple)) and len(pair) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in pair)
        )
        if not ok:
            raise Skip(Reason.BAD_SIDECAR, f"voice_activity[{n}] = {pair!r} is not [start, end] in seconds")
        regions.append(vad.Region(float(pair[0]), float(pair[1])))
    return regions


def _energy_regions(path: Path, settings: _Settings) -> list[vad.Region]:
    try:
        energy = vad.frame_energy_file(path, settings.frame_shift)
    except RuntimeError as e:  # soundfile's decode errors: probe_audio read the header, so the stream is damaged
        raise Skip(Reason.DAMAGED_AUDIO, f"decoding for VAD failed: {e.__class__.__name__}: {e}; "
                                         "re-copy or re-encode the file") from e
    return vad.energy_vad(
        energy, threshold_db=settings.threshold_db, floor_db=settings.floor_db, hangover=settings.hangover,
        min_silence=settings.min_silence, min_speech=settings.min_speech,
    )

