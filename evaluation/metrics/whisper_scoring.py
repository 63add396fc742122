"""How a Whisper transcript is scored, whichever runtime decoded it (openai-whisper ``wer``, CTranslate2
``wer_faster_whisper``): English normalisation, the hypothesis-length cap and corpus aggregation.

Normalisation: reference and hypothesis both go through Whisper's ``EnglishTextNormalizer`` (case,
punctuation, contractions, numbers, British spellings) before jiwer scores words. It ships with the
openai-whisper package only, so that package is needed even when faster-whisper does the decoding.

Hypothesis length cap: on unintelligible audio Whisper falls into repetition loops ("no no no ...")
and keeps going until its token budget in *every* 30 s window, so a token budget alone still lets one
utterance reach WER 20+ (22.5 was measured on a poor codec's output) and dominate the corpus WER. The
normalised hypothesis is therefore cut to ``max(2 * reference words, 10)`` words before scoring
(``truncated=1`` in the detail when it was): a genuine transcript is practically never twice as long
as its reference, and the floor of 10 keeps very short references from being cut on an honest extra
word. The detail's ``hypothesis`` keeps the full text, loop included. Rates above 1 remain possible,
which is why the corpus also reports ``<name>_utt_mean_capped``.
"""
from __future__ import annotations

from abc import abstractmethod
from functools import lru_cache
from typing import Sequence

import numpy as np

from .base import CorpusResult, LocalModel, MetricValue, TranscriptMetric
from .error_rate import aggregate_error_rate, token_errors


@lru_cache(maxsize=1)
def _english_normalizer():
    try:
        from whisper.normalizers import EnglishTextNormalizer
    except ImportError as e:  # faster-whisper users may not have it; say which package, not just the module
        raise ImportError("Whisper WER normalises text with openai-whisper's EnglishTextNormalizer: install "
                          "openai-whisper (`make install` does: pip install --no-deps openai-whisper==20250625 "
                          "plus the `whisper` extra)") from e

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


class WhisperTranscriptWER(LocalModel, TranscriptMetric[str]):
    """A Whisper runtime's transcript of the waveform against the reference text.

    Subclasses load their runtime's model (``_load_model``) and decode (``transcribe``); scoring and
    aggregation are the same for all of them, so the runtimes' numbers differ only by their decoders.
    """

    higher_is_better = False

    @abstractmethod
    def transcribe(self, wav: np.ndarray) -> str:
        """``[T]`` float32 16 kHz -> transcript text."""

    def _score(self, wav: np.ndarray, reference: str) -> MetricValue:
        return capped_word_errors(reference, self.transcribe(wav))

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        if not any(v.available for v in values) and self.unavailable_reason:
            return super().aggregate(values)
        return aggregate_error_rate(self.name, values)
