"""Paper-layout tables from evaluated variants: codec reconstruction (T13) and zero-shot VC (T14).

Our rows come first, then the paper's rows, so a reader sees our number and the paper's side by side.
Every speaker-similarity column names the model that produced it: a number sits beside the paper's only
in the paper's model's column. The ablation tables live in ``ablation``; ``build_tables`` assembles all of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from .ablation import ABLATIONS, RESEMBLYZER, WAVLM, AblationSpec, build_ablation_table, pick_baseline
from .collect import OUR_CODEC, VariantResult
from .reference import PAPER, PAPER_CODEC, PAPER_VC
from .table import Cell, Table, na

CODEC_COLUMNS = ["System", "Source", "Sampling rate (kHz)", "Hop", "Codebooks", "Bitrate (kbps)",
                 "PESQ ↑", "STOI ↑", "MSTFT ↓", "MCD ↓", "F0 RMSE (cents) ↓", "PER (%) ↓",
                 "PER, ground truth (%)", "UTMOS ↑"]
# metric_notes keys shown under the VC table
VC_METRICS = ("sim", "sim_o", "sim_o_wavlm", "sim_src", "wer", "per", "f0_transfer")
VC_COLUMNS = ["System", "Source", f"Sim-O ({WAVLM}) ↑", f"Sim-O ({RESEMBLYZER}) ↑", "WER (%) ↓", "PER (%) ↓",
              "UTMOS ↑", f"Sim to source ({RESEMBLYZER}) ↓", f"Sim-O, own timbre ({RESEMBLYZER})",
              "F0 transfer ↑"]


@dataclass
class ReportTables:
    codec: Table
    vc: Table
    ablations: list[Table] = field(default_factory=list)
    probes: Table | None = None
    baseline: str = ""

    def all(self) -> list[Table]:
        return [self.codec, self.vc, *self.ablations, *([self.probes] if self.probes else [])]


def _metric(result: VariantResult, section: str, system: str, metric: str, digits: int,
            scale: float = 1.0) -> Cell:
    value = result.value(section, system, metric)
    if value is None:
        return na(result.reason(section, system, metric))
    return Cell(round(value * scale, 10), digits)  # round: 0.29 * 100 must not print as 28.999...


def _bitrate(result: VariantResult, system: str) -> Cell:
    """The measured bitrate; for our codec fall back to frames/s x codebooks x log2(entries)."""
    cell = _metric(result, "reconstruction", system, "bitrate_kbps", 1)
    hp = result.codec_hparams
    needed = ("sample_rate", "hop_length", "num_codebooks", "codebook_size")
    if cell.available or system != OUR_CODEC or any(not hp.get(k) for k in needed):
        return cell
    bits = hp["sample_rate"] / hp["hop_length"] * hp["num_codebooks"] * math.log2(hp["codebook_size"])
    return Cell(bits / 1000.0, 1)


def _shape_cells(result: VariantResult, system: str) -> list[Cell]:
    """Sampling rate, hop and codebook count: from the codec's hparams for ours, from the system's own
    metrics block (``sample_rate``, ``hop``, ``codebooks``) for others, else not applicable."""
    if system == OUR_CODEC:
        hp = result.codec_hparams
        sr, hop, books = hp.get("sample_rate"), hp.get("hop_length"), hp.get("num_codebooks")
    else:
        block = result.reconstruction.get(system, {})
        sr, hop, books = block.get("sample_rate"), block.get("hop"), block.get("codebooks")
    return [Cell(sr / 1000.0, 0) if sr else Cell(), Cell(int(hop)) if hop else Cell(),
            Cell(int(books)) if books else Cell()]


def _system_label(system: str, result: VariantResult, several: bool) -> str:
    return f"{system} [{result.name}]" if several and system == OUR_CODEC else system


def build_codec_table(results: Sequence[VariantResult], baseline: VariantResult,
                      pesq_key: str = "pesq_wb") -> Table:
    """T13 layout. Every system of the baseline variant, our codec for each other variant, then the paper."""
    table = Table("codec_reconstruction", "Codec reconstruction (paper Table 13 layout)", list(CODEC_COLUMNS))
    systems = list(dict.fromkeys([*baseline.reconstruction, *baseline.unavailable]))
    systems.sort(key=lambda s: s != OUR_CODEC)  # ours first, the others in evaluation order
    entries = [(baseline, s) for s in systems]
    entries += [(r, OUR_CODEC) for r in results if r is not baseline]
    several = len(results) > 1
    for result, system in entries:
        source = f"ours ({result.name})" if system == OUR_CODEC else "ours (classic codec)"
        table.add([Cell(_system_label(system, result, several)), Cell(source), *_shape_cells(result, system),
                   _bitrate(result, system),
                   _metric(result, "reconstruction", system, pesq_key, 2),
                   _metric(result, "reconstruction", system, "stoi", 2),
                   _metric(result, "reconstruction", system, "mstft", 2),
                   _metric(result, "reconstruction", system, "mcd", 2),
                   _metric(result, "reconstruction", system, "f0_rmse", 0),
                   _metric(result, "reconstruction", system, "per", 1, scale=100.0),
                   _metric(result, "reconstruction", system, "per_reference", 1, scale=100.0),
                   _metric(result, "reconstruction", system, "utmos", 2)])
    for row in PAPER_CODEC:
        table.add([Cell(row.system), Cell(f"paper {row.source}, {row.origin}"), Cell(float(row.sample_rate_khz), 0),
                   Cell(row.hop), Cell(row.codebooks), Cell(row.bitrate_kbps, 1), Cell(row.pesq, 2),
                   Cell(row.stoi, 2), Cell(row.mstft, 2), Cell(row.mcd, 2), Cell(), Cell(), Cell(), Cell()],
                  kind="paper")
    utts = baseline.value("reconstruction", OUR_CODEC, "utterances")
    table.notes += [
        f"Our PESQ column is `{pesq_key}`; the paper does not state its PESQ flavour (Amphion's scripts use raw "
        "narrow-band PESQ), so compare trends rather than absolute values.",
        "F0 RMSE: cents on frames voiced in both signals (WORLD); the paper does not report it, but STOI and "
        "mel distances barely notice a reconstruction that has lost its intonation.",
        "PER: phone error rate of the built-in aligner's recogniser (trained on this corpus) on each system's "
        "reconstructions against the transcript's phones; the ground-truth column is the same recogniser on the "
        "uncoded audio, the floor a codec can reach.",
        "UTMOS: predicted naturalness (UTMOS22 strong, 1-5) of each system's reconstructions; the paper's codec "
        "table has none.",
        f"Paper rows: {PAPER}, transcribed. The paper's test set is not named; ours is "
        + (f"{int(utts)} utterances." if utts else "the evaluate stage's test set."),
    ]
    table.notes += [f"{k}: {v}" for k, v in sorted(baseline.metric_notes.items()) if k not in VC_METRICS]
    return table


def build_vc_table(results: Sequence[VariantResult], baseline: VariantResult) -> Table:
    """T14 layout: our codec's zero-shot VC per variant (Sim-O per speaker model, WER, plus PER, UTMOS and Sim to
    source), then the paper, whose Sim-O lands in its own model's column."""
    table = Table("zero_shot_vc", "Zero-shot voice conversion (paper Table 14 layout)", list(VC_COLUMNS))
    ordered = [baseline, *(r for r in results if r is not baseline)]
    several = len(results) > 1
    systems = list(dict.fromkeys(s for r in ordered for s in (r.vc or {OUR_CODEC: {}})))
    for result in ordered:
        for system in systems:
            table.add([Cell(_system_label(system, result, several)), Cell(f"ours ({result.name})"),
                       _metric(result, "vc", system, "sim_o_wavlm", 2),
                       _metric(result, "vc", system, "sim_o", 2),
                       _metric(result, "vc", system, "wer", 2, scale=100.0),
                       _metric(result, "vc", system, "per", 2, scale=100.0),
                       _metric(result, "vc", system, "utmos", 2),
                       _metric(result, "vc", system, "sim_src", 2),
                       _metric(result, "vc", system, "sim_o_own", 2),
                       _metric(result, "vc", system, "f0_transfer", 2)])
    for row in PAPER_VC:
        table.add([Cell(row.system), Cell(f"paper {row.source}"),
                   Cell(row.sim_o, 2) if row.sim_o is not None else Cell(), Cell(),
                   Cell(row.wer_percent, 2) if row.wer_percent is not None else Cell(), Cell(), Cell(), Cell(), Cell(),
                   Cell()],
                  kind="paper")
    sim = baseline.metric_notes.get("sim")
    table.notes += [
        "Sim-O: speaker similarity of the converted speech to the timbre prompt; Sim to source: to the source "
        "speaker (lower means the source timbre was replaced). Sim-O, own timbre: the control, the same source "
        "codes decoded with the source's own timbre; Sim-O above it is what the timbre swap gained.",
        "F0 transfer: slope of the converted speech's median log-F0 shift (against the control) on the "
        "prompt - source gap; 1 = the prompt's pitch register, 0 = the source's.",
        f"Each Sim-O column names its speaker model. The paper's rows are {WAVLM} (T14, on VCTK), the model of "
        f"our {WAVLM} column (n/a without evaluate.wavlm_checkpoint); {RESEMBLYZER} is an offline stand-in whose "
        "numbers are not comparable with the paper's. The paper's WER is HuBERT-CTC, ours Whisper.",
        f"Our similarity models: {sim or 'see the evaluate stage notes'}.",
        "UTMOS: predicted naturalness (UTMOS22 strong, 1-5) of the converted speech.",
        f"Paper rows: {PAPER}, transcribed.",
    ]
    table.notes += [f"{k}: {v}" for k, v in sorted(baseline.metric_notes.items()) if k in VC_METRICS and k != "sim"]
    return table


PROBE_COLUMNS = ["Code group", "Variant", "Phone accuracy", "Speaker accuracy", "F0 correlation"]
PROBE_EXPECTED = {"content": "Phone accuracy", "timbre": "Speaker accuracy", "prosody": "F0 correlation"}


def build_probe_table(results: Sequence[VariantResult], baseline: VariantResult) -> Table | None:
    """What each code group carries, per variant: probe scores with the chance levels beside them (None: no probes)."""
    ordered = [r for r in [baseline, *(r for r in results if r is not baseline)] if r.probe]
    if not ordered:
        return None
    table = Table("disentanglement", "Disentanglement: probes on frozen codes", list(PROBE_COLUMNS))
    for result in ordered:
        for group in [g for g in result.probe if g != "chance"] + ["chance"]:
            label = "chance level" if group == "chance" else group
            table.add([Cell(label), Cell(result.name),
                       _metric(result, "probe", group, "phone", 3),
                       _metric(result, "probe", group, "speaker", 3),
                       _metric(result, "probe", group, "f0", 3)])
    table.notes += [
        "Small probes (one hidden layer) trained on frozen representations of train-speaker utterances: phone "
        "accuracy per frame and F0 correlation (speaker-normalised log-F0, voiced frames) on the test speakers; "
        "speaker accuracy on held-out utterances of the train speakers. The timbre vector is broadcast to frames.",
        "Expected pattern: " + ", ".join(f"{g} highest in {c}" for g, c in PROBE_EXPECTED.items())
        + "; each group near chance elsewhere. The paper reports no such table.",
    ]
    return table


def build_tables(results: Sequence[VariantResult], baseline: str = "baseline", pesq_key: str = "pesq_wb",
                 ablations: Sequence[AblationSpec] = ABLATIONS) -> ReportTables:
    """All report tables from the collected variants (``baseline`` names the reference variant)."""
    if not results:
        raise ValueError("no evaluated variants to report on (pass metrics files or an MLflow store with runs)")
    base = pick_baseline(results, baseline)
    return ReportTables(
        codec=build_codec_table(results, base, pesq_key),
        vc=build_vc_table(results, base),
        ablations=[build_ablation_table(spec, results, base, pesq_key) for spec in ablations],
        probes=build_probe_table(results, base),
        baseline=base.name,
    )
