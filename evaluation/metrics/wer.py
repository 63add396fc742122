"""Word error rate with an openai-whisper checkpoint read from a local file.

Checkpoint format: the ``.pt`` that ``whisper.load_model`` reads, a dict with ``"dims"`` (plain dict of
``ModelDimensions`` fields) and ``"model_state_dict"`` -- e.g. ``large-v3.pt`` copied from a machine
with network. Decoding is deterministic greedy (temperature 0, no fallback, no conditioning on
previous text) with English forced; ``sample_len`` caps the tokens per 30 s window so a bad model
cannot decode forever. Reference and hypothesis both go through Whisper's ``EnglishTextNormalizer``
(case, punctuation, contractions, numbers, British spellings) before jiwer scores words.

Hypothesis length cap: on unintelligible audio Whisper falls into repetition loops ("no no no ...")
and keeps going until ``sample_len`` tokens in *every* 30 s window, so ``sample_len`` alone still
lets one utterance reach WER 20+ (22.5 was measured on a poor codec's output) and dominate the
corpus WER. The normalised hypothesis is therefore cut to ``max(2 * reference words, 10)`` words
before scoring (``truncated=1`` in the detail when it was): a genuine transcript is practically
never twice as long as its reference, and the floor of 10 keeps very short references from being
cut on an honest extra word. The detail's ``hypothesis`` keeps the full text, loop included. Rates
above 1 remain possible, which is why the corpus also reports ``wer_utt_mean_capped``.

NS3 itself used HuBERT-Large CTC, so Whisper WER is not directly comparable to the paper's column.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import CorpusResult, LocalModel, MetricValue, TranscriptMetric, register
from .error_rate import aggregate_error_rate, token_errors


@lru_cache(maxsize=1)
def _english_normalizer():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()  # builds large regex tables: make it once


def normalize_english(text: str) -> list[str]:
    """Whisper's English normaliser, split into words."""
    return _english_normalizer()(text).split()


def word_errors(reference: str, hypothesis: str) -> MetricValue:
    """WER of two raw transcripts after English normalisation of both."""
    return token_errors(normalize_english(reference), normalize_english(hypothesis), unit="word",
                        hypothesis_text=hypothesis.strip())


def hypothesis_word_limit(n_reference_words: int) -> int:
    """Most hypothesis words scored against a reference of ``n_reference_words`` (see the module docstring)."""
    return max(2 * n_reference_words, 10)


def capped_word_errors(reference: str, hypothesis: str) -> MetricValue:
    """``word_errors`` with the normalised hypothesis cut to ``hypothesis_word_limit`` words;
    the detail gains ``truncated`` (1 if words were cut, else 0)."""
    ref = normalize_english(reference)
    hyp = normalize_english(hypothesis)
    limit = hypothesis_word_limit(len(ref))
    truncated = len(hyp) > limit
    v = token_errors(ref, hyp[:limit], unit="word", hypothesis_text=hypothesis.strip())
    detail = {**v.detail, "truncated": int(truncated)}
    return MetricValue(value=v.value, reason=v.reason, detail=detail)


@register("wer")
class WhisperWER(LocalModel, TranscriptMetric[str]):
    """Whisper ASR transcript of the waveform against the reference text."""

    name = "wer"
    higher_is_better = False
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
            raise ValueError(f"{path}: Whisper checkpoint must be a .pt file (dict with 'dims' and 'model_state_dict')")
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

    def _score(self, wav: np.ndarray, reference: str) -> MetricValue:
        return capped_word_errors(reference, self.transcribe(wav))

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        if not any(v.available for v in values) and self.unavailable_reason:
            return super().aggregate(values)
        return aggregate_error_rate(self.name, values)
