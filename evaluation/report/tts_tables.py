"""Paper-layout zero-shot TTS tables: T1 (LibriSpeech), T2 + T12 (RAVDESS), T10 (speed), T3/T4/T11 (ablations).

Our rows come first (generated speech, the codec's resynthesis of the target as the ceiling a generator
on this codec can reach, the ground truth), then the paper's. Every similarity column names its speaker
model, and the paper's WavLM-TDNN numbers sit only in WavLM-TDNN columns: our Resemblyzer numbers are an
offline stand-in and are never placed where they would read as comparable. Error rates are percent.
A value we do not have is "n/a" with its reason, never a zero.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Sequence

from .ablation import direction
from .reference import (
    PAPER,
    PAPER_RAVDESS,
    PAPER_RTF_HARDWARE,
    PAPER_SPEED,
    PAPER_TTS,
    PAPER_TTS_HUMAN,
    PAPER_TTS_SIM_MODEL,
    PAPER_TTS_WER_MODEL,
    PAPER_TTS_WER_STAR,
    RAVDESS_EMOTIONS,
)
from .table import Cell, Table, na
from .tts_ablations import (
    PER,
    PER_GT,
    SIM_O_OURS,
    SIM_O_PAPER,
    SIM_R_OURS,
    SIM_R_PAPER,
    TTS_ABLATIONS,
    UTMOS,
    WER,
    TTSAblationSpec,
    run_command,
    yaml_value,
)
from .tts_collect import TTSResult

WER_CAPPED = "WER, capped utterance mean (%) ↓"
DNSMOS = "DNSMOS OVRL ↑ (a different predictor: not UTMOS)"
OUR_ROWS = (("generated", "ours: generated"), ("resynthesis", "ours: resynthesis (codec ceiling)"),
            ("ground_truth", "ours: ground truth"))
LIBRISPEECH_COLUMNS = ["System", "Source", SIM_O_PAPER, SIM_R_PAPER, SIM_O_OURS, SIM_R_OURS, WER, WER_CAPPED,
                       PER, PER_GT, UTMOS]
MCD_AVG, MCD_ACC = "MCD (avg) ↓", "MCD-Acc ↑"
RAVDESS_COLUMNS = ["System", "Source", MCD_AVG, MCD_ACC, *(f"MCD {e} ↓" for e in RAVDESS_EMOTIONS)]
SPEED_COLUMNS = ["System", "Source", "NFE", "RTF ↓", SIM_O_PAPER, SIM_R_PAPER, SIM_O_OURS, SIM_R_OURS, UTMOS]
ABLATION_COLUMNS = ["Metric", "Ours (baseline)", "Ours ({v})", "Paper (NS3)", "Paper ({v})", "Expected",
                    "Ours moves that way"]


@dataclass
class TTSReportTables:
    librispeech: Table
    librispeech_valle: Table
    ravdess: Table
    speed: Table
    ablations: list[Table] = field(default_factory=list)
    baseline: str = ""
    profile: str = ""

    def all(self) -> list[Table]:
        return [self.librispeech, self.librispeech_valle, self.ravdess, self.speed, *self.ablations]


def _cell(result: TTSResult, protocol: str, system: str, metric: str, digits: int, scale: float = 1.0) -> Cell:
    value = result.value(protocol, system, metric)
    if value is None:
        return na(result.reason(protocol, system, metric))
    return Cell(round(value * scale, 10), digits)  # round: 0.29 * 100 must not print as 28.999...


def _paper(value: float | None, digits: int = 2) -> Cell:
    return Cell(value, digits) if value is not None else Cell()


def _protocol_note(result: TTSResult, protocol: str) -> str:
    p = result.protocols.get(protocol)
    if p is None:
        return f"Ours: protocol {protocol} was not evaluated ({result.source})."
    parts = [f"{p.items} items" if p.items is not None else None,
             f"{p.speakers} speakers" if p.speakers is not None else None,
             f"list {p.list_path}" if p.list_path else None]
    return f"Ours: {', '.join(x for x in parts if x) or 'size not recorded'}; variant '{result.name}', " \
           f"profile {result.profile} ({result.source})."


def _models_note(result: TTSResult) -> str:
    names = {"sim": "similarity", "sim_wavlm_tdnn": "WavLM-TDNN similarity",
             "sim_wavlm": "WavLM-base-plus-sv similarity", "wer": "WER", "per": "PER",
             "mos": "UTMOS", "dnsmos": "DNSMOS"}
    parts = [f"{label}: {result.models[k] or 'not configured'}" for k, label in names.items() if k in result.models]
    return "Our models: " + ("; ".join(parts) if parts else "not recorded") + "."


def _has_dnsmos(result: TTSResult, protocol: str) -> bool:
    p = result.protocols.get(protocol)
    measured = p is not None and any(m.get("dnsmos_ovrl") is not None for m in p.systems.values())
    return measured or bool(result.models.get("dnsmos"))


def build_librispeech_table(base: TTSResult, protocol: str = "librispeech", with_paper: bool = True) -> Table:
    """T1 layout (UTMOS from T9) for one LibriSpeech protocol: our three rows, then the paper's."""
    valle = protocol != "librispeech"
    title = ("Zero-shot TTS, LibriSpeech test-clean, VALL-E protocol (4-10 s targets)" if valle
             else "Zero-shot TTS, LibriSpeech test-clean (paper Tables 1 and 9 layout)")
    dnsmos = _has_dnsmos(base, protocol)
    table = Table(f"tts_{protocol}", title, [*LIBRISPEECH_COLUMNS, *([DNSMOS] if dnsmos else [])])
    gt_per = _cell(base, protocol, "ground_truth", "per", 2, 100.0)
    for system, label in OUR_ROWS:
        nfe = base.value(protocol, system, "nfe")
        source = f"ours ({base.name}" + (f", {int(nfe)} NFE)" if nfe is not None else ")")
        c = partial(_cell, base, protocol, system)  # c(metric, digits, scale)
        table.add([Cell(label), Cell(source), c("sim_o_wavlm_tdnn", 2), c("sim_r_wavlm_tdnn", 2), c("sim_o", 2),
                   c("sim_r", 2), c("wer", 2, 100.0), c("wer_utt_mean_capped", 2, 100.0), c("per", 2, 100.0), gt_per,
                   c("utmos", 2), *([c("dnsmos_ovrl", 2)] if dnsmos else [])])
    if with_paper:
        for row in PAPER_TTS:
            table.add([Cell(row.system), Cell(f"paper {row.source}"), _paper(row.sim_o), _paper(row.sim_r), Cell(),
                       Cell(), _paper(row.wer_percent), Cell(), Cell(), Cell(), _paper(row.utmos),
                       *([Cell()] if dnsmos else [])], kind="paper")
    table.notes += [
        _protocol_note(base, protocol),
        f"Sim-O: speaker similarity of the speech to the original prompt; Sim-R: to the prompt passed through "
        f"the codec. Each Sim column names its model: the paper's rows are {PAPER_TTS_SIM_MODEL}, "
        "which our WavLM-TDNN columns use when a checkpoint is configured; Resemblyzer is an offline stand-in whose "
        "numbers are not comparable with the paper's.",
        f"WER: the paper uses {PAPER_TTS_WER_MODEL}; ours is the model named below. The capped utterance mean "
        "caps each utterance's WER before averaging, so one runaway generation cannot dominate.",
        "PER: phone error rate against the transcript's phones; the ground-truth column is the same recogniser "
        "on the target recordings, the floor any system can reach.",
        "Resynthesis: the target recording encoded and decoded by our codec, the ceiling for generation on it.",
        _models_note(base),
    ]
    if dnsmos:
        table.notes.append("DNSMOS OVRL is Microsoft's DNS-challenge quality predictor, not UTMOS; it is never "
                           "compared with the paper's UTMOS column.")
    if with_paper:
        human = "; ".join(f"{k} {c:+.2f} / {s:.2f}" for k, (c, s) in PAPER_TTS_HUMAN.items())
        star = "; ".join(f"{k} {v:.2f}" for k, v in PAPER_TTS_WER_STAR.items())
        table.notes += [f"Paper rows: {PAPER} T1 (Sim-O, Sim-R, WER) and T9 (UTMOS; rebuilt from garbled table "
                        f"text, confirm against the PDF), transcribed. Not reproduced here: CMOS / SMOS ({human}) "
                        f"and WER* with a Conformer transducer ({star})."]
    else:
        table.notes.append("The paper reports no numbers on this protocol; compare with the test-clean table.")
    table.notes += [f"{k}: {v}" for k, v in sorted(base.metric_notes.items())]
    return table


def build_ravdess_table(base: TTSResult) -> Table:
    """T2 with T12's per-emotion columns: our three rows, the chance level of MCD-Acc, then the paper's rows."""
    table = Table("tts_ravdess", "Prosody similarity on RAVDESS (paper Tables 2 and 12 layout)",
                  list(RAVDESS_COLUMNS))
    for system, label in OUR_ROWS:
        cells = [_cell(base, "ravdess", system, "mcd", 2), _cell(base, "ravdess", system, "mcd_acc", 2)]
        cells += [_cell(base, "ravdess", system, f"mcd/{e}", 2) for e in RAVDESS_EMOTIONS]
        table.add([Cell(label), Cell(f"ours ({base.name})"), *cells])
    n = len(RAVDESS_EMOTIONS)
    table.add([Cell("chance level"), Cell(f"1 / {n} emotions"), Cell(), Cell(1.0 / n, 3), *(Cell() for _ in range(n))],
              kind="metric")
    for row in PAPER_RAVDESS:
        emotions = [Cell(row.per_emotion[e], 2) if row.per_emotion else
                    na("this system's per-emotion MCD (paper T12) is not transcribed in the project notes")
                    for e in RAVDESS_EMOTIONS]
        table.add([Cell(row.system), Cell(f"paper {row.source}"), Cell(row.mcd, 2), Cell(row.mcd_acc, 2), *emotions],
                  kind="paper")
    table.notes += [
        _protocol_note(base, "ravdess"),
        "MCD: mel-cepstral distance between the generated speech and the same actor's recording of that emotion "
        "(strong intensity). MCD-Acc: top-1 accuracy of picking the right emotion by the smallest MCD to the "
        f"actor's {n} recordings; chance is 1/{n}.",
        f"Paper rows: {PAPER} T2 (average MCD, MCD-Acc) and T12 (NS3's per-emotion MCD), transcribed.",
    ]
    return table


def build_speed_table(base: TTSResult) -> Table:
    """T10: forward passes and real-time factor of 60-NFE and one-step (15 NFE) generation, then the paper's."""
    table = Table("tts_speed", "Inference speed: NFE and RTF (paper Table 10 layout)", list(SPEED_COLUMNS))
    p = "librispeech"
    for system, label in (("generated", "ours: generated"), ("generated_one_step", "ours: generated, one-step")):
        nfe = base.value(p, system, "nfe")
        table.add([Cell(label), Cell(f"ours ({base.name})"),
                   Cell(int(nfe)) if nfe is not None else na(base.reason(p, system, "nfe")),
                   _cell(base, p, system, "rtf", 3), _cell(base, p, system, "sim_o_wavlm_tdnn", 2),
                   _cell(base, p, system, "sim_r_wavlm_tdnn", 2), _cell(base, p, system, "sim_o", 2),
                   _cell(base, p, system, "sim_r", 2), _cell(base, p, system, "utmos", 2)])
    for row in PAPER_SPEED:
        table.add([Cell(row.system), Cell(f"paper {row.source}"), Cell(row.nfe) if row.nfe is not None else Cell(),
                   Cell(row.rtf, 3), Cell(row.sim_o, 2), Cell(row.sim_r, 2), Cell(), Cell(), Cell(row.utmos, 2)],
                  kind="paper")
    full, one = base.value(p, "generated", "rtf"), base.value(p, "generated_one_step", "rtf")
    table.notes += [
        f"RTF: compute seconds per second of generated speech. The paper's is on {PAPER_RTF_HARDWARE}; ours on the "
        "machine that ran evaluate_tts (see its MLflow run), so compare the ratio, not the absolute values.",
        "The paper's VALL-E row has no NFE (autoregressive: one pass per token).",
    ]
    paper = {row.nfe: row.rtf for row in PAPER_SPEED if row.system.startswith("NaturalSpeech 3")}
    if full and one:
        table.notes.append(f"Ours: one-step is {full / one:.2f}x faster than 60 NFE "
                           f"(paper: {paper[60] / paper[15]:.2f}x).")
    return table


# ------------------------------------------------------------------------------------------ ablations

def find_tts_variant(results: Sequence[TTSResult], spec: TTSAblationSpec, base: TTSResult) -> TTSResult | None:
    """The variant named ``spec.variant``; else one that ran with every one of the spec's settings."""
    named = next((r for r in results if r.name == spec.variant), None)
    if named is not None:
        return named
    for r in results:
        if r is not base and all(r.setting(k) == v for k, v in spec.settings.items()):
            return r
    return None


def _expected(spec: TTSAblationSpec, higher: bool, expect: bool | None) -> str:
    if expect is None:
        return "–"
    better, worse = ("NS3", spec.label) if expect else (spec.label, "NS3")
    return f"{better} {'>' if higher else '<'} {worse}"


def build_tts_ablation_table(spec: TTSAblationSpec, results: Sequence[TTSResult], base: TTSResult) -> Table:
    """Baseline vs the spec's variant per metric, beside the paper's pair, with the paper's expected direction."""
    table = Table(spec.key, spec.title, [c.format(v=spec.label) for c in ABLATION_COLUMNS])
    other = find_tts_variant(results, spec, base)
    profile = {"profile": base.profile} if base.profile != "mini" else {}
    for m in spec.metrics:
        ours = [_cell(base, m.protocol, m.system, m.key, 2, m.scale)]
        if other is None:
            ours.append(na(f"variant '{spec.variant}' not evaluated in profile {base.profile} "
                           f"(run it: `{run_command(spec, profile)}`)"))
        else:
            ours.append(_cell(other, m.protocol, m.system, m.key, 2, m.scale))
        pair = spec.paper.values.get(m.paper_key) if spec.paper and m.paper_key else None
        paper = [Cell(x, 2) for x in pair] if pair else [Cell(), Cell()]
        table.add([Cell(m.label), *ours, *paper, Cell(_expected(spec, m.higher_is_better, m.expect_baseline_better)),
                   direction(ours[0].value, ours[1].value, m.higher_is_better, m.expect_baseline_better)],
                  kind="metric")
    settings = ", ".join(f"{k}={yaml_value(v)}" for k, v in spec.settings.items())
    table.notes.append(f"Ours: baseline variant '{base.name}' ({base.source}) vs "
                       + (f"variant '{other.name}' ({other.source})" if other else f"variant '{spec.variant}' (not "
                          "evaluated)") + f", which sets {settings}. Profile {base.profile}.")
    if spec.paper:
        table.notes.append(f"Paper: {spec.paper.source} of {PAPER}, transcribed ({spec.paper.with_label} vs "
                           f"{spec.paper.without_label}). The paper's similarity is WavLM-TDNN; Resemblyzer and PER "
                           "rows have no paper value and follow the expectation of Sim and WER.")
    if spec.paper_table == "T11":
        table.notes.append("T11's NS3 WER is 1.94, not T1's 1.81; the paper does not explain the difference.")
    table.notes += list(spec.notes)
    return table


def pick_tts_baseline(results: Sequence[TTSResult], name: str = "baseline",
                      ablations: Sequence[TTSAblationSpec] = TTS_ABLATIONS) -> TTSResult:
    """The variant called ``name``; else the first that is not one of the ablations; else the first."""
    for r in results:
        if r.name == name:
            return r
    variants = {s.variant for s in ablations}
    return next((r for r in results if r.name not in variants), results[0])


def build_tts_tables(results: Sequence[TTSResult], baseline: str = "baseline",
                     ablations: Sequence[TTSAblationSpec] = TTS_ABLATIONS) -> TTSReportTables:
    """All TTS tables from one profile's evaluated variants (``baseline`` names the reference variant)."""
    if not results:
        raise ValueError("no evaluated TTS variants to report on (pass eval_tts.json files or an MLflow store)")
    profiles = sorted({r.profile for r in results})
    if len(profiles) > 1:
        raise ValueError(f"TTS results mix profiles {profiles}: collect one profile per report "
                         "(collect_tts_from_files(..., profile=...) / collect_tts_from_mlflow(..., profile))")
    base = pick_tts_baseline(results, baseline, ablations)
    return TTSReportTables(
        librispeech=build_librispeech_table(base),
        librispeech_valle=build_librispeech_table(base, "librispeech_valle", with_paper=False),
        ravdess=build_ravdess_table(base),
        speed=build_speed_table(base),
        ablations=[build_tts_ablation_table(spec, results, base) for spec in ablations],
        baseline=base.name, profile=base.profile,
    )
