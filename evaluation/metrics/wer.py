"""Word error rate with an openai-whisper checkpoint read from a local file.

Checkpoint format: the ``.pt`` that ``whisper.load_model`` reads, a dict with ``"dims"`` (plain dict of
``ModelDimensions`` fields) and ``"model_state_dict"`` -- e.g. ``large-v3.pt`` copied from a machine
with network. Decoding is deterministic greedy (temperature 0, no fallback, no conditioning on
previous text) with English forced; ``sample_len`` caps the tokens per 30 s window so a bad model
cannot decode forever. Scoring (English normalisation, the hypothesis-length cap for Whisper's
repetition loops, corpus aggregation) is shared with the faster-whisper backend: see ``whisper_scoring``.

NS3 itself used HuBERT-Large CTC, so Whisper WER is not directly comparable to the paper's column.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import register
# scoring helpers live in whisper_scoring; re-exported because callers have long imported them from here
from .whisper_scoring import (WhisperTranscriptWER, capped_word_errors, hypothesis_word_limit,  # noqa: F401
                              normalize_english, word_errors)


@register("wer")
class WhisperWER(WhisperTranscriptWER):
    """openai-whisper transcript of the waveform against the reference text."""

    name = "wer"
    model_description = "Whisper checkpoint (.pt)"

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", language: str = "en",
                 sample_len: int = 128, beam_size: int | None = None) -> None:
        self._init_local(checkpoint, device)
        self.language = language
        self.sample_len = sample_len
        self.beam_size = beam_size

    def _load_model(self):
        import whisper

        path = Path(self.checkpoint)
        # load_model downloads when given a model *name*; only ever hand it an existing file
        if not path.is_file():
            raise ValueError(f"{path}: Whisper checkpoint must be a .pt file (dict with 'dims' and "
                             "'model_state_dict'); a faster-whisper (CTranslate2) directory is read by "
                             "wer_faster_whisper")
        try:
            return whisper.load_model(str(path), device=self.device)
        except (KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a Whisper checkpoint; expected a dict with 'dims' (plain dict) "
                             f"and 'model_state_dict' ({type(e).__name__}: {e})") from e

    def transcribe(self, wav: np.ndarray) -> str:
        """``[T]`` float32 16 kHz -> transcript text."""
        import whisper

        result = whisper.transcribe(
            self._load(), wav.astype(np.float32), language=self.language, task="transcribe",
            temperature=0.0, condition_on_previous_text=False, fp16=False, without_timestamps=True,
            sample_len=self.sample_len, beam_size=self.beam_size, verbose=None,
        )
        return str(result["text"])
