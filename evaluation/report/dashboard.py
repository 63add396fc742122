"""The ablation dashboard: every variant of one MLflow experiment and profile side by side, as one offline page.

``ns3 compare`` (and the report stage, into ``reports/compare/index.html``) reads the runs of the compared
stages (evaluate_codec and evaluate_tts unless told otherwise), keeps one run per (variant, stage) of one
profile (the newest finished one, or a pinned run id), and writes:
- per metric group, a values table (a row per variant, a column per metric named exactly as MLflow logged it)
  and a delta table (variant - baseline, marked ✓ / ✗ where the paper says which way that ablation should
  move the metric), with a bar chart of the same numbers;
- the paper's expectations in full: our pair, the paper's pair in the metric's logged units, the direction;
- training curves of the variants' train runs (their metric histories), one line per variant;
- ``compare.csv`` beside the page: the same numbers long-form, at full precision.
Figures are inline PNG data URIs and nothing is fetched from the network, so the page works offline and can be
mailed or attached to a run as one file.

Which ablation a variant is, and what the paper expects of it, comes from the paper-format report's own specs
(``tts_ablations.TTS_ABLATIONS`` by variant name or settings, ``ablation.ABLATIONS`` by the flipped codec
hparam), and ✓ / ✗ from the same ``direction``: the dashboard and the report cannot disagree on a direction.
A profile is never mixed with another: a mini run beside a paper run would read as an ablation effect.
"""
from __future__ import annotations

import base64
import fnmatch
import html
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit
from typing import Any, Callable, Iterable, Mapping, Sequence

from .ablation import ABLATIONS, AGREES, DISAGREES, AblationMetric, direction, find_variant
from .collect import HPARAM_PREFIX, ReportInputError, VariantResult, param_value, stage_runs
from .plots import History
from .render import PAGE_CSS, DASHBOARD_PAGE, atomic_write, figure_png, table_html
from .table import Cell, Table, na, table_to_csv
from .tts_ablations import TTS_ABLATIONS, TTSMetric
from .tts_collect import TTSResult, tts_result_from_run
from .tts_tables import find_tts_variant

COMPARE_STAGES = ("evaluate_codec", "evaluate_tts")
CURVE_STAGES = ("train_codec", "train_diffusion")
# The curves that say whether training went well: the weighted total, each main loss term and the validation
# scores; not gradient norms or per-level accuracies, which would bury them.
CURVE_KEYS = ("*/total", "codec/rec", "codec/adv", "codec/feat", "codec/phone", "codec/f0", "codec/commit",
              "diffusion/frame_ce", "diffusion/prosody_ce", "diffusion/duration", "eval/valid_*", "eval/codec_rec")
TITLE = "NaturalSpeech 3 reproduction: ablation dashboard"


@dataclass(frozen=True)
class RunRecord:
    """What the dashboard reads from one MLflow run (the unit tests build these by hand)."""

    run_id: str
    stage: str  # the ns3.stage tag
    variant: str  # the ns3.variant tag
    profile: str | None  # the ns3.profile tag; a run without one is never compared
    start_time: int  # ms since the epoch, as MLflow stores it
    metrics: Mapping[str, float]  # the latest value of each key
    params: Mapping[str, str] = field(default_factory=dict)
    run_name: str = ""

    @classmethod
    def from_mlflow(cls, run: Any) -> RunRecord:
        tags = run.data.tags
        return cls(run_id=run.info.run_id, stage=tags.get("ns3.stage", ""),
                   variant=tags.get("ns3.variant") or run.info.run_name or run.info.run_id,
                   profile=tags.get("ns3.profile"), start_time=int(run.info.start_time or 0),
                   metrics=dict(run.data.metrics), params=dict(run.data.params), run_name=run.info.run_name or "")

    @property
    def label(self) -> str:
        return f"{self.stage} run {self.run_id[:8]}"


@dataclass(frozen=True)
class Expectation:
    """What the paper leads us to expect of one metric in one ablation (the variant against the baseline)."""

    ablation: str  # the spec's title, e.g. "-cfg (paper Table 3)"
    metric: str  # the MLflow key
    higher_is_better: bool
    baseline_better: bool | None  # None: shown for context, not judged
    paper: tuple[float, float] | None = None  # (the paper's full setting, the ablated one), in logged units

    @property
    def text(self) -> str:
        """The expected sign of the delta (variant - baseline), e.g. "Δ < 0"."""
        if self.baseline_better is None:
            return "–"
        falls = self.higher_is_better == self.baseline_better  # the variant scores lower
        return "Δ < 0" if falls else "Δ > 0"


# -------------------------------------------------------------------------------------- the paper's specs

def tts_metric_key(m: TTSMetric) -> str:
    """The MLflow key evaluate_tts logs for ``m`` (evaluation/tts_eval.py ``flat_metrics``)."""
    return f"tts/{m.protocol}/{m.system}/{m.key}"


def codec_metric_key(m: AblationMetric, pesq_key: str = "pesq_wb") -> str:
    """The MLflow key evaluate_codec logs for ``m`` (evaluation/codec_eval.py ``flat_metrics``)."""
    key = pesq_key if m.key == "pesq" else m.key
    if m.section == "vc":
        return f"eval/vc/{key}"
    if m.section == "probe":
        return f"eval/probe/{m.system}/{key}"
    return f"eval/{m.system}/{key}"


def spec_metric_keys(pesq_key: str = "pesq_wb") -> list[str]:
    """Every MLflow key some ablation of the paper names, TTS first: the dashboard's default columns."""
    keys = [tts_metric_key(m) for s in TTS_ABLATIONS for m in s.metrics]
    keys += [codec_metric_key(m, pesq_key) for s in ABLATIONS for m in s.metrics]
    return list(dict.fromkeys(keys))


def _paper_pair(paper: Any, paper_key: str | None, scale: float) -> tuple[float, float] | None:
    pair = paper.values.get(paper_key) if paper is not None and paper_key else None
    # The paper prints error rates in percent where we log fractions; compare in the logged unit.
    return (pair[0] / scale, pair[1] / scale) if pair else None


def _tts_result(rec: RunRecord) -> TTSResult:
    # tts_collect rebuilds a variant's settings from an evaluate_tts run's params; hand it the same shape so the
    # dashboard and the TTS report find an ablation's variant by the same settings.
    run = SimpleNamespace(info=SimpleNamespace(run_id=rec.run_id, run_name=rec.run_name),
                          data=SimpleNamespace(params=dict(rec.params), metrics=dict(rec.metrics),
                                               tags={"ns3.variant": rec.variant}))
    return tts_result_from_run(run, rec.profile or "")


def _codec_result(rec: RunRecord) -> VariantResult:
    hparams = {k[len(HPARAM_PREFIX):]: param_value(v) for k, v in rec.params.items() if k.startswith(HPARAM_PREFIX)}
    return VariantResult(name=rec.variant, source=rec.label, codec_hparams=hparams)


def _add(out: dict[str, Expectation], e: Expectation) -> None:
    old = out.get(e.metric)
    if old is None or (old.baseline_better is None and e.baseline_better is not None):  # a judged spec wins
        out[e.metric] = e


def match_ablations(runs: Mapping[tuple[str, str], RunRecord], baseline: str, pesq_key: str = "pesq_wb"
                    ) -> tuple[dict[str, list[str]], dict[str, dict[str, Expectation]]]:
    """(variant -> titles of the paper's ablations it is, variant -> metric -> expectation) for the compared runs."""
    titles: dict[str, list[str]] = {}
    expect: dict[str, dict[str, Expectation]] = {}
    tts = {v: _tts_result(r) for (v, stage), r in runs.items() if stage == "evaluate_tts"}
    if baseline in tts:
        for spec in TTS_ABLATIONS:
            found = find_tts_variant(list(tts.values()), spec, tts[baseline])
            if found is None or found.name == baseline:
                continue
            titles.setdefault(found.name, []).append(spec.title)
            for m in spec.metrics:
                _add(expect.setdefault(found.name, {}), Expectation(
                    spec.title, tts_metric_key(m), m.higher_is_better, m.expect_baseline_better,
                    _paper_pair(spec.paper, m.paper_key, m.scale)))
    codec = {v: _codec_result(r) for (v, stage), r in runs.items() if stage == "evaluate_codec"}
    if baseline in codec:
        base = codec[baseline]
        for spec in ABLATIONS:
            # Judged only when the baseline runs the paper's full setting: the delta then reads "ablated - full".
            if find_variant(list(codec.values()), base, spec.hparam, spec.a_value) is not base:
                continue
            found = find_variant(list(codec.values()), base, spec.hparam, spec.b_value)
            if found is None or found is base:
                continue
            titles.setdefault(found.name, []).append(spec.title)
            for m in spec.metrics:
                _add(expect.setdefault(found.name, {}), Expectation(
                    spec.title, codec_metric_key(m, pesq_key), m.higher_is_better, m.expect_a_better,
                    _paper_pair(spec.paper, m.paper_key, m.scale)))
    return titles, expect


# --------------------------------------------------------------------------------------------- selection

def split_tags(pairs: Iterable[str]) -> tuple[list[str], str | None, dict[str, str]]:
    """``key=value`` tag filters -> (``ns3.stage`` values, the ``ns3.profile`` value, every other tag)."""
    stages: list[str] = []
    profile: str | None = None
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"tag filter {pair!r} is not key=value (e.g. ns3.stage=evaluate_tts)")
        key, value = key.strip(), value.strip()
        if key == "ns3.stage":
            stages.append(value)
        elif key == "ns3.profile":
            if profile not in (None, value):
                raise ValueError(f"two profiles given ({profile}, {value}): a dashboard shows one profile")
            profile = value
        else:
            tags[key] = value
    return stages, profile, tags


def collect_runs(tracking_uri: str, experiment: str, profile: str, stages: Sequence[str],
                 tags: Mapping[str, str] | None = None, finished_only: bool = True) -> list[RunRecord]:
    """Every run of ``stages`` in ``experiment`` tagged ``ns3.profile`` = ``profile`` and with ``tags``."""
    records: list[RunRecord] = []
    for stage in dict.fromkeys(stages):
        _, runs = stage_runs(tracking_uri, experiment, stage, {**(tags or {}), "ns3.profile": profile}, finished_only)
        records += [RunRecord.from_mlflow(r) for r in runs]
    return records


def choose_runs(records: Iterable[RunRecord], profile: str, stages: Sequence[str],
                pins: Sequence[str] = ()) -> dict[tuple[str, str], RunRecord]:
    """The run per (variant, stage) to compare: ``profile``'s runs of ``stages`` only, the newest of each
    unless a run id (or a unique prefix) in ``pins`` names another; it then stands in for its own variant and
    stage. Pins of runs outside ``stages`` are left to the caller's other stages (training curves)."""
    records = list(records)
    chosen: dict[tuple[str, str], RunRecord] = {}
    # newest first; the run id breaks ties so the choice never depends on the order MLflow returned
    for rec in sorted(records, key=lambda r: (r.start_time, r.run_id), reverse=True):
        if rec.profile == profile and rec.stage in stages:
            chosen.setdefault((rec.variant, rec.stage), rec)
    for pin in pins:
        rec = _resolve_pin(records, pin, profile)
        if rec.stage in stages:
            chosen[(rec.variant, rec.stage)] = rec
    return chosen


def _resolve_pin(records: Sequence[RunRecord], pin: str, profile: str) -> RunRecord:
    hits = [r for r in records if r.run_id == pin] or [r for r in records if r.run_id.startswith(pin)]
    if not hits:
        raise ReportInputError(f"pinned run {pin} is not among the runs read (profile {profile}, the compared and "
                               "train stages; an unfinished run needs --include-unfinished)")
    if len(hits) > 1:
        raise ReportInputError(f"pinned run {pin} is ambiguous: {sorted(r.run_id for r in hits)}")
    if hits[0].profile != profile:
        raise ReportInputError(f"pinned run {pin} is of profile {hits[0].profile}, not {profile}")
    return hits[0]


def metric_group(key: str) -> str:
    """The table a metric sits in: ``tts/<protocol>/<system>``, ``eval/<system>`` (``eval/vc``, ``eval/probe``),
    else everything before the last ``/``. TTS metric names may hold a slash themselves (``mcd/happy``)."""
    parts = key.split("/")
    depth = {"tts": 3, "eval": 2}.get(parts[0], len(parts) - 1)
    return "/".join(parts[:max(1, min(depth, len(parts) - 1))]) if len(parts) > 1 else "other"


def choose_metrics(runs: Iterable[RunRecord], patterns: Sequence[str] = (), pesq_key: str = "pesq_wb") -> list[str]:
    """The metric columns: the logged keys matching ``patterns`` (fnmatch, e.g. ``tts/librispeech/*``); without
    patterns, the keys the paper's ablations name that some run logged (all logged keys when none is)."""
    logged = sorted({k for r in runs for k in r.metrics})
    if patterns:
        keys = [k for k in logged if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
        if not keys:
            raise ReportInputError(f"no logged metric matches {list(patterns)}; logged: {logged}")
    else:
        wanted = set(logged)
        keys = [k for k in spec_metric_keys(pesq_key) if k in wanted] or logged
    groups = list(dict.fromkeys(metric_group(k) for k in keys))
    return sorted(keys, key=lambda k: groups.index(metric_group(k)))  # stable: spec order within a group


# -------------------------------------------------------------------------------------------- comparison

@dataclass
class Comparison:
    """The variants of one experiment and profile, the run each is read from, and what the paper expects."""

    experiment: str
    profile: str
    baseline: str
    variants: list[str]  # baseline first
    runs: dict[tuple[str, str], RunRecord]  # (variant, stage) -> the compared run
    metrics: list[str]  # MLflow keys, in table order
    ablations: dict[str, list[str]] = field(default_factory=dict)  # variant -> the paper's ablations it is
    expectations: dict[str, dict[str, Expectation]] = field(default_factory=dict)  # variant -> metric -> ...
    tags: dict[str, str] = field(default_factory=dict)
    curve_runs: dict[tuple[str, str], RunRecord] = field(default_factory=dict)  # (variant, train stage) -> run

    def run_for(self, variant: str, metric: str) -> RunRecord | None:
        """The compared run of ``variant`` that logged ``metric`` (None: none did)."""
        return next((r for (v, _), r in self.runs.items() if v == variant and metric in r.metrics), None)

    def value(self, variant: str, metric: str) -> float | None:
        run = self.run_for(variant, metric)
        value = run.metrics[metric] if run else None
        return value if value is not None and math.isfinite(value) else None  # NaN: unavailable, not a number

    def delta(self, variant: str, metric: str) -> float | None:
        v, b = self.value(variant, metric), self.value(self.baseline, metric)
        return None if v is None or b is None else v - b

    def mark(self, variant: str, metric: str) -> Cell:
        """✓ / ✗ when the paper states a direction for this variant's ablation, blank otherwise."""
        e = self.expectations.get(variant, {}).get(metric)
        if e is None or variant == self.baseline:
            return Cell()
        return direction(self.value(self.baseline, metric), self.value(variant, metric), e.higher_is_better,
                         e.baseline_better)

    def reason(self, variant: str, metric: str) -> str:
        """Why ``value(variant, metric)`` is missing."""
        stages = list(dict.fromkeys(s for (_, s), r in self.runs.items() if metric in r.metrics)) or ["compared"]
        own = [r for (v, s), r in self.runs.items() if v == variant and s in stages]
        if not own:
            return f"variant '{variant}' has no {' / '.join(stages)} run in profile {self.profile}"
        if any(metric in r.metrics for r in own):
            return f"{metric} is NaN (unavailable) in variant '{variant}' ({own[0].label})"
        return f"{metric} not logged by variant '{variant}' ({own[0].label})"


def build_comparison(records: Iterable[RunRecord], experiment: str, profile: str, baseline: str = "baseline",
                     stages: Sequence[str] = COMPARE_STAGES, metrics: Sequence[str] = (), pins: Sequence[str] = (),
                     tags: Mapping[str, str] | None = None, pesq_key: str = "pesq_wb") -> Comparison:
    """Pick the runs (``choose_runs``) and the metric columns (``choose_metrics``) and match the ablations."""
    runs = choose_runs(records, profile, stages, pins)
    if not runs:
        where = f"experiment {experiment!r}" + (f" with tags {dict(tags)}" if tags else "")
        raise ReportInputError(f"no {' / '.join(stages)} runs of profile {profile} in {where} "
                               "(finished runs only unless --include-unfinished)")
    variants = sorted({v for v, _ in runs})
    if baseline not in variants:
        raise ReportInputError(f"baseline variant {baseline!r} has no {' / '.join(stages)} run in profile {profile} "
                               f"of {experiment!r}; variants there: {variants} (choose one with --baseline)")
    titles, expect = match_ablations(runs, baseline, pesq_key)
    return Comparison(experiment=experiment, profile=profile, baseline=baseline,
                      variants=[baseline, *(v for v in variants if v != baseline)], runs=runs,
                      metrics=choose_metrics(runs.values(), metrics, pesq_key), ablations=titles,
                      expectations=expect, tags=dict(tags or {}))


# ------------------------------------------------------------------------------------------------ tables

def _digits(values: Iterable[float | None]) -> int:
    """Decimals for a column: fewer for large numbers (NFE 60), three for scores and fractions."""
    top = max((abs(v) for v in values if v is not None), default=0.0)
    return 1 if top >= 100 else 2 if top >= 10 else 3


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _started(rec: RunRecord) -> str:
    return datetime.fromtimestamp(rec.start_time / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def runs_table(cmp: Comparison) -> Table:
    table = Table("runs", "Runs compared", ["variant", "stage", "run", "started", "ablation of the paper"])
    for variant in cmp.variants:
        for (v, stage), rec in sorted({**cmp.runs, **cmp.curve_runs}.items(), key=lambda kv: kv[0][1]):
            if v != variant:
                continue
            ablation = "baseline" if v == cmp.baseline else "; ".join(cmp.ablations.get(v, [])) or None
            table.add([Cell(v), Cell(stage), Cell(rec.run_id), Cell(_started(rec)), Cell(ablation)],
                      kind="baseline" if v == cmp.baseline else "variant")
    table.notes.append(f"One run per variant and stage: the newest finished one of profile {cmp.profile} unless "
                       "pinned (--run). Train runs only feed the training curves.")
    return table


def group_tables(cmp: Comparison, group: str) -> tuple[Table, Table]:
    """(values, deltas) of one metric group; columns are the MLflow keys as logged."""
    keys = [k for k in cmp.metrics if metric_group(k) == group]
    digits = {k: _digits(cmp.value(v, k) for v in cmp.variants) for k in keys}
    values = Table(f"values-{_slug(group)}", f"{group}: values", ["variant", *keys])
    for v in cmp.variants:
        cells = [Cell(x, digits[k]) if (x := cmp.value(v, k)) is not None else na(cmp.reason(v, k)) for k in keys]
        values.add([Cell(v), *cells], kind="baseline" if v == cmp.baseline else "variant")
    deltas = Table(f"deltas-{_slug(group)}", f"{group}: Δ = variant − baseline '{cmp.baseline}'",
                   ["variant", "ablation of the paper", *keys])
    for v in cmp.variants[1:]:
        cells = []
        for k in keys:
            d = cmp.delta(v, k)
            if d is None:
                missing = v if cmp.value(v, k) is None else cmp.baseline
                cells.append(na(cmp.reason(missing, k)))
                continue
            mark = cmp.mark(v, k).text
            cells.append(Cell(f"{d:+.{digits[k]}f}" + (f" {mark}" if mark in (AGREES, DISAGREES) else "")))
        deltas.add([Cell(v), Cell("; ".join(cmp.ablations.get(v, [])) or None), *cells], kind="variant")
    deltas.notes.append(f"{AGREES}: the variant moves the metric the way the paper expects of its ablation; "
                        f"{DISAGREES}: it does not (no change included); no mark: the paper states no direction "
                        "for this metric or this variant is not one of its ablations.")
    return values, deltas


def expectations_table(cmp: Comparison) -> Table:
    """Every judged (variant, metric) pair: our two numbers, the paper's two, the direction, and the verdict."""
    table = Table("expectations", "Against the paper: the expected direction of each ablation",
                  ["variant", "ablation of the paper", "metric", "baseline", "variant value", "Δ", "paper: full",
                   "paper: ablated", "paper Δ", "expected", "matches"])
    for v in cmp.variants[1:]:
        for k in cmp.metrics:
            e = cmp.expectations.get(v, {}).get(k)
            if e is None or e.baseline_better is None:
                continue
            digits = _digits([cmp.value(cmp.baseline, k), cmp.value(v, k), *(e.paper or ())])
            b, x, d = cmp.value(cmp.baseline, k), cmp.value(v, k), cmp.delta(v, k)
            paper = [Cell(p, digits) for p in e.paper] if e.paper else [Cell(), Cell()]
            paper_delta = Cell(f"{e.paper[1] - e.paper[0]:+.{digits}f}") if e.paper else Cell()
            table.add([Cell(v), Cell(e.ablation), Cell(k),
                       Cell(b, digits) if b is not None else na(cmp.reason(cmp.baseline, k)),
                       Cell(x, digits) if x is not None else na(cmp.reason(v, k)),
                       Cell(f"{d:+.{digits}f}") if d is not None else Cell(), *paper, paper_delta, Cell(e.text),
                       cmp.mark(v, k)], kind="variant")
    table.notes += [
        "Expected directions and the paper's numbers come from the report's ablation specs "
        "(evaluation/report/tts_ablations.py, ablation.py; numbers in reference.py). The paper's pair is "
        "(its full setting, the ablated one), in the metric's logged units (error rates as fractions).",
        "Metrics of an ablation without a stated direction (e.g. the paper's tied WER) appear in the delta tables "
        "without a mark and are left out here.",
    ]
    return table


def long_table(cmp: Comparison) -> Table:
    """Everything in one long-form table (written as compare.csv at full precision)."""
    table = Table("compare", "All compared values", ["variant", "stage", "run", "metric", "value", "baseline",
                                                     "delta", "expected", "matches"])
    for v in cmp.variants:
        for k in cmp.metrics:
            run = cmp.run_for(v, k)
            e = cmp.expectations.get(v, {}).get(k)
            value = cmp.value(v, k)
            table.add([Cell(v), Cell(run.stage if run else None), Cell(run.run_id if run else None), Cell(k),
                       Cell(value) if value is not None else na(cmp.reason(v, k)),
                       Cell(cmp.value(cmp.baseline, k)), Cell(cmp.delta(v, k)), Cell(e.text if e else None),
                       cmp.mark(v, k)], kind="baseline" if v == cmp.baseline else "variant")
    return table


# ----------------------------------------------------------------------------------------------- figures

def bar_figure(cmp: Comparison, group: str) -> Any:
    from .dashboard_plots import plot_metric_bars

    keys = [k for k in cmp.metrics if metric_group(k) == group]
    values = {k: {v: cmp.value(v, k) for v in cmp.variants} for k in keys}
    marks = {k: {v: cmp.mark(v, k).text for v in cmp.variants} for k in keys}
    return plot_metric_bars(values, cmp.baseline, marks, title=group)


HistoryFetch = Callable[[str, Sequence[str]], Mapping[str, History]]  # (run id, keys) -> key -> points


def curve_histories(cmp: Comparison, fetch: HistoryFetch, patterns: Sequence[str] = CURVE_KEYS
                    ) -> dict[str, dict[str, dict[str, History]]]:
    """train stage -> variant -> key -> (step, value) points of the curve runs' keys matching ``patterns``."""
    out: dict[str, dict[str, dict[str, History]]] = {}
    for (variant, stage), rec in cmp.curve_runs.items():
        keys = [k for k in sorted(rec.metrics) if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
        if keys:
            out.setdefault(stage, {})[variant] = dict(fetch(rec.run_id, keys))
    return out


def curve_figures(cmp: Comparison, histories: Mapping[str, Mapping[str, Mapping[str, History]]]) -> dict[str, Any]:
    from .dashboard_plots import plot_variant_curves

    figures = {}
    for stage, per_variant in histories.items():
        ordered = {v: per_variant[v] for v in cmp.variants if v in per_variant}
        figures[stage] = plot_variant_curves(ordered, cmp.baseline, cmp.variants, title=f"{stage}: training curves")
    return figures


# -------------------------------------------------------------------------------------------------- page

_PAGE_CSS = """body{max-width:92rem}h1{font-size:1.5rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
h3{margin:1.2rem 0 .3rem;font-size:1.05rem}.meta{color:#444}.meta code{background:#f3f3f3;padding:0 .2rem}
nav{margin:.6rem 0 1rem;font-size:.92em}nav a{margin-right:.9rem}
.scroll{overflow-x:auto}table{font-size:.88em}th{max-width:13rem;font-weight:600;vertical-align:bottom}
td{white-space:nowrap}tr.baseline td{background:#eef6ff;font-weight:600}tr.variant:hover td{background:#fafafa}
.t-runs td,.t-runs th,.t-expectations td:nth-child(-n+3),.t-expectations th:nth-child(-n+3){text-align:left}
.t-runs td:nth-child(3){font-family:ui-monospace,monospace;font-size:.9em}
.t-values td:nth-child(2),.t-values th:nth-child(2){text-align:right}.t-deltas th:nth-child(2){text-align:left}
.t-expectations td:nth-child(2),.t-deltas td:nth-child(2){white-space:normal;min-width:10rem;max-width:20rem}
.ok{color:#1e7b45;font-weight:700}.bad{color:#b3261e;font-weight:700}
.group{border:1px solid #e3e3e3;border-radius:6px;padding:.2rem 1rem 1rem;margin:1rem 0}
figure{margin:.8rem 0}figcaption{font-size:.85em;color:#555}"""


def _table_block(table: Table, kind: str, heading: str = "h3") -> str:
    """``table_html`` with its heading at ``heading``, ✓ / ✗ in colour, and break points after each "/" of the
    metric headers (``<wbr>`` is invisible to copy and paste, so a header still copies as the MLflow key)."""
    text = table_html(table).replace("<h2 ", f"<{heading} ", 1).replace("</h2>", f"</{heading}>", 1)
    text = re.sub(r"<th>([^<]*)</th>", lambda m: "<th>" + m.group(1).replace("/", "/<wbr>") + "</th>", text)
    for mark, css in ((AGREES, "ok"), (DISAGREES, "bad")):
        text = text.replace(mark, f'<span class="{css}">{mark}</span>')
    return f'<div class="scroll t-{kind}">{text}</div>'


def _img(name: str, fig: Any, caption: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(figure_png(fig)).decode("ascii")
    e = html.escape
    return (f'<figure id="fig-{e(_slug(name))}"><img alt="{e(name)}" src="{uri}">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


def _without_credentials(uri: str) -> str:
    """The store's URI as the page may show it: a server URI's user and password never go into a mailed page."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def render_dashboard(cmp: Comparison, curves: Mapping[str, Any] | None = None, source: str = "",
                     built: datetime | None = None) -> str:
    """The page's HTML: runs, expectations, per-group values / deltas / bars, training curves."""
    e = html.escape
    groups = list(dict.fromkeys(metric_group(k) for k in cmp.metrics))
    built = built or datetime.now(timezone.utc)
    tags = ", ".join(f"{k}={v}" for k, v in cmp.tags.items()) or "none"
    stages = sorted({s for _, s in cmp.runs})
    body = [f"<h1>{e(TITLE)}</h1>",
            f'<p class="meta">Experiment <code>{e(cmp.experiment)}</code> · profile <code>{e(cmp.profile)}</code> · '
            f"baseline <code>{e(cmp.baseline)}</code> · {len(cmp.variants)} variants · stages "
            f"{e(', '.join(stages))} · extra tag filters: {e(tags)}"
            + (f" · store <code>{e(_without_credentials(source))}</code>" if source else "")
            + f" · built {e(built.strftime('%Y-%m-%d %H:%M UTC'))}</p>",
            "<p>Every metric is named as MLflow logged it. Δ is variant − baseline in that metric's own units; "
            f'<span class="ok">{AGREES}</span> / <span class="bad">{DISAGREES}</span> say whether it moves the way '
            "the paper expects of that ablation. “n/a” links to the reason; “–” means not applicable.</p>",
            "<nav>" + " ".join(['<a href="#runs">runs</a>', '<a href="#expectations">against the paper</a>',
                                *(f'<a href="#group-{e(_slug(g))}">{e(g)}</a>' for g in groups),
                                '<a href="#curves">training curves</a>']) + "</nav>",
            _table_block(runs_table(cmp), "runs", "h2"), _table_block(expectations_table(cmp), "expectations", "h2")]
    body.append('<h2 id="metrics">Metrics by group</h2>')
    for g in groups:
        values, deltas = group_tables(cmp, g)
        body += [f'<section class="group" id="group-{e(_slug(g))}">', _table_block(values, "values"),
                 _table_block(deltas, "deltas"),
                 _img(f"bars-{g}", bar_figure(cmp, g), f"{g}: each metric per variant; dashed line: the baseline."),
                 "</section>"]
    body.append('<h2 id="curves">Training curves</h2>')
    if curves:
        body += [_img(f"curves-{stage}", fig, f"{stage}: metric history of each variant's compared train run.")
                 for stage, fig in curves.items()]
    else:
        body.append(f"<p>No train run ({', '.join(CURVE_STAGES)}) of these variants in profile {e(cmp.profile)} "
                    "logged a curve metric.</p>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(TITLE)}: {e(cmp.experiment)}'
            f' ({e(cmp.profile)})</title><link rel="icon" href="data:,">'  # no favicon request, so no 404
            f"<style>{PAGE_CSS}\n{_PAGE_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


# ------------------------------------------------------------------------------------------- front doors

@dataclass
class DashboardFiles:
    html: Path
    csv: Path
    variants: list[str]
    runs: dict[str, str]  # "<variant>/<stage>" -> run id, every run the page reads (train runs included)


def write_dashboard(cmp: Comparison, out: str | Path,
                    histories: Mapping[str, Mapping[str, Mapping[str, History]]] | None = None,
                    source: str = "") -> DashboardFiles:
    """Write the page to ``out`` and ``compare.csv`` beside it (both atomically)."""
    out = Path(out)
    page = render_dashboard(cmp, curve_figures(cmp, histories or {}), source)
    csv_path = out.with_name("compare.csv")
    atomic_write(csv_path, table_to_csv(long_table(cmp)).encode("utf-8"))
    atomic_write(out, page.encode("utf-8"))
    runs = {f"{v}/{s}": r.run_id for (v, s), r in {**cmp.runs, **cmp.curve_runs}.items()}
    return DashboardFiles(out, csv_path, list(cmp.variants), runs)


def build_dashboard(tracking_uri: str, experiment: str, profile: str, out: str | Path | None = None,
                    baseline: str = "baseline", stages: Sequence[str] = COMPARE_STAGES,
                    tags: Mapping[str, str] | None = None, metrics: Sequence[str] = (),
                    curve_stages: Sequence[str] = CURVE_STAGES, curve_keys: Sequence[str] = CURVE_KEYS,
                    pins: Sequence[str] = (), finished_only: bool = True, pesq_key: str = "pesq_wb") -> DashboardFiles:
    """Read the store, build the comparison and write the page (default ``reports/compare/index.html``).

    ``tags`` filter every run read (compared and train runs alike); ``metrics`` are fnmatch patterns over the
    logged keys; ``pins`` are run ids that replace the newest run of their variant and stage.
    """
    from .plots import metric_histories

    records = collect_runs(tracking_uri, experiment, profile, [*stages, *curve_stages], tags, finished_only)
    cmp = build_comparison(records, experiment, profile, baseline, stages, metrics, pins, tags, pesq_key)
    train = choose_runs(records, profile, curve_stages, pins)
    cmp.curve_runs = {k: r for k, r in train.items() if k[0] in cmp.variants}
    histories = curve_histories(cmp, lambda run_id, keys: metric_histories(tracking_uri, run_id, keys), curve_keys)
    return write_dashboard(cmp, out or Path("reports") / DASHBOARD_PAGE, histories, tracking_uri)

