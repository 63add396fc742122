"""Evaluation metrics, one module each, all behind one interface (see ``base``).

``build_metric(name, **kwargs)`` constructs any of them by the key used in MLflow, the metrics JSON
and the report: pesq_wb, pesq_nb, pesq_nb_raw, stoi, mstft, mcd, f0_rmse, mcd_acc, sim_resemblyzer, sim_wavlm,
sim_wavlm_tdnn (the paper's WavLM-Large + ECAPA-TDNN), wer (openai-whisper), wer_faster_whisper (Whisper in
CTranslate2), wer_hubert (HuBERT CTC, NS3's WER model), per, utmos, dnsmos, rtf; ``build_whisper_wer`` picks the
Whisper runtime from the checkpoint's format. Heavy libraries (torch models, transformers, whisper, faster-whisper,
onnxruntime) load on first use.
"""
from . import (  # noqa: F401  (importing registers each metric)
    dnsmos,
    f0_error,
    mcd,
    mcd_acc,
    mstft,
    per,
    pesq_metric,
    rtf,
    sim_resemblyzer,
    sim_wavlm,
    sim_wavlm_tdnn,
    stoi_metric,
    utmos,
    wer,
    wer_faster_whisper,
    wer_hubert,
)
from .base import (
    CorpusResult,
    Metric,
    MetricValue,
    PairwiseMetric,
    SignalMetric,
    TranscriptMetric,
    build_metric,
    check_waveform,
    metric_names,
)
from .whisper_backend import build_whisper_wer

__all__ = [
    "CorpusResult", "Metric", "MetricValue", "PairwiseMetric", "SignalMetric", "TranscriptMetric",
    "build_metric", "build_whisper_wer", "check_waveform", "metric_names",
]
