"""Word error rate with Whisper as a faster-whisper (CTranslate2) model directory read from a local path.

Format: what ``ct2-transformers-converter`` writes from a Hugging Face Whisper model, with the tokenizer
and feature-extractor settings copied in::

    ct2-transformers-converter --model openai/whisper-base --output_dir whisper-base-ct2 \\
        --copy_files tokenizer.json preprocessor_config.json

i.e. ``model.bin`` (weights), ``config.json`` (CTranslate2's: language ids, suppressed tokens),
``vocabulary.json`` (``vocabulary.txt`` in older conversions such as Systran's hub copies) and
``tokenizer.json``. ``preprocessor_config.json`` is optional for 80-mel models (faster-whisper's
default) and needed for the 128-mel large-v3; a mismatch is an error at load, not a garbage transcript.
``tokenizer.json`` is checked up front because without it faster-whisper silently downloads
openai/whisper-tiny's tokenizer, and weights are never downloaded here.

Decoding mirrors the openai-whisper metric (``wer``) so the two runtimes differ only by their
kernels: English forced, temperature 0 with no fallback, no conditioning on previous text, no
timestamps, ``sample_len`` new tokens per 30 s window, greedy unless ``beam_size`` is given, and no
voice-activity filter unless ``vad_filter`` (a VAD would drop audio the reference still covers).
``compute_type`` "float32" matches ``wer``'s fp32; "int8" (quantised weights) is faster on CPU and
can change a few words. Scoring (normalisation, hypothesis cap, aggregation) is ``whisper_scoring``'s.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .base import register
from .whisper_scoring import WhisperTranscriptWER

CONVERT_HINT = ("convert a Whisper model with `ct2-transformers-converter --model openai/whisper-base "
                "--output_dir <dir> --copy_files tokenizer.json preprocessor_config.json` and point "
                "evaluate.whisper_checkpoint at <dir>")
VOCABULARY_FILES = ("vocabulary.json", "vocabulary.txt")


def _is_transformers_whisper(path: Path) -> bool:
    try:
        return json.loads((path / "config.json").read_text()).get("model_type") == "whisper"
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def check_ct2_whisper_dir(path: Path) -> None:
    """Raise ValueError naming the missing file and the fix when ``path`` is not a faster-whisper model directory."""
    if not path.is_dir():
        where = "point at the directory that holds it" if path.name == "model.bin" else CONVERT_HINT
        raise ValueError(f"{path}: not a faster-whisper model directory (a file, not a directory); {where}")
    if not (path / "model.bin").is_file():
        if _is_transformers_whisper(path):  # the un-converted source: say exactly what to run on it
            raise ValueError(f"{path}: a Hugging Face transformers Whisper directory, not a CTranslate2 one (no "
                             f"model.bin); convert it with `ct2-transformers-converter --model {path} --output_dir "
                             "<dir> --copy_files tokenizer.json preprocessor_config.json`")
        raise ValueError(f"{path}: not a faster-whisper model directory (no model.bin); {CONVERT_HINT}")
    if not (path / "config.json").is_file():
        raise ValueError(f"{path}: no config.json next to model.bin (the converter writes both); {CONVERT_HINT}")
    if not any((path / v).is_file() for v in VOCABULARY_FILES):
        raise ValueError(f"{path}: no {' or '.join(VOCABULARY_FILES)} (the converter writes it); {CONVERT_HINT}")
    if not (path / "tokenizer.json").is_file():
        raise ValueError(f"{path}: no tokenizer.json (faster-whisper would download a tokenizer instead); copy the "
                         f"source model's tokenizer.json in, or {CONVERT_HINT}")


@register("wer_faster_whisper")
class FasterWhisperWER(WhisperTranscriptWER):
    """faster-whisper (CTranslate2) transcript of the waveform against the reference text."""

    name = "wer_faster_whisper"
    model_description = "faster-whisper model directory (CTranslate2 conversion of Whisper)"

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu", language: str = "en",
                 sample_len: int = 128, beam_size: int | None = None, compute_type: str = "float32",
                 cpu_threads: int = 0, vad_filter: bool = False) -> None:
        self._init_local(checkpoint, device)
        self.language = language
        self.sample_len = sample_len
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.vad_filter = vad_filter

    def _load_model(self):
        path = Path(self.checkpoint)
        check_ct2_whisper_dir(path)
        from faster_whisper import WhisperModel

        model = WhisperModel(str(path), device=self.device, compute_type=self.compute_type,
                             cpu_threads=self.cpu_threads, local_files_only=True)
        # faster-whisper falls back to 80 mel bins without preprocessor_config.json; large-v3 wants 128
        # and would otherwise fail deep inside CTranslate2 or, worse, decode nonsense
        made, wanted = model.feature_extractor.mel_filters.shape[0], model.model.n_mels
        if made != wanted:
            raise ValueError(f"{path}: the model takes {wanted} mel bins but preprocessor_config.json gives {made} "
                             "(faster-whisper's default is 80 when the file is absent); copy the source model's "
                             "preprocessor_config.json in (the converter's --copy_files preprocessor_config.json)")
        return model

    def transcribe(self, wav: np.ndarray) -> str:
        """``[T]`` float32 16 kHz -> transcript text."""
        segments, _ = self._load().transcribe(
            wav.astype(np.float32), language=self.language, task="transcribe",
            beam_size=self.beam_size or 1, temperature=0.0, condition_on_previous_text=False,
            without_timestamps=True, max_new_tokens=self.sample_len, vad_filter=self.vad_filter,
        )
        return "".join(s.text for s in segments)  # segments is a generator: decoding happens here
