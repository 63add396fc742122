"""Ablation tables: our two settings of one codec hyper-parameter side by side with the paper's.

Each ablation names the hparam it flips, the metrics to compare, the paper's numbers where the paper
has them, and the direction the paper leads us to expect ("with the bottleneck, Sim-O is higher").
The last column says whether our numbers move that way: ✓, ✗ (including no change), or n/a when one
side is missing. Metrics without a stated expectation are shown for context and marked "–".

The two variants compared differ in the ablated hparam and agree with the baseline on every other
ablation hparam, so one flip is compared at a time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .collect import OUR_CODEC, VariantResult
from .reference import PAPER, PAPER_BOTTLENECK, PAPER_DETAIL, PAPER_PROSODY, PAPER_VC_SIM_MODEL, PaperAblation
from .table import Cell, Table, na

# Speaker-similarity rows name their model; the paper's Sim-O (T15, a VC protocol) is only beside the same model's.
RESEMBLYZER = "Resemblyzer"  # sim_o, sim_src, sim_*_own (evaluation/metrics/sim_resemblyzer.py)
WAVLM = PAPER_VC_SIM_MODEL  # sim_o_wavlm (evaluation/metrics/sim_wavlm.py)
SIM_WAVLM = f"VC Sim-O ({WAVLM}) ↑"
SIM_RESEMBLYZER = f"VC Sim-O ({RESEMBLYZER}) ↑"

AGREES, DISAGREES = "✓", "✗"
COLUMNS = ["Metric", "Ours ({a})", "Ours ({b})", "Paper ({a})", "Paper ({b})", "Expected", "Ours moves that way"]
# The defaults every ablation is measured against (ns3/codec/hparams.py).
DEFAULT_HPARAMS = {"information_bottleneck": True, "use_detail": True, "prosody_input": "v1",
                   "grl_detail_phone": True, "grl_detail_f0": True}


def probe(group: str, target: str, label: str, expect_a_better: bool | None = None,
          higher_is_better: bool = True) -> AblationMetric:
    """A disentanglement-probe row: how much of ``target`` (phone / speaker / f0) the ``group`` codes carry."""
    return AblationMetric(target, label, "probe", higher_is_better, expect_a_better, system=group)


@dataclass(frozen=True)
class AblationMetric:
    key: str  # our metric name in ``section``; "pesq" means the report's chosen PESQ flavour
    label: str
    section: str = "reconstruction"
    higher_is_better: bool = True
    expect_a_better: bool | None = None  # the expectation: setting A beats B (None: no stated expectation)
    paper_key: str | None = None  # key into the paper ablation's values
    scale: float = 1.0
    system: str = OUR_CODEC  # the row within ``section``: our codec, or a code group for the probe section


@dataclass(frozen=True)
class AblationSpec:
    key: str
    title: str
    hparam: str
    a_value: Any  # the paper's full setting
    b_value: Any  # the ablated setting
    a_label: str
    b_label: str
    metrics: tuple[AblationMetric, ...]
    paper: PaperAblation | None = None
    cli_hint: str = ""  # how to produce the missing variant


ABLATIONS: tuple[AblationSpec, ...] = (
    AblationSpec(
        "ablation_information_bottleneck", "Information bottleneck (paper Table 15)", "information_bottleneck",
        True, False, "with", "without",
        (AblationMetric("sim_o_wavlm", SIM_WAVLM, "vc", True, True, "sim_o"),
         AblationMetric("sim_o", SIM_RESEMBLYZER, "vc", True, True),
         AblationMetric("pesq", "PESQ ↑"),
         AblationMetric("stoi", "STOI ↑"),
         # Why the bottleneck helps VC (paper §3.2.2): narrow codes leave the speaker to the timbre vector.
         probe("content", "speaker", "Speaker probe on content codes ↓", True, higher_is_better=False),
         probe("detail", "speaker", "Speaker probe on detail codes ↓", True, higher_is_better=False),
         probe("timbre", "speaker", "Speaker probe on the timbre vector ↑")),
        PAPER_BOTTLENECK, "dvc exp run -S codec.model.information_bottleneck=false",
    ),
    AblationSpec(
        "ablation_detail_codebooks", "Detail codebooks (paper Appendix B.4)", "use_detail",
        True, False, "with", "without",
        (AblationMetric("pesq", "PESQ ↑", expect_a_better=True, paper_key="pesq"),
         AblationMetric("stoi", "STOI ↑", expect_a_better=True, paper_key="stoi"),
         AblationMetric("mstft", "MSTFT ↓", higher_is_better=False, expect_a_better=True, paper_key="mstft"),
         AblationMetric("mcd", "MCD ↓", higher_is_better=False, expect_a_better=True, paper_key="mcd")),
        PAPER_DETAIL, "dvc exp run -S codec.model.use_detail=false",
    ),
    AblationSpec(
        "ablation_prosody_input", "Prosody input: V1 encoder vs V2 first 20 mel bins (paper Table 4)",
        "prosody_input", "v1", "v2", "V1", "V2",
        (AblationMetric("ravdess_mcd", "RAVDESS MCD ↓ (TTS)", higher_is_better=False, expect_a_better=True,
                        paper_key="ravdess_mcd"),
         AblationMetric("mcd_acc", "MCD-Acc ↑ (TTS)", expect_a_better=True, paper_key="mcd_acc"),
         AblationMetric("pesq", "PESQ ↑"),
         AblationMetric("stoi", "STOI ↑"),
         AblationMetric("mcd", "MCD ↓", higher_is_better=False),
         AblationMetric("sim_o_wavlm", SIM_WAVLM, "vc"),
         AblationMetric("sim_o", SIM_RESEMBLYZER, "vc")),
        PAPER_PROSODY, "dvc exp run -S codec.model.prosody_input=v2",
    ),
    # Paper Appendix B.2 judges these by ear ("content and pitch leak into the details"); the probes measure it.
    AblationSpec(
        "ablation_detail_grl_f0", "F0 gradient reversal on the detail codes (paper Appendix B.2)", "grl_detail_f0",
        True, False, "with", "without",
        (probe("detail", "f0", "F0 probe on detail codes (corr.) ↓", True, higher_is_better=False),
         probe("prosody", "f0", "F0 probe on prosody codes (corr.) ↑"),
         AblationMetric("f0_rmse", "F0 RMSE (cents) ↓", higher_is_better=False)),
        None, "dvc exp run -S codec.model.grl_detail_f0=false",
    ),
    AblationSpec(
        "ablation_detail_grl_phone", "Phone gradient reversal on the detail codes (paper Appendix B.2)",
        "grl_detail_phone", True, False, "with", "without",
        (probe("detail", "phone", "Phone probe on detail codes ↓", True, higher_is_better=False),
         probe("content", "phone", "Phone probe on content codes ↑"),
         AblationMetric("per", "PER (%) ↓", higher_is_better=False, scale=100.0)),
        None, "dvc exp run -S codec.model.grl_detail_phone=false",
    ),
)


def _hparams(result: VariantResult) -> dict[str, Any]:
    return {k: result.codec_hparams.get(k, v) for k, v in DEFAULT_HPARAMS.items()}


def pick_baseline(results: Sequence[VariantResult], name: str = "baseline") -> VariantResult:
    """The variant called ``name``; else the one with all default ablation hparams; else the first."""
    for r in results:
        if r.name == name:
            return r
    for r in results:
        if _hparams(r) == DEFAULT_HPARAMS:
            return r
    return results[0]


def find_variant(results: Sequence[VariantResult], baseline: VariantResult, hparam: str,
                 value: Any) -> VariantResult | None:
    """The variant with ``hparam == value`` that matches the baseline on every other ablation hparam."""
    want = {**_hparams(baseline), hparam: value}
    if _hparams(baseline) == want:
        return baseline
    return next((r for r in results if _hparams(r) == want), None)


def direction(a: float | None, b: float | None, higher_is_better: bool, expect_a_better: bool | None) -> Cell:
    """✓ when our A-vs-B difference points the expected way, ✗ when it does not (ties included)."""
    if expect_a_better is None:
        return Cell()
    if a is None or b is None:
        return na("needs our value for both settings")
    a_better = a > b if higher_is_better else a < b
    b_better = b > a if higher_is_better else b < a
    return Cell(AGREES if (a_better if expect_a_better else b_better) else DISAGREES)


def _expected_text(spec: AblationSpec, m: AblationMetric) -> str:
    if m.expect_a_better is None:
        return "–"
    better, worse = (spec.a_label, spec.b_label) if m.expect_a_better else (spec.b_label, spec.a_label)
    return f"{better} {'>' if m.higher_is_better else '<'} {worse}"


def build_ablation_table(spec: AblationSpec, results: Sequence[VariantResult], baseline: VariantResult,
                         pesq_key: str = "pesq_wb") -> Table:
    cols = [c.format(a=spec.a_label, b=spec.b_label) for c in COLUMNS]
    table = Table(spec.key, spec.title, cols)
    sides = [find_variant(results, baseline, spec.hparam, v) for v in (spec.a_value, spec.b_value)]
    for m in spec.metrics:
        key = pesq_key if m.key == "pesq" else m.key
        ours: list[Cell] = []
        for side, value in zip(sides, (spec.a_value, spec.b_value)):
            if side is None:
                ours.append(na(f"no evaluated variant has {spec.hparam}={value!r} with the baseline's other "
                               f"settings (run it: `{spec.cli_hint}`)"))
                continue
            v = side.value(m.section, m.system, key)
            reason = side.reason(m.section, m.system, key)
            digits = 3 if m.section == "probe" else 2
            ours.append(Cell(round(v * m.scale, 10), digits) if v is not None else na(reason))
        paper_vals = spec.paper.values.get(m.paper_key) if spec.paper and m.paper_key else None
        paper = [Cell(x, 2) for x in paper_vals] if paper_vals else [Cell(), Cell()]
        table.add([Cell(m.label), *ours, *paper, Cell(_expected_text(spec, m)),
                   direction(ours[0].value, ours[1].value, m.higher_is_better, m.expect_a_better)], kind="metric")
    names = [f"variant '{s.name}'" if s else "not evaluated" for s in sides]
    table.notes.append(f"Ours: {spec.hparam}={spec.a_value!r}: {names[0]}; {spec.hparam}={spec.b_value!r}: {names[1]}.")
    if spec.paper:
        table.notes.append(f"Paper: {spec.paper.source} of {PAPER}, transcribed ({spec.paper.with_label} vs "
                           f"{spec.paper.without_label}).")
    if spec.key == "ablation_prosody_input":
        table.notes.append("The paper measures this ablation on TTS output (RAVDESS); the codec evaluation "
                           "reports reconstruction and VC, shown for context without an expected direction.")
    return table
