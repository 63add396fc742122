"""Word error rate with a HuBERT CTC recogniser read from a local Hugging Face directory (NS3's WER model).

NS3 Table 1 scores WER with ``facebook/hubert-large-ls960-ft`` (HuBERT-Large fine-tuned with CTC on
LibriSpeech 960 h); this metric runs that model, so its numbers are the ones comparable to the paper's
column (``wer``, the Whisper backend, is not).

Format: a ``HubertForCTC`` directory as ``save_pretrained`` writes it and the hub repo holds it --
``config.json`` (``model_type`` "hubert"), the weights (``model.safetensors`` or
``pytorch_model.bin``), the tokenizer's ``vocab.json`` (plus ``tokenizer_config.json`` /
``special_tokens_map.json``) and the feature extractor's ``preprocessor_config.json`` (or the
``processor_config.json`` a transformers-5 ``Wav2Vec2Processor.save_pretrained`` writes);
``Wav2Vec2Processor`` reads the last two groups.

Decoding is greedy CTC (argmax per frame, then the tokenizer collapses repeats, drops the blank and
turns ``|`` into spaces), which is how the model card transcribes. The upper-case output and the
reference both go through Whisper's English normaliser (``wer.normalize_english``, so the
``whisper`` extra is needed too) and the corpus is aggregated like ``wer``: Σ errors / Σ words, with
the per-utterance mean and its capped variant as extras. A CTC model emits at most one token per
20 ms frame and has no repetition loop, so no hypothesis-length cap is applied here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .base import SAMPLE_RATE, CorpusResult, LocalModel, MetricValue, TranscriptMetric, cpu_inference, register
from .error_rate import aggregate_error_rate
from .wer import word_errors

FEATURE_EXTRACTOR_FILES = ("preprocessor_config.json", "processor_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "pytorch_model.bin.index.json")


def receptive_field(conv_kernel: Sequence[int], conv_stride: Sequence[int]) -> int:
    """Samples the convolutional front end needs to produce one frame (400 for HuBERT / wav2vec 2.0)."""
    field = 1
    for kernel, stride in zip(reversed(conv_kernel), reversed(conv_stride)):
        field = (field - 1) * stride + kernel
    return field


def check_hubert_ctc_dir(path: Path) -> None:
    """Raise ValueError naming what is missing when ``path`` is not a HubertForCTC + processor directory."""
    hint = "point wer_hubert.checkpoint at a full local copy of facebook/hubert-large-ls960-ft"
    if not path.is_dir():
        raise ValueError(f"{path}: not a Hugging Face HubertForCTC directory (a file, not a directory); {hint}")
    for needed in ("config.json", "vocab.json"):
        if not (path / needed).is_file():
            raise ValueError(f"{path}: not a Hugging Face HubertForCTC directory (no {needed}); {hint}")
    # the hub repo has preprocessor_config.json; transformers 5 saves a whole processor as processor_config.json
    if not any((path / f).is_file() for f in FEATURE_EXTRACTOR_FILES):
        raise ValueError(f"{path}: no feature-extractor settings (no {' or '.join(FEATURE_EXTRACTOR_FILES)}); {hint}")
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        raise ValueError(f"{path}: no weights (expected one of {', '.join(WEIGHT_FILES)}); {hint}")
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"{path}/config.json: not a Hugging Face model config ({e}); {hint}") from e
    if model_type != "hubert":
        raise ValueError(f"{path}/config.json: model_type is {model_type!r}, expected 'hubert'; {hint}")


@register("wer_hubert")
class HubertWER(LocalModel, TranscriptMetric[str]):
    """HuBERT CTC transcript of the waveform against the reference text."""

    name = "wer_hubert"
    higher_is_better = False
    model_description = "HuBERT CTC model directory (facebook/hubert-large-ls960-ft format)"

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu") -> None:
        self._init_local(checkpoint, device)

    def _load_model(self):
        """-> (model, processor, minimum input samples)"""
        path = Path(self.checkpoint)
        check_hubert_ctc_dir(path)
        from transformers import HubertForCTC, Wav2Vec2Processor

        model = HubertForCTC.from_pretrained(str(path)).to(self.device).eval()
        processor = Wav2Vec2Processor.from_pretrained(str(path))
        return model, processor, receptive_field(model.config.conv_kernel, model.config.conv_stride)

    def transcribe(self, wav: np.ndarray) -> str:
        """``[T]`` float32 16 kHz -> transcript text (upper case, as the LibriSpeech-trained model writes it)."""
        model, processor, _ = self._load()
        inputs = processor(wav, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with cpu_inference():
            logits = model(**{k: v.to(self.device) for k, v in inputs.items()}).logits
        return str(processor.batch_decode(logits.argmax(dim=-1).cpu())[0])

    def _score(self, wav: np.ndarray, reference: str) -> MetricValue:
        min_samples = self._load()[2]
        if len(wav) < min_samples:
            return MetricValue.unavailable(f"wer_hubert: {len(wav)} samples is shorter than one HuBERT frame "
                                           f"({min_samples} samples)")
        return word_errors(reference, self.transcribe(wav))

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        if not any(v.available for v in values) and self.unavailable_reason:
            return super().aggregate(values)
        return aggregate_error_rate(self.name, values)
