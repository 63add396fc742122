"""Records every corpus reader yields: kept utterances and rejections with reasons (counts reconcile)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RawUtterance:
    """One utterance found in a corpus, before resampling and sharding.

    ``key`` is unique within the corpus and safe for WebDataset (no dots, no slashes).
    ``start``/``end`` (seconds) select a segment of ``path`` (LibriLight VAD segments); None = whole file.
    ``extra`` carries layout-specific fields (e.g. RAVDESS emotion, intensity, statement).
    """

    key: str
    speaker: str
    path: Path
    text: str
    duration: float
    chapter: str = ""
    start: float | None = None
    end: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


@dataclass(frozen=True)
class Rejection:
    """A file (or segment) that was skipped, and why. ``reason`` is a short stable code, ``detail`` free text."""

    path: Path
    reason: str
    detail: str = ""

    def to_json(self) -> dict:
        return {"path": str(self.path), "reason": self.reason, "detail": self.detail}


@dataclass
class ReadResult:
    """What a reader found. Invariant: ``found == len(kept) + len(rejected)``."""

    kept: list[RawUtterance]
    rejected: list[Rejection]
    found: int

    def check(self) -> None:
        if self.found != len(self.kept) + len(self.rejected):
            raise AssertionError(
                f"reader counts do not reconcile: found {self.found} != kept {len(self.kept)} + rejected {len(self.rejected)}"
            )
