"""DNSMOS (Microsoft's non-intrusive speech-quality predictor) with the ONNX models the ``speechmos`` wheel ships.

Two models score each clip: DNSMOS P.835 (``dnsmos_models/sig_bak_ovr.onnx``: signal quality SIG,
background noise BAK and overall quality OVRL on a 1..5 MOS scale, after the polynomial mapping of the
DNS Challenge) and DNSMOS P.808 (``dnsmos_models/model_v8.onnx``: one overall MOS from a log-mel
input). ``value`` is OVRL; the detail carries ``sig``/``bak``/``ovrl``/``p808`` and the corpus adds
their means as ``dnsmos_sig``, ``dnsmos_bak`` and ``dnsmos_p808``. Scoring is speechmos's own
``DNSMOS.__call__`` (9.01 s windows at a 1 s hop, averaged; shorter clips are tiled up to 9.01 s, so
each clip costs about as much as 9 s of audio), with the ONNX sessions built here on the CPU provider
and ``num_threads`` threads -- speechmos's own sessions take every core.

speechmos refuses samples outside [-1, 1]; a generated waveform that overshoots is clipped to that
range first (as writing it to a 16-bit file would) and the detail records how many samples were
clipped. Not installed -> the metric is unavailable with the reason (``pip install 'ns3[dnsmos]'``).

Measured on this corpus (notes/offline_evaluators.md): OVRL 2.55 on clean espeak speech, 1.74 with
white noise at 5 dB SNR; it does not notice unintelligible codec output (only P.808 drops), so it is
a noise / artefact indicator, not a substitute for UTMOS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .base import SAMPLE_RATE, CorpusResult, MetricValue, SignalMetric, register

INSTALL_HINT = "pip install 'ns3[dnsmos]'"


def dnsmos_model_paths(personalized: bool = False) -> tuple[Path, Path]:
    """(P.835 model, P.808 model) inside the installed speechmos package."""
    import speechmos

    root = Path(speechmos.__file__).parent
    primary = root / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    return primary, root / "dnsmos_models" / "model_v8.onnx"


@register("dnsmos")
class DNSMOS(SignalMetric):
    """DNSMOS P.835 OVRL (1..5) of one waveform, with SIG, BAK and P.808 alongside."""

    name = "dnsmos"
    higher_is_better = True

    def __init__(self, personalized: bool = False, num_threads: int = 1) -> None:
        """``personalized``: the personalised-DNSMOS P.835 model (interfering talkers count as noise)."""
        if num_threads < 1:
            raise ValueError(f"dnsmos: num_threads must be >= 1, got {num_threads}")
        self.personalized = personalized
        self.num_threads = num_threads
        self._reason: str | None = None
        self._checked = False
        self._scorer = None

    @property
    def unavailable_reason(self) -> str | None:
        # checked on first use: importing onnxruntime and librosa (via speechmos) is not free
        if not self._checked:
            self._reason = self._find_reason()
            self._checked = True
        return self._reason

    def _find_reason(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
            import speechmos.dnsmos  # noqa: F401  (also imports librosa and requests)
        except ImportError as e:
            return f"dnsmos needs the speechmos and onnxruntime packages ({e}); {INSTALL_HINT}"
        missing = [str(p) for p in dnsmos_model_paths(self.personalized) if not p.is_file()]
        if missing:
            return f"dnsmos: the speechmos package lacks its ONNX models ({', '.join(missing)}); reinstall it"
        return None

    def _load(self):
        if self._scorer is None:
            import onnxruntime as ort
            from speechmos.dnsmos import DNSMOS as Scorer

            primary, p808 = (str(p) for p in dnsmos_model_paths(self.personalized))
            scorer = Scorer(primary, p808)
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.num_threads
            options.inter_op_num_threads = 1
            # replace speechmos's sessions (default options: a thread per core) with bounded ones
            scorer.onnx_sess = ort.InferenceSession(primary, sess_options=options, providers=["CPUExecutionProvider"])
            scorer.p808_onnx_sess = ort.InferenceSession(p808, sess_options=options, providers=["CPUExecutionProvider"])
            self._scorer = scorer
        return self._scorer

    def _score(self, wav: np.ndarray) -> MetricValue:
        clipped = int(np.count_nonzero(np.abs(wav) > 1.0))
        if clipped:
            wav = np.clip(wav, -1.0, 1.0)
        out = self._load()(wav, SAMPLE_RATE, self.personalized)
        sig, bak, ovrl, p808 = (float(out[k]) for k in ("sig_mos", "bak_mos", "ovrl_mos", "p808_mos"))
        return MetricValue.of(ovrl, sig=sig, bak=bak, ovrl=ovrl, p808=p808, clipped=clipped)

    def aggregate(self, values: Sequence[MetricValue]) -> CorpusResult:
        result = super().aggregate(values)
        scored = [v for v in values if v.available]
        if result.value is None or not scored:
            return result
        extras = {f"dnsmos_{k}": float(np.mean([float(v.detail[k]) for v in scored])) for k in ("sig", "bak", "p808")}
        return CorpusResult(self.name, result.value, list(values), extras=extras)
