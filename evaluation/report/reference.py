"""The paper's reference numbers, as data, each tagged with the table it comes from.

Every number below is transcribed by hand from NaturalSpeech 3 (Ju et al., 2024, arXiv 2403.03100),
via the project's reading notes (shared notes/evaluation.md §0, notes/ns3_diffusion.md §8 and the
seed notes). They are quoted beside our own measurements, never used as results. Table numbers follow
the arXiv version; where a table's number is inferred from its position it says so in ``source``.

Units are the paper's: PESQ (flavour not stated in the paper), STOI in [0, 1], MSTFT and MCD as
distances, bitrate in kbps, Sim-O as a cosine, WER in percent, RTF as seconds of compute per second of speech.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

PAPER = "NaturalSpeech 3 (arXiv 2403.03100)"


@dataclass(frozen=True)
class PaperCodecRow:
    """One row of the codec reconstruction table (T13)."""

    system: str
    sample_rate_khz: float
    hop: int
    codebooks: int
    bitrate_kbps: float
    pesq: float
    stoi: float
    mstft: float
    mcd: float
    origin: str  # how the paper obtained the row (official checkpoint, reproduced, ...)
    source: str = "T13"


# T13 (Appendix B.2). Markers in the paper: ‡ official checkpoint, ⋆ reproduced checkpoint,
# ◇ reproduced following the original paper. All use codebook size 1024.
PAPER_CODEC: tuple[PaperCodecRow, ...] = (
    PaperCodecRow("EnCodec", 24, 320, 8, 6.0, 3.28, 0.94, 0.99, 2.70, "official checkpoint"),
    PaperCodecRow("EnCodec", 16, 320, 10, 5.0, 3.10, 0.92, 0.97, 3.10, "reproduced checkpoint"),
    PaperCodecRow("HiFi-Codec", 16, 320, 4, 2.0, 3.17, 0.93, 0.98, 3.05, "official checkpoint"),
    PaperCodecRow("DAC", 16, 320, 9, 4.5, 3.52, 0.95, 0.97, 2.65, "official checkpoint"),
    PaperCodecRow("SoundStream", 16, 200, 6, 4.8, 3.03, 0.90, 1.07, 3.38, "reproduced (original recipe)"),
    PaperCodecRow("SoundStream", 16, 200, 12, 9.6, 3.45, 0.94, 0.92, 2.76, "reproduced (original recipe)"),
    PaperCodecRow("FACodec", 16, 200, 6, 4.8, 3.47, 0.95, 0.93, 2.59, "the paper's codec"),
)


@dataclass(frozen=True)
class PaperVCRow:
    """One row of the zero-shot voice conversion table (T14, VCTK). ``None``: the paper prints '-'."""

    system: str
    sim_o: float | None
    wer_percent: float | None
    source: str = "T14"


# T14 (Appendix B.3). Sim-O there uses wavlm-base-plus-sv (footnote 15, the HF x-vector model, not the
# WavLM-TDNN of the TTS tables); WER uses HuBERT-large CTC.
PAPER_VC_SIM_MODEL = "WavLM-base-plus-sv"
PAPER_VC: tuple[PaperVCRow, ...] = (
    PaperVCRow("Ground Truth", None, 3.25),
    PaperVCRow("YourTTS", 0.72, 10.1),
    PaperVCRow("Make-A-Voice (VC)", 0.68, 6.20),
    PaperVCRow("LM-VC", 0.82, 4.91),
    PaperVCRow("UniAudio", 0.87, 4.80),
    PaperVCRow("FACodec", 0.86, 3.46),
)


@dataclass(frozen=True)
class PaperAblation:
    """A paper ablation: metric -> (value with the component, value without it), plus the table id.

    "with" is the paper's full FACodec / NS3 setting; "without" is the ablated one.
    """

    name: str
    source: str
    with_label: str
    without_label: str
    values: Mapping[str, tuple[float, float]]


# T15 (Appendix B.4): VC Sim-O with and without the 8-d information bottleneck in every VQ.
PAPER_BOTTLENECK = PaperAblation(
    name="information_bottleneck", source="T15", with_label="w. information bottleneck",
    without_label="w.o. information bottleneck", values={"sim_o": (0.86, 0.73)},
)

# Appendix B.4, the table right after T15 (T16 by position): FACodec with 6 codebooks against the same
# codec without the 3 detail quantizers.
PAPER_DETAIL = PaperAblation(
    name="detail_codebooks", source="T16 (numbered by position)", with_label="FACodec (6 codebooks)",
    without_label="- acoustic detail quantizers (3 codebooks)",
    values={"pesq": (3.47, 3.09), "stoi": (0.95, 0.92), "mstft": (0.93, 1.08), "mcd": (2.59, 3.12)},
)

# T4 (§4.3.1): prosody representation, measured on TTS output for RAVDESS (average MCD, MCD-Acc). "With" is
# the FVQ prosody branch on the encoder output (our V1); "without" quantizes the first 20 mel bins (our V2).
PAPER_PROSODY = PaperAblation(
    name="prosody_input", source="T4", with_label="NaturalSpeech 3 (prosody FVQ)", without_label="Mel 20 Bins",
    values={"ravdess_mcd": (4.28, 4.34), "mcd_acc": (0.52, 0.46)},
)

PAPER_ABLATIONS: Mapping[str, PaperAblation] = {
    a.name: a for a in (PAPER_BOTTLENECK, PAPER_DETAIL, PAPER_PROSODY)
}


# ------------------------------------------------------------------------------------------ TTS tables
# Zero-shot TTS (paper §4.2 and Appendix A): LibriSpeech test-clean with a 3-s prompt (T1, UTMOS in T9),
# RAVDESS prosody (T2, per emotion in T12), speed (T10), ablations (T3, T11). The similarity model of every
# Sim number below is WavLM-TDNN (UniSpeech speaker verification); WER is HuBERT-large CTC, in percent.

PAPER_TTS_SIM_MODEL = "WavLM-TDNN"
PAPER_TTS_WER_MODEL = "HuBERT-large CTC"
PAPER_RTF_HARDWARE = "one V100 GPU, E5-2690 Xeon"
RAVDESS_EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


@dataclass(frozen=True)
class PaperTTSRow:
    """One row of T1 (Sim-O, Sim-R, WER) with its T9 UTMOS. ``None``: the paper prints '-' or has no value."""

    system: str
    sim_o: float | None
    sim_r: float | None
    wer_percent: float | None
    utmos: float | None
    source: str = "T1 / T9"


# T1 and T9. The T9 UTMOS column was rebuilt from garbled table text (notes/evaluation.md §0): confirm against
# the PDF before quoting it. WER* (Conformer-T) is T9 only: NS3 1.13, ground truth 0.68 (as extracted, low).
PAPER_TTS: tuple[PaperTTSRow, ...] = (
    PaperTTSRow("Ground Truth", 0.68, None, 1.94, 4.14),
    PaperTTSRow("VALL-E (reproduced)", 0.47, 0.51, 6.11, 3.68),
    PaperTTSRow("NaturalSpeech 2", 0.55, 0.62, 1.94, 3.88),
    PaperTTSRow("Voicebox (authors' samples)", 0.64, 0.67, 2.03, 3.82),
    PaperTTSRow("Voicebox (reproduced)", 0.48, 0.50, 2.14, 3.73),
    PaperTTSRow("Mega-TTS 2", 0.53, None, 2.32, 4.02),
    PaperTTSRow("UniAudio", 0.57, 0.68, 2.49, 3.79),
    PaperTTSRow("StyleTTS 2", 0.38, None, 2.49, 3.94),
    PaperTTSRow("HierSpeech++", 0.51, None, 6.33, 3.80),
    PaperTTSRow("NaturalSpeech 3", 0.67, 0.76, 1.81, 4.30),
)
# Human tests (T1), which this pipeline does not run: CMOS / SMOS.
PAPER_TTS_HUMAN = {"NaturalSpeech 3": (0.00, 4.01), "Ground Truth": (0.08, 3.85)}
PAPER_TTS_WER_STAR = {"NaturalSpeech 3": 1.13, "Ground Truth": 0.68}


@dataclass(frozen=True)
class PaperProsodyRow:
    """One row of T2 (RAVDESS average MCD and MCD-Acc), with T12's per-emotion MCD where transcribed."""

    system: str
    mcd: float
    mcd_acc: float
    per_emotion: Mapping[str, float] | None = None  # emotion -> MCD (T12); None: not transcribed
    source: str = "T2"


PAPER_RAVDESS: tuple[PaperProsodyRow, ...] = (
    PaperProsodyRow("Ground Truth", 0.00, 1.00),
    PaperProsodyRow("VALL-E", 5.03, 0.34),
    PaperProsodyRow("NaturalSpeech 2", 4.56, 0.25),
    PaperProsodyRow("Voicebox", 4.88, 0.34),
    PaperProsodyRow("Mega-TTS 2", 4.44, 0.39),
    PaperProsodyRow("StyleTTS 2", 4.50, 0.40),
    PaperProsodyRow("HierSpeech++", 6.08, 0.30),
    PaperProsodyRow("NaturalSpeech 3", 4.28, 0.52, {
        "neutral": 3.23, "calm": 4.32, "happy": 4.26, "sad": 4.41, "angry": 4.64, "fearful": 4.25,
        "disgust": 4.80, "surprised": 4.45}, source="T2 / T12"),
)


@dataclass(frozen=True)
class PaperSpeedRow:
    """One row of T10 (Appendix A.5): forward passes, real-time factor on the paper's V100, quality."""

    system: str
    nfe: int | None  # None: autoregressive, no fixed count
    rtf: float
    sim_o: float
    sim_r: float
    utmos: float
    source: str = "T10"


PAPER_SPEED: tuple[PaperSpeedRow, ...] = (
    PaperSpeedRow("NaturalSpeech 2", 150, 0.366, 0.55, 0.62, 3.87),
    PaperSpeedRow("VALL-E", None, 4.520, 0.47, 0.51, 3.67),
    PaperSpeedRow("NaturalSpeech 3", 60, 0.296, 0.67, 0.76, 4.30),
    PaperSpeedRow("NaturalSpeech 3 one-step", 15, 0.067, 0.66, 0.75, 4.01),
)

# T3 (§4.3.1), LibriSpeech test-clean. -factorization: a reproduced SoundStream codec and one diffusion over
# its tokens; -cfg: no guidance, iterations doubled so it stays at 60 NFE.
PAPER_NO_FACTORIZATION = PaperAblation(
    name="factorization", source="T3", with_label="NaturalSpeech 3", without_label="-factorization",
    values={"sim_o": (0.67, 0.55), "sim_r": (0.76, 0.61), "wer": (1.81, 2.49)},
)
PAPER_NO_CFG = PaperAblation(
    name="cfg", source="T3", with_label="NaturalSpeech 3", without_label="-cfg",
    values={"sim_o": (0.67, 0.64), "sim_r": (0.76, 0.72), "wer": (1.81, 1.81)},
)

# T11 (Appendix A.6), duration ablations. Its NS3 WER is 1.94, not T1's 1.81; the paper does not say why, and
# its prose deltas (+0.44, +0.55, +0.89) are consistent with 1.94.
_T11_NS3 = {"sim_o": 0.67, "sim_r": 0.76, "wer": 1.94, "utmos": 4.30}


def _t11(name: str, label: str, sim_o: float, sim_r: float, wer: float, utmos: float) -> PaperAblation:
    ours = {"sim_o": sim_o, "sim_r": sim_r, "wer": wer, "utmos": utmos}
    return PaperAblation(name=name, source="T11", with_label="NaturalSpeech 3", without_label=label,
                         values={k: (_T11_NS3[k], v) for k, v in ours.items()})


PAPER_DURATION_ONE_STEP = _t11("duration_one_step", "duration multi-step -> one-step", 0.62, 0.73, 1.94, 4.18)
PAPER_DURATION_L2 = _t11("duration_l2", "duration CE -> L2 regression", 0.62, 0.72, 2.38, 4.13)
PAPER_DURATION_NO_PROSODY = _t11("duration_no_prosody", "duration without phone-level prosody",
                                 0.62, 0.72, 2.49, 4.11)
PAPER_DURATION_NO_PROMPT = _t11("duration_no_prompt", "duration without prompt", 0.61, 0.71, 2.83, 4.08)

PAPER_TTS_ABLATIONS: Mapping[str, PaperAblation] = {
    a.name: a for a in (PAPER_NO_FACTORIZATION, PAPER_NO_CFG, PAPER_PROSODY, PAPER_DURATION_ONE_STEP,
                        PAPER_DURATION_L2, PAPER_DURATION_NO_PROSODY, PAPER_DURATION_NO_PROMPT)
}
