"""Which Whisper runtime reads a configured checkpoint, decided by the path's format.

One setting (``evaluate.whisper_checkpoint``) names the model and its format picks the metric, so a
user switching runtimes changes a path, not a second flag that could disagree with it:

- a ``.pt`` file: openai-whisper (``wer``);
- a directory with ``model.bin``: faster-whisper / CTranslate2 (``wer_faster_whisper``).

Anything else that exists is an error naming both formats. A path that does not exist is not an
error here: like every local model the metric is then unavailable with "not found" as its reason, and
the path's suffix says which runtime was meant.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .base import Metric, build_metric
from .wer_faster_whisper import CONVERT_HINT, check_ct2_whisper_dir

Runtime = Literal["openai-whisper", "faster-whisper"]
METRIC_OF: dict[str, str] = {"openai-whisper": "wer", "faster-whisper": "wer_faster_whisper"}


@dataclass(frozen=True)
class WhisperBackend:
    """The runtime a checkpoint needs and the registered metric that runs it."""

    runtime: Runtime
    path: Path

    @property
    def metric(self) -> str:
        return METRIC_OF[self.runtime]

    @property
    def label(self) -> str:
        """What the report's model column says produced the WER."""
        return f"Whisper ({self.runtime}, {self.path})"


def detect_whisper_backend(checkpoint: str | Path) -> WhisperBackend:
    """``.pt`` file -> openai-whisper, CTranslate2 directory -> faster-whisper; ValueError for anything else."""
    path = Path(checkpoint)
    if path.is_dir():
        check_ct2_whisper_dir(path)  # a directory can only mean faster-whisper: say which file it lacks
        return WhisperBackend("faster-whisper", path)
    if path.is_file():
        if path.suffix == ".pt":
            return WhisperBackend("openai-whisper", path)
        if path.name == "model.bin":
            check_ct2_whisper_dir(path)  # raises: point at the directory instead
        raise ValueError(f"{path}: not a Whisper model; a Whisper checkpoint is an openai-whisper .pt file or a "
                         f"faster-whisper (CTranslate2) model directory with model.bin; {CONVERT_HINT}")
    return WhisperBackend("openai-whisper" if path.suffix == ".pt" else "faster-whisper", path)


def build_whisper_wer(checkpoint: str | Path | None, **kwargs: Any) -> tuple[Metric, str | None]:
    """The WER metric for ``checkpoint`` and its report label (None when no checkpoint is configured).

    ``kwargs`` go to the chosen metric: ``device``, ``language``, ``sample_len`` and ``beam_size`` mean the
    same to both; ``compute_type``, ``cpu_threads`` and ``vad_filter`` exist only for faster-whisper.
    """
    if checkpoint is None or str(checkpoint) == "":
        return build_metric("wer", checkpoint=None, **kwargs), None
    backend = detect_whisper_backend(checkpoint)
    return build_metric(backend.metric, checkpoint=str(backend.path), **kwargs), backend.label
