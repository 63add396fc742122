"""Write the zero-shot TTS report: report.md, a self-contained report.html and one CSV per table.

The files come from the codec report's renderer (``render.write_report``): same atomic writes, same
footnoted n/a cells, same inline figures. What is TTS-specific lives here: the per-emotion MCD figure and
the audio players for the baseline's prompt / target / generated examples, one section per protocol.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .reference import PAPER_RAVDESS, RAVDESS_EMOTIONS
from .render import AudioRow, AudioSection, ReportFiles, write_report
from .tts_collect import TTSResult
from .tts_tables import TTSReportTables, build_tts_tables, pick_tts_baseline

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TTS_TITLE = "NaturalSpeech 3 reproduction: zero-shot TTS report"
SAMPLE_ROLES = ("prompt", "target", "generated")


def plot_emotion_mcd(result: TTSResult) -> Figure | None:
    """Per-emotion MCD of our generated speech and resynthesis beside the paper's NS3 (T12); None without data."""
    series: dict[str, list[float | None]] = {
        label: [result.value("ravdess", system, f"mcd/{e}") for e in RAVDESS_EMOTIONS]
        for system, label in (("generated", "ours: generated"), ("resynthesis", "ours: resynthesis"))}
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if not series:
        return None
    ns3 = next(r for r in PAPER_RAVDESS if r.per_emotion)
    series["paper: NaturalSpeech 3 (T12)"] = [ns3.per_emotion[e] for e in RAVDESS_EMOTIONS]
    from matplotlib.figure import Figure  # here, not at import: the package stays cheap to import

    fig = Figure(figsize=(8.0, 3.0), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width=width, label=label)  # a gap, not a zero, when missing
    ax.set_xticks(range(len(RAVDESS_EMOTIONS)), RAVDESS_EMOTIONS)
    ax.set_ylabel("MCD ↓")
    ax.set_title("RAVDESS MCD per emotion", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def sample_sections(result: TTSResult) -> list[AudioSection]:
    """The variant's audio examples, one section of prompt / target / generated players per protocol."""
    by_protocol: dict[str, list[AudioRow]] = {}
    for s in result.samples:
        files = {"prompt": s.prompt, "target": s.target, "generated": s.generated}
        by_protocol.setdefault(s.protocol, []).append(AudioRow(s.id, files, s.text))
    return [AudioSection(f"Zero-shot TTS, {protocol} ({result.name})", SAMPLE_ROLES, rows)
            for protocol, rows in by_protocol.items()]


def write_tts_report(tables: TTSReportTables, base: TTSResult, out_dir: str | Path,
                     figures: Mapping[str, Any] | None = None) -> ReportFiles:
    """Write ``tables`` with ``base``'s audio examples into ``out_dir``."""
    intro = [f"Profile: {tables.profile}. Every row of every table comes from this profile's runs; mini, ci and "
             "paper runs never share a table.",
             "Error rates are in percent. Each similarity column names its speaker model; the paper's numbers sit "
             "only in the WavLM-TDNN columns."]
    return write_report(tables, out_dir, figures=figures, title=f"{TTS_TITLE} ({tables.profile} profile)",
                        sections=sample_sections(base), intro=intro)


def build_tts_report(results: Sequence[TTSResult], out_dir: str | Path, baseline: str = "baseline",
                     extra_figures: Mapping[str, Any] | None = None) -> ReportFiles:
    """Tables from ``results`` (one profile), the per-emotion MCD figure and the baseline's audio, in ``out_dir``."""
    tables = build_tts_tables(results, baseline=baseline)
    base = pick_tts_baseline(results, tables.baseline)
    emotion = plot_emotion_mcd(base)
    figures = {**({"ravdess_mcd_per_emotion": emotion} if emotion is not None else {}), **(extra_figures or {})}
    return write_tts_report(tables, base, out_dir, figures)
