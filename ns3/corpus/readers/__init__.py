"""Readers for the corpus layouts ns3 accepts, each returning a ``ReadResult`` (kept + rejected = found).

``read_corpus(layout, root, **kw)`` picks the reader by layout name; the layout-specific keyword
arguments are those of the reader it dispatches to.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ns3.corpus.readers.common import CorpusLayoutError, Reason, sanitize_key
from ns3.corpus.readers.librilight import read_librilight
from ns3.corpus.readers.librispeech import parse_transcript, read_librispeech
from ns3.corpus.readers.ravdess import RavdessName, parse_ravdess_name, read_ravdess
from ns3.corpus.readers.report import summarize, write_rejections
from ns3.corpus.types import ReadResult

READERS: dict[str, Callable[..., ReadResult]] = {
    "librispeech": read_librispeech,
    "librilight": read_librilight,
    "ravdess": read_ravdess,
}


def read_corpus(layout: str, root: str | Path, **kwargs) -> ReadResult:
    """Read ``root`` with the reader for ``layout`` ("librispeech" | "librilight" | "ravdess")."""
    reader = READERS.get(layout)
    if reader is None:
        raise ValueError(f"unknown corpus layout {layout!r}; choose one of {sorted(READERS)}")
    return reader(root, **kwargs)


__all__ = [
    "READERS", "CorpusLayoutError", "RavdessName", "Reason", "parse_ravdess_name", "parse_transcript", "read_corpus",
    "read_librilight", "read_librispeech", "read_ravdess", "sanitize_key", "summarize", "write_rejections",
]
