"""Token edit-distance scoring shared by WER and PER.

Per utterance: (substitutions + deletions + insertions) / reference tokens via ``jiwer.process_words``.
Corpus: total errors / total reference tokens (the usual ASR convention). The seed-tts-eval style
mean of per-utterance rates is kept alongside as ``<name>_utt_mean`` (notes/evaluation.md §1.1), and
``<name>_utt_mean_capped``, the same mean with each utterance's rate capped at 1.0: insertions are
unbounded, so one utterance an ASR model loops on ("no no no ...", WER 20+) can outweigh a whole
corpus in both other numbers; the capped mean says how many utterances were lost instead.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .base import CorpusResult, MetricValue, mean_of_available


def token_errors(reference: Sequence[str], hypothesis: Sequence[str], unit: str = "word",
                 hypothesis_text: str | None = None) -> MetricValue:
    """Error rate of ``hypothesis`` against ``reference`` token lists (tokens may not contain spaces)."""
    import jiwer

    for tok in (*reference, *hypothesis):
        if not tok or any(c.isspace() for c in tok):
            raise ValueError(f"{unit} tokens must be non-empty and free of whitespace, got {tok!r}")
    if not reference:
        return MetricValue.unavailable(f"empty reference: no {unit}s to score against")
    ref, hyp = " ".join(reference), " ".join(hypothesis)
    if not hypothesis:  # everything deleted; jiwer wants a non-empty string here
        return MetricValue.of(1.0, errors=len(reference), tokens=len(reference), substitutions=0,
                              deletions=len(reference), insertions=0, hypothesis=hypothesis_text or "")
    out = jiwer.process_words(ref, hyp)
    errors = out.substitutions + out.deletions + out.insertions
    return MetricValue.of(errors / len(reference), errors=errors, tokens=len(reference),
                          substitutions=out.substitutions, deletions=out.deletions, insertions=out.insertions,
                          hypothesis=hyp if hypothesis_text is None else hypothesis_text)


def aggregate_error_rate(name: str, values: Sequence[MetricValue]) -> CorpusResult:
    """Corpus rate = Σ errors / Σ reference tokens; ``extras[f"{name}_utt_mean"]`` = mean per-utterance rate,
    ``extras[f"{name}_utt_mean_capped"]`` = mean of min(per-utterance rate, 1)."""
    result = mean_of_available(name, values)
    scored = [v for v in values if v.available]
    if not scored:
        return result
    errors = sum(int(v.detail["errors"]) for v in scored)
    tokens = sum(int(v.detail["tokens"]) for v in scored)
    rates = np.array([v.value for v in scored])
    return CorpusResult(name, errors / tokens, list(values),
                        extras={f"{name}_utt_mean": float(rates.mean()),
                                f"{name}_utt_mean_capped": float(np.minimum(rates, 1.0).mean())})
