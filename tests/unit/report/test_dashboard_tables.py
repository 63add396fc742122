"""The ablation dashboard's tables from hand-built run records: run choice, profiles, deltas, directions, page."""
from __future__ import annotations

import math
import random
import re
from types import SimpleNamespace

import pytest

from evaluation.report.collect import ReportInputError
from evaluation.report.dashboard import (
    RunRecord,
    build_comparison,
    choose_metrics,
    choose_runs,
    expectations_table,
    group_tables,
    metric_group,
    render_dashboard,
    runs_table,
    split_tags,
    write_dashboard,
)
from evaluation.report.render import DASHBOARD_PAGE, write_report
from evaluation.report.table import Table, read_table_csv

SIM_O, PER, WER = "tts/librispeech/generated/sim_o", "tts/librispeech/generated/per", "tts/librispeech/generated/wer"
MCD = "tts/ravdess/generated/mcd"
VC_SIM = "eval/vc/sim_o"
_ids = iter(range(10_000))


def rec(variant: str, stage: str = "evaluate_tts", start: int = 1_000, metrics: dict | None = None,
        profile: str | None = "mini", params: dict | None = None, run_id: str | None = None) -> RunRecord:
    return RunRecord(run_id=run_id or f"{variant}-{stage}-{next(_ids):04d}", stage=stage, variant=variant,
                     profile=profile, start_time=start, metrics=metrics or {}, params=params or {})


def tts(variant: str, sim_o: float, per: float, start: int = 1_000, **kw) -> RunRecord:
    return rec(variant, "evaluate_tts", start, {SIM_O: sim_o, PER: per, MCD: 6.0}, **kw)


# Against the baseline (Sim-O 0.78, PER 0.64): -cfg lowers Sim-O (the paper's way: ✓) and raises PER (the paper
# ties WER, so no mark); L2 durations raise Sim-O (✗) and PER (✓).
RECORDS = [
    tts("baseline", 0.10, 0.99, start=500),  # an older baseline run: never the one compared
    tts("baseline", 0.78, 0.64, start=2_000, run_id="base-new"),
    tts("no-cfg", 0.70, 0.66, start=2_100),
    tts("duration-l2", 0.80, 0.70, start=2_200),
    tts("no-cfg", 0.20, 0.10, start=9_000, profile="paper"),  # another profile, newer: never mixed in
    tts("paper-only", 0.5, 0.5, start=9_000, profile="paper"),
    tts("untagged", 0.5, 0.5, start=9_000, profile=None),
]


def comparison(records=RECORDS, **kw):
    shuffled = list(records)
    random.Random(0).shuffle(shuffled)  # the choice may not depend on the order runs arrive in
    return build_comparison(shuffled, "ns3-ablations", "mini", **kw)


def cells(table: Table, first: str) -> dict[str, str]:
    row = table.find_row(first)
    return {c: cell.text for c, cell in zip(table.columns, row.cells)}


# ------------------------------------------------------------------------------------------- choosing runs

def test_latest_run_per_variant_and_stage_of_one_profile():
    cmp = comparison()
    assert cmp.variants == ["baseline", "duration-l2", "no-cfg"]  # baseline first; paper/untagged runs absent
    assert cmp.runs[("baseline", "evaluate_tts")].run_id == "base-new"
    assert cmp.value("no-cfg", SIM_O) == pytest.approx(0.70)  # the mini run, not the newer paper one
    assert {r.profile for r in cmp.runs.values()} == {"mini"}
    paper = build_comparison(RECORDS, "x", "paper", baseline="no-cfg")
    assert paper.variants == ["no-cfg", "paper-only"]


def test_latest_is_per_stage_and_ties_break_by_run_id():
    codec_old = rec("baseline", "evaluate_codec", 100, {"eval/ns3-facodec/stoi": 0.8})
    tie_a = tts("no-cfg", 0.1, 0.1, start=5_000, run_id="tie-a")
    tie_b = tts("no-cfg", 0.2, 0.2, start=5_000, run_id="tie-b")
    runs = choose_runs([codec_old, *RECORDS, tie_a, tie_b], "mini", ("evaluate_codec", "evaluate_tts"))
    assert runs[("baseline", "evaluate_codec")] is codec_old  # older than the TTS runs, still its stage's latest
    assert runs[("baseline", "evaluate_tts")].run_id == "base-new"
    assert runs[("no-cfg", "evaluate_tts")].run_id == "tie-b"
    assert choose_runs(RECORDS, "mini", ("evaluate_codec",)) == {}


def test_pinned_runs_replace_the_newest():
    old = RECORDS[0]
    cmp = comparison(pins=[old.run_id[:12]])  # a unique prefix is enough
    assert cmp.runs[("baseline", "evaluate_tts")] is old
    assert cmp.value("baseline", SIM_O) == pytest.approx(0.10)
    with pytest.raises(ReportInputError, match="not among the runs read"):
        comparison(pins=["nope"])
    with pytest.raises(ReportInputError, match="ambiguous"):
        comparison(pins=["no-cfg-"])
    with pytest.raises(ReportInputError, match="profile paper, not mini"):
        comparison(pins=[RECORDS[4].run_id])


def test_missing_baseline_or_runs_say_what_exists():
    with pytest.raises(ReportInputError, match=r"baseline variant 'ref'.*\['baseline', 'duration-l2', 'no-cfg'\]"):
        comparison(baseline="ref")
    with pytest.raises(ReportInputError, match="no evaluate_tts runs of profile ci"):
        build_comparison(RECORDS, "ns3-ablations", "ci", stages=("evaluate_tts",))


# ---------------------------------------------------------------------------------------- deltas, directions

def test_deltas_carry_the_papers_direction():
    cmp = comparison()
    assert cmp.ablations["no-cfg"] == ["-cfg (paper Table 3)"]
    values, deltas = group_tables(cmp, "tts/librispeech/generated")
    assert values.columns == ["variant", SIM_O, PER]  # the MLflow keys as logged, nothing renamed
    assert [r.cells[0].text for r in values.rows] == ["baseline", "duration-l2", "no-cfg"]
    assert cells(values, "no-cfg")[SIM_O] == "0.700"
    assert [r.cells[0].text for r in deltas.rows] == ["duration-l2", "no-cfg"]  # no delta row for the baseline
    assert cells(deltas, "no-cfg")[SIM_O] == "-0.080 ✓"
    assert cells(deltas, "no-cfg")[PER] == "+0.020"  # the paper's WER ties under -cfg: shown, not judged
    assert cells(deltas, "duration-l2")[SIM_O] == "+0.020 ✗"
    assert cells(deltas, "duration-l2")[PER] == "+0.060 ✓"
    assert cells(deltas, "duration-l2")["ablation of the paper"].startswith("Duration objective")


def test_expectations_table_in_logged_units():
    cmp = comparison()
    table = expectations_table(cmp)
    rows = {(r.cells[0].text, r.cells[2].text): dict(zip(table.columns, (c.text for c in r.cells)))
            for r in table.rows}
    assert ("no-cfg", PER) not in rows  # no stated direction: left out here
    sim = rows[("no-cfg", SIM_O)]
    assert sim["expected"] == "Δ < 0" and sim["matches"] == "✓"
    assert sim["paper: full"] == "–"  # the paper's Sim-O is WavLM-TDNN: never beside our Resemblyzer sim_o
    per = rows[("duration-l2", PER)]
    assert per["expected"] == "Δ > 0" and per["matches"] == "✓"
    assert per["paper: full"] == "–"  # PER has no paper value (only WER does)


def test_wer_paper_pair_is_scaled_to_the_logged_fraction():
    records = [*RECORDS[:4], tts("duration-l2", 0.8, 0.7, start=3_000)]
    records = [RunRecord(**{**r.__dict__, "metrics": {**r.metrics, WER: 0.02 if r.variant == "baseline" else 0.03}})
               for r in records]
    row = next(r for r in expectations_table(comparison(records)).rows
               if r.cells[0].text == "duration-l2" and r.cells[2].text == WER)
    assert (row.cells[6].value, row.cells[7].value) == pytest.approx((0.0194, 0.0238))  # T11 prints 1.94 / 2.38 %
    assert row.cells[8].text == "+0.004" and row.cells[10].text == "✓"  # the paper's and our WER both rise


def test_missing_and_nan_values_are_na_with_a_reason():
    records = [*RECORDS[:4], rec("no-prompt", metrics={SIM_O: math.nan, MCD: 6.2}, start=3_000)]
    cmp = comparison(records)
    values, deltas = group_tables(cmp, "tts/librispeech/generated")
    row = values.find_row("no-prompt")
    sim, per = row.cells[1], row.cells[2]
    assert sim.text == per.text == "n/a"
    assert "NaN" in sim.reason and "not logged" in per.reason and "evaluate_tts run" in per.reason
    assert deltas.find_row("no-prompt").cells[2].text == "n/a"


def test_codec_ablation_found_by_its_flipped_hparam():
    hp = {"codec.model.information_bottleneck": "True", "codec.model.use_detail": "True"}
    records = [rec("baseline", "evaluate_codec", 1, {VC_SIM: 0.71, "eval/ns3-facodec/stoi": 0.83}, params=hp),
               rec("wide-codes", "evaluate_codec", 2, {VC_SIM: 0.62, "eval/ns3-facodec/stoi": 0.85},
                   params={**hp, "codec.model.information_bottleneck": "False"})]
    cmp = build_comparison(records, "e", "mini", stages=("evaluate_codec",))
    assert cmp.ablations["wide-codes"] == ["Information bottleneck (paper Table 15)"]
    _, deltas = group_tables(cmp, "eval/vc")
    assert cells(deltas, "wide-codes")[VC_SIM] == "-0.090 ✓"
    _, deltas = group_tables(cmp, "eval/ns3-facodec")
    assert cells(deltas, "wide-codes")["eval/ns3-facodec/stoi"] == "+0.020"  # shown for context, no direction


def test_runs_table_names_every_compared_run():
    table = runs_table(comparison())
    assert [(r.cells[0].text, r.cells[2].text) for r in table.rows][0] == ("baseline", "base-new")
    assert {r.cells[0].text for r in table.rows} == {"baseline", "no-cfg", "duration-l2"}
    assert table.rows[0].cells[4].text == "baseline" and table.rows[0].kind == "baseline"


# ------------------------------------------------------------------------------------------------ choosing

def test_metric_columns_default_to_the_ablations_metrics():
    runs = [rec("b", metrics={SIM_O: 1, "tts/librispeech/generated/rtf": 2, MCD: 3, "eval/vc/sim_o": 4})]
    assert choose_metrics(runs) == [SIM_O, MCD, "eval/vc/sim_o"]  # grouped; rtf is named by no ablation
    assert choose_metrics(runs, ["tts/librispeech/*"]) == ["tts/librispeech/generated/rtf", SIM_O]
    assert choose_metrics([rec("b", metrics={"x/y": 1})]) == ["x/y"]  # nothing the paper names: show what exists
    with pytest.raises(ReportInputError, match="no logged metric matches"):
        choose_metrics(runs, ["codec/*"])


def test_metric_groups_keep_slashes_inside_metric_names():
    assert metric_group("tts/ravdess/generated/mcd/happy") == "tts/ravdess/generated"
    assert metric_group("eval/ns3-facodec/pesq_wb") == "eval/ns3-facodec"
    assert metric_group("eval/probe/content/speaker") == "eval/probe"
    assert metric_group("codec/rec") == "codec" and metric_group("loss") == "other"


def test_split_tags():
    assert split_tags(["ns3.stage=evaluate_tts", "ns3.profile=mini", "team=a"]) == (["evaluate_tts"], "mini",
                                                                                     {"team": "a"})
    with pytest.raises(ValueError, match="key=value"):
        split_tags(["ns3.stage"])
    with pytest.raises(ValueError, match="one profile"):
        split_tags(["ns3.profile=mini", "ns3.profile=paper"])


# -------------------------------------------------------------------------------------------------- page

def test_page_is_self_contained_and_writes_the_csv(tmp_path):
    cmp = comparison()
    histories = {"train_diffusion": {"baseline": {"diffusion/total": [(1, 3.0), (2, 2.0)]},
                                     "no-cfg": {"diffusion/total": [(1, 3.1), (2, 2.5)]}}}
    files = write_dashboard(cmp, tmp_path / "compare" / "index.html", histories)
    page = files.html.read_text()
    srcs = re.findall(r'(?:src|href)="([^"#]*)"', page)
    assert srcs and all(s.startswith("data:") for s in srcs)  # offline: no CDN, no file beside it needed
    assert "<script" not in page
    assert page.count("<img ") == 2 + 1  # a bar chart per metric group (librispeech, ravdess), one curve figure
    assert 'class="ok">✓' in page and 'class="bad">✗' in page
    rows = read_table_csv(files.csv)
    got = {(r["variant"], r["metric"]): r for r in rows}
    assert got[("no-cfg", SIM_O)]["delta"] == pytest.approx(-0.08) and got[("no-cfg", SIM_O)]["matches"] == "✓"
    assert got[("baseline", SIM_O)]["run"] == "base-new"


def test_page_without_curves_says_so():
    assert "No train run" in render_dashboard(comparison())


def test_reports_link_the_dashboard_when_it_exists(tmp_path):
    tables = SimpleNamespace(baseline="baseline", all=lambda: [Table("t", "T", ["a"])])
    files = write_report(tables, tmp_path / "reports" / "tts")
    assert "compare/index.html" not in files.html.read_text()
    (tmp_path / "reports" / DASHBOARD_PAGE).parent.mkdir(parents=True)
    (tmp_path / "reports" / DASHBOARD_PAGE).write_text("<html></html>")
    files = write_report(tables, tmp_path / "reports" / "tts")
    assert 'href="../compare/index.html"' in files.html.read_text()
    assert "(../compare/index.html)" in files.markdown.read_text()


def test_keys_the_evaluate_stages_log_are_the_keys_judged():
    """Records built by the stages' own ``flat_metrics``: the dashboard judges the names they really log."""
    from evaluation.codec_eval import flat_metrics as codec_metrics
    from evaluation.tts_eval import flat_metrics as tts_metrics
    from report_fixtures import BASELINE, NO_BOTTLENECK, NO_DETAIL
    from tts_fixtures import BASELINE as TTS_BASELINE
    from tts_fixtures import NO_CFG

    def codec(data, start):
        params = {f"codec.model.{k}": str(v) for k, v in data["variant"]["codec_hparams"].items()}
        return rec(data["variant"]["name"], "evaluate_codec", start, codec_metrics(data), params=params)

    records = [codec(BASELINE, 1), codec(NO_BOTTLENECK, 2), codec(NO_DETAIL, 3),
               rec("baseline", "evaluate_tts", 4, tts_metrics(TTS_BASELINE)),
               rec("no-cfg", "evaluate_tts", 5, tts_metrics(NO_CFG))]
    cmp = build_comparison(records, "e", "mini")
    marks = {(v, k): cmp.mark(v, k).text for v in cmp.variants for k in cmp.metrics}
    assert marks[("no_bottleneck", "eval/vc/sim_o")] == "✓"  # 0.62 < 0.71: the bottleneck helps VC
    assert marks[("no_bottleneck", "eval/probe/content/speaker")] == "✓"  # more speaker leaks into content codes
    assert marks[("no_detail", "eval/ns3-facodec/pesq_wb")] == "✓"
    assert marks[("no_detail", "eval/ns3-facodec/mcd")] == "✗"  # the fixture's MCD improves without details
    assert marks[("no-cfg", SIM_O)] == "✓"
    assert {"eval/ns3-facodec", "eval/vc", "eval/probe", "tts/librispeech/generated"} <= {
        metric_group(k) for k in cmp.metrics}
    assert "eval/opus-6k/pesq_wb" not in cmp.metrics  # baselines' rows are not ablation metrics by default


def test_the_page_never_shows_store_credentials():
    page = render_dashboard(comparison(), source="postgresql://ns3:s3cret@db.internal:5432/mlflow")
    assert "s3cret" not in page and "db.internal:5432/mlflow" in page
    assert "sqlite:////tmp/x/mlflow.db" in render_dashboard(comparison(), source="sqlite:////tmp/x/mlflow.db")


def test_a_baseline_alone_still_makes_a_page(tmp_path):
    """The first pipeline run has nothing to compare yet: the page shows the baseline, without delta rows."""
    cmp = build_comparison([RECORDS[1]], "ns3", "mini")
    files = write_dashboard(cmp, tmp_path / "index.html")
    assert files.variants == ["baseline"] and "0.780" in files.html.read_text()
    assert group_tables(cmp, "tts/librispeech/generated")[1].rows == [] and expectations_table(cmp).rows == []
