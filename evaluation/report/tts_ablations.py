"""The zero-shot TTS ablations as data: one list read by the report and by the DVC experiment queue.

Each spec is one ``dvc exp run`` away from existing: its ``overrides`` are exactly the ``-S`` values that
produce the variant (``variant`` first, so the evaluate_tts run is tagged with the spec's name), and the
report finds the evaluated variant by that name. Keeping both uses on one list is the point: an ablation
cannot be queued under one spelling and looked up under another.

The expected direction of each metric is the paper's (NS3 beats the ablated setting), stated per metric;
where the paper prints a tie (-cfg and one-step-duration WER) there is no expectation, and the metric is
shown without a ✓/✗. Metrics the paper does not report (Resemblyzer similarity, PER) follow the
expectation of the paper's nearest metric (WavLM-TDNN similarity, WER).

The 60 vs 15 NFE comparison (paper Table 10) needs no variant: evaluate_tts always writes a
``generated_one_step`` system beside ``generated``.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import yaml

from .ablation import RESEMBLYZER
from .reference import (
    PAPER_DURATION_L2,
    PAPER_DURATION_NO_PROMPT,
    PAPER_DURATION_NO_PROSODY,
    PAPER_DURATION_ONE_STEP,
    PAPER_NO_CFG,
    PAPER_NO_FACTORIZATION,
    PAPER_PROSODY,
    PAPER_TTS_SIM_MODEL,
    PaperAblation,
)

SIM_O_PAPER = f"Sim-O ({PAPER_TTS_SIM_MODEL}) ↑"
SIM_R_PAPER = f"Sim-R ({PAPER_TTS_SIM_MODEL}) ↑"
SIM_O_OURS = f"Sim-O ({RESEMBLYZER}) ↑"
SIM_R_OURS = f"Sim-R ({RESEMBLYZER}) ↑"
WER = "WER (%) ↓"
PER = "PER (%) ↓"
PER_GT = "PER, ground truth (%)"
UTMOS = "UTMOS ↑"


@dataclass(frozen=True)
class TTSMetric:
    """One compared quantity: ``protocol``/``system``/``key`` in eval_tts.json, and how to judge it."""

    protocol: str  # librispeech | librispeech_valle | ravdess
    key: str  # metric name in the protocol's system block
    label: str
    higher_is_better: bool = True
    expect_baseline_better: bool | None = None  # None: no stated expectation (shown, not judged)
    paper_key: str | None = None  # key into the spec's PaperAblation values
    scale: float = 1.0  # 100 for error rates stored as fractions
    system: str = "generated"


@dataclass(frozen=True)
class TTSAblationSpec:
    key: str  # table key (CSV file stem)
    title: str
    paper_table: str  # T3 | T4 | T11
    variant: str  # the variant name the run is tagged with
    label: str  # short name of the ablated setting in column headers
    overrides: Mapping[str, Any]  # the -S values, "variant" included
    metrics: tuple[TTSMetric, ...]
    paper: PaperAblation | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def settings(self) -> dict[str, Any]:
        """The overrides that change the model or sampler (everything but the variant's name)."""
        return {k: v for k, v in self.overrides.items() if k != "variant"}


def _librispeech(sim: bool | None, wer: bool | None, utmos: bool | None = None) -> tuple[TTSMetric, ...]:
    """Similarity, intelligibility (and UTMOS for T11) on LibriSpeech, with the ground-truth PER for context."""
    p = "librispeech"
    rows = [TTSMetric(p, "sim_o_wavlm_tdnn", SIM_O_PAPER, True, sim, "sim_o"),
            TTSMetric(p, "sim_r_wavlm_tdnn", SIM_R_PAPER, True, sim, "sim_r"),
            TTSMetric(p, "sim_o", SIM_O_OURS, True, sim),
            TTSMetric(p, "sim_r", SIM_R_OURS, True, sim),
            TTSMetric(p, "wer", WER, False, wer, "wer", 100.0),
            TTSMetric(p, "per", PER, False, wer, scale=100.0),
            TTSMetric(p, "per", PER_GT, False, None, scale=100.0, system="ground_truth")]
    if utmos is not None:
        rows.append(TTSMetric(p, "utmos", UTMOS, True, utmos, "utmos"))
    return tuple(rows)


_RAVDESS = (TTSMetric("ravdess", "mcd", "RAVDESS MCD ↓", False, True, "ravdess_mcd"),
            TTSMetric("ravdess", "mcd_acc", "MCD-Acc ↑", True, True, "mcd_acc"))

TTS_ABLATIONS: tuple[TTSAblationSpec, ...] = (
    TTSAblationSpec(
        "tts_ablation_factorization", "-factorization (paper Table 3)", "T3", "no-factorization", "-factorization",
        {"variant": "no-factorization", "codec.model.factorized": False}, _librispeech(True, True),
        PAPER_NO_FACTORIZATION,
        ("Ours: one plain 6-level residual VQ codec and one diffusion over its levels; the paper: a reproduced "
         "SoundStream with a single diffusion over its tokens. Both the codec and the diffusion retrain.",)),
    TTSAblationSpec(
        "tts_ablation_cfg", "-cfg (paper Table 3)", "T3", "no-cfg", "-cfg",
        {"variant": "no-cfg", "diffusion.sample.use_cfg": False}, _librispeech(True, None), PAPER_NO_CFG,
        ("Without guidance the sampler doubles its iterations, so both settings spend 60 NFE; the paper's WER "
         "ties (1.81), so WER and PER are shown without an expectation.",)),
    TTSAblationSpec(
        "tts_ablation_prosody_input", "Prosody representation: FVQ vs Mel 20 Bins (paper Table 4)", "T4",
        "prosody-v2", "Mel 20 Bins", {"variant": "prosody-v2", "codec.model.prosody_input": "v2"}, _RAVDESS,
        PAPER_PROSODY,
        ("RAVDESS protocol, generated speech. MCD-Acc: top-1 emotion accuracy of a nearest-MCD classifier over "
         "the speaker's 8 emotions (chance 1/8).",)),
    TTSAblationSpec(
        "tts_ablation_duration_one_step", "Duration generation: multi-step vs one-step (paper Table 11)", "T11",
        "duration-one-step", "one-step", {"variant": "duration-one-step", "diffusion.sample.duration_steps": 1},
        _librispeech(True, None, True), PAPER_DURATION_ONE_STEP,
        ("The paper's WER ties (1.94) here, so WER and PER are shown without an expectation.",)),
    TTSAblationSpec(
        "tts_ablation_duration_l2", "Duration objective: CE vs L2 regression (paper Table 11)", "T11",
        "duration-l2", "L2", {"variant": "duration-l2", "diffusion.model.duration_objective": "l2"},
        _librispeech(True, True, True), PAPER_DURATION_L2),
    TTSAblationSpec(
        "tts_ablation_duration_no_prosody", "Duration conditioning: without phone-level prosody (paper Table 11)",
        "T11", "duration-no-prosody", "w/o prosody",
        {"variant": "duration-no-prosody", "diffusion.model.duration_uses_prosody": False},
        _librispeech(True, True, True), PAPER_DURATION_NO_PROSODY),
    TTSAblationSpec(
        "tts_ablation_duration_no_prompt", "Duration prompting: without the duration prompt (paper Table 11)",
        "T11", "duration-no-prompt", "w/o prompt",
        {"variant": "duration-no-prompt", "diffusion.model.duration_uses_prompt": False},
        _librispeech(True, True, True), PAPER_DURATION_NO_PROMPT),
)


# ------------------------------------------------------------------------------------------- commands

def yaml_value(value: Any) -> str:
    """``value`` spelled as params.yaml would hold it (``False`` -> ``false``), quoted when YAML would misread it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)  # JSON is YAML flow style
    text = str(value)
    return text if yaml.safe_load(text) == text else json.dumps(text)


def _set_args(sets: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """``key=value`` strings from a mapping (YAML-spelled values) or from strings given as they are."""
    if isinstance(sets, Mapping):
        return [f"{k}={yaml_value(v)}" for k, v in sets.items()]
    out = []
    for s in sets:
        if "=" not in s:
            raise ValueError(f"extra set {s!r} is not key=value")
        out.append(s)
    return out


def reduced_budget_sets(codec_minutes: float | None = None, diffusion_minutes: float | None = None,
                        codec_steps: int | None = None, diffusion_steps: int | None = None) -> dict[str, Any]:
    """Training-budget overrides to pass as ``extra_sets``: every ablation then trains on the same smaller budget.

    Only the given limits are set; the budgets are params like any other, so a queued ablation run records them.
    """
    sets = {"codec.train.max_minutes": codec_minutes, "diffusion.train.max_minutes": diffusion_minutes,
            "codec.train.max_steps": codec_steps, "diffusion.train.max_steps": diffusion_steps}
    return {k: v for k, v in sets.items() if v is not None}


def _argv(spec: TTSAblationSpec, extra: Sequence[str]) -> list[str]:
    own = _set_args(spec.overrides)
    own_keys = {s.split("=", 1)[0] for s in own}
    clash = sorted(k for k in (s.split("=", 1)[0] for s in extra) if k in own_keys)
    if clash:
        raise ValueError(f"ablation {spec.variant!r}: extra sets would override its own settings {clash}")
    return [arg for s in [*own, *extra] for arg in ("-S", s)]


def queue_commands(specs: Iterable[TTSAblationSpec] = TTS_ABLATIONS,
                   extra_sets: Sequence[str] | Mapping[str, Any] = ()) -> list[list[str]]:
    """One ``dvc exp run --queue`` argv per spec, named after its variant; ``extra_sets`` go to every run.

    Run them with ``dvc queue start`` afterwards. ``extra_sets`` may be ``reduced_budget_sets(...)`` or
    ``"key=value"`` strings; it may not change a spec's own overrides.
    """
    extra = _set_args(extra_sets)
    return [["dvc", "exp", "run", "--queue", "-n", spec.variant, *_argv(spec, extra)] for spec in specs]


def run_command(spec: TTSAblationSpec, extra_sets: Sequence[str] | Mapping[str, Any] = ()) -> str:
    """The shell command that produces ``spec``'s variant now (quoted in the report's n/a footnotes)."""
    return shlex.join(["dvc", "exp", "run", *_argv(spec, _set_args(extra_sets))])
