"""The paper's reference numbers, as data, each tagged with the table it comes from.

Every number below is transcribed by hand from NaturalSpeech 3 (Ju et al., 2024, arXiv 2403.03100),
via the project's reading notes (shared notes/evaluation.md §0, notes/ns3_diffusion.md §8 and the
seed notes). They are quoted beside our own measurements, never used as results. Table numbers follow
the arXiv version; where a table's number is inferred from its position it says so in ``source``.

Units are the paper's: PESQ (flavour not stated in the paper), STOI in [0, 1], MSTFT and MCD as
distances, bitrate in kbps, Sim-O as a cosine, WER in percent.
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
