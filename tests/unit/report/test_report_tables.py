"""Tables from fixture metrics: values land in the right cells, missing values are n/a with a reason."""
from __future__ import annotations

import pytest

from evaluation.report import build_tables, collect_from_files, direction, pick_baseline
from evaluation.report.ablation import SIM_RESEMBLYZER, SIM_WAVLM
from evaluation.report.reference import PAPER_BOTTLENECK, PAPER_CODEC, PAPER_DETAIL, PAPER_VC
from evaluation.report.table import Cell, Table, na


@pytest.fixture
def tables(metric_files):
    return build_tables(collect_from_files(metric_files))


def test_codec_table_places_our_values_and_shape(tables):
    t = tables.codec
    assert t.cell("ns3-facodec [baseline]", "PESQ ↑").value == pytest.approx(2.1)
    assert t.cell("ns3-facodec [baseline]", "STOI ↑").value == pytest.approx(0.834)
    assert t.cell("ns3-facodec [baseline]", "MCD ↓").value == pytest.approx(4.1)
    assert t.cell("ns3-facodec [baseline]", "Hop").value == 200
    assert t.cell("ns3-facodec [baseline]", "Codebooks").value == 6
    assert t.cell("ns3-facodec [baseline]", "Sampling rate (kHz)").text == "16"
    assert t.cell("ns3-facodec [no_detail]", "Codebooks").value == 3
    assert t.cell("ns3-facodec [no_detail]", "Bitrate (kbps)").value == pytest.approx(2.4)
    assert t.cell("opus-6k", "PESQ ↑").value == pytest.approx(1.5)
    assert t.rows[0].cells[0].text == "ns3-facodec [baseline]"  # ours first
    # intelligibility beside the ground truth's, in percent
    assert t.cell("ns3-facodec [baseline]", "PER (%) ↓").value == 31.0
    assert t.cell("ns3-facodec [baseline]", "PER, ground truth (%)").value == 22.0
    assert t.cell("FACodec", "PER (%) ↓", kind="paper").text == "–"


def test_missing_values_are_na_with_footnote_never_zero(tables):
    t = tables.codec
    mstft = t.cell("opus-6k", "MSTFT ↓")
    assert mstft.value is None and mstft.text == "n/a" and "mstft" in mstft.reason
    codec2 = t.find_row("codec2-3.2k")
    for cell in codec2.cells[5:]:
        assert cell.text == "n/a" and "c2enc not found" in cell.reason
    assert "codec2-3.2k: c2enc not found on PATH (apt-get install codec2)" in t.footnotes()
    assert t.cell("opus-6k", "Hop").text == "–" and t.cell("opus-6k", "Hop").reason is None
    wer = tables.vc.cell("ns3-facodec [baseline]", "WER (%) ↓")
    assert wer.value is None and "no whisper checkpoint" in wer.reason
    assert all(c.value != 0 for row in t.rows for c in row.cells)


def test_paper_rows_are_transcribed_numbers(tables):
    facodec = tables.codec.find_row("FACodec", kind="paper").cells
    assert [c.value for c in facodec[6:10]] == [3.47, 0.95, 0.93, 2.59]
    assert len([r for r in tables.codec.rows if r.kind == "paper"]) == len(PAPER_CODEC)
    assert tables.vc.cell("FACodec", "Sim-O (WavLM-base-plus-sv) ↑", kind="paper").value == 0.86
    assert tables.vc.cell("FACodec", "Sim-O (Resemblyzer) ↑", kind="paper").text == "–"
    assert tables.vc.cell("Ground Truth", "WER (%) ↓").value == 3.25
    assert len([r for r in tables.vc.rows if r.kind == "paper"]) == len(PAPER_VC)


def test_vc_table_scales_error_rates_to_percent(tables):
    row = tables.vc
    assert row.cell("ns3-facodec [baseline]", "PER (%) ↓").value == 29.0  # exactly: no 28.999...
    assert row.cell("ns3-facodec [baseline]", "Sim-O (Resemblyzer) ↑").value == pytest.approx(0.71)
    assert row.cell("ns3-facodec [no_bottleneck]", "Sim-O (Resemblyzer) ↑").value == pytest.approx(0.62)
    assert any("resemblyzer" in n for n in row.notes)


def test_vc_table_shows_the_own_timbre_control_and_pitch_transfer(tables):
    t = tables.vc
    assert t.cell("ns3-facodec [baseline]", "Sim-O, own timbre (Resemblyzer)").value == pytest.approx(0.66)
    assert t.cell("ns3-facodec [baseline]", "F0 transfer ↑").value == pytest.approx(0.42)
    assert any("own timbre" in n for n in t.notes)


def _ablation(tables, key) -> Table:
    return next(t for t in tables.ablations if t.key == key)


def test_bottleneck_ablation_pairs_variants_and_checks_direction(tables):
    t = _ablation(tables, "ablation_information_bottleneck")
    assert t.cell(SIM_RESEMBLYZER, "Ours (with)").value == pytest.approx(0.71)
    assert t.cell(SIM_RESEMBLYZER, "Ours (without)").value == pytest.approx(0.62)
    assert t.cell(SIM_WAVLM, "Paper (with)").value == PAPER_BOTTLENECK.values["sim_o"][0]
    assert t.cell(SIM_WAVLM, "Paper (without)").value == PAPER_BOTTLENECK.values["sim_o"][1]
    assert t.cell(SIM_RESEMBLYZER, "Paper (with)").text == "–"  # the paper's numbers are WavLM's, not Resemblyzer's
    assert t.cell(SIM_RESEMBLYZER, "Ours moves that way").text == "✓"
    # No stated expectation for PESQ under the bottleneck: shown, not judged.
    assert t.cell("PESQ ↑", "Ours (without)").value == pytest.approx(2.3)
    assert t.cell("PESQ ↑", "Ours moves that way").text == "–"


def test_ablations_read_the_probes_of_each_side(tables):
    t = _ablation(tables, "ablation_information_bottleneck")
    row = "Speaker probe on content codes ↓"
    assert t.cell(row, "Ours (with)").value == pytest.approx(0.3)
    assert t.cell(row, "Ours (without)").value == pytest.approx(0.55)
    assert t.cell(row, "Ours moves that way").text == "✓"  # less speaker in the content codes with the bottleneck
    assert t.cell("Speaker probe on the timbre vector ↑", "Ours (without)").value == pytest.approx(0.9)
    # The baseline has no detail probes: n/a with the group named, not a zero.
    detail = t.cell("Speaker probe on detail codes ↓", "Ours (with)")
    assert detail.value is None and "detail" in detail.reason
    # No variant without the detail GRLs: the table names the command that makes one.
    grl = _ablation(tables, "ablation_detail_grl_f0")
    assert grl.cell("F0 probe on detail codes (corr.) ↓", "Ours (with)").value is None  # no detail probes in the fixture
    missing = grl.cell("F0 probe on detail codes (corr.) ↓", "Ours (without)")
    assert "grl_detail_f0=false" in missing.reason


def test_detail_ablation_marks_each_metric(tables):
    t = _ablation(tables, "ablation_detail_codebooks")
    assert t.cell("PESQ ↑", "Ours moves that way").text == "✓"  # 2.1 with > 1.7 without
    assert t.cell("MSTFT ↓", "Ours moves that way").text == "✓"  # 1.2 with < 1.4 without
    assert t.cell("MCD ↓", "Ours moves that way").text == "✗"  # 4.1 with > 3.9 without
    assert t.cell("PESQ ↑", "Paper (without)").value == PAPER_DETAIL.values["pesq"][1]
    assert t.cell("MCD ↓", "Expected").text == "with < without"


def test_prosody_ablation_missing_side_is_na(tables):
    t = _ablation(tables, "ablation_prosody_input")
    assert t.cell("PESQ ↑", "Ours (V2)").value == pytest.approx(2.0)
    sim = t.cell(SIM_RESEMBLYZER, "Ours (V2)")
    assert sim.value is None and sim.reason
    mcd = t.cell("RAVDESS MCD ↓ (TTS)", "Ours moves that way")
    assert mcd.text == "n/a" and mcd.reason
    assert t.cell("RAVDESS MCD ↓ (TTS)", "Paper (V1)").value == 4.28


def test_ablation_without_variant_names_the_fix(metric_files):
    only_base = build_tables(collect_from_files(metric_files[:1]))
    t = _ablation(only_base, "ablation_information_bottleneck")
    cell = t.cell(SIM_RESEMBLYZER, "Ours (without)")
    assert cell.value is None and "information_bottleneck=False" in cell.reason and "dvc exp run" in cell.reason
    assert t.cell(SIM_RESEMBLYZER, "Ours moves that way").text == "n/a"


@pytest.mark.parametrize("a,b,higher,expect_a,want", [
    (0.8, 0.7, True, True, "✓"), (0.6, 0.7, True, True, "✗"), (0.7, 0.7, True, True, "✗"),
    (2.0, 3.0, False, True, "✓"), (3.0, 2.0, False, True, "✗"),
    (0.6, 0.7, True, False, "✓"), (3.0, 2.0, False, False, "✓"),
    (None, 0.7, True, True, "n/a"), (0.7, None, False, True, "n/a"), (0.1, 0.2, True, None, "–"),
])
def test_direction_logic(a, b, higher, expect_a, want):
    assert direction(a, b, higher, expect_a).text == want


def test_baseline_pick_by_name_then_defaults(metric_files):
    results = collect_from_files(metric_files[1:] + metric_files[:1])
    assert pick_baseline(results).name == "baseline"
    renamed = [r for r in results]
    renamed[-1].name = "main"
    assert pick_baseline(renamed).name == "main"  # the one with all default ablation hparams
    assert pick_baseline(renamed, "no_detail").name == "no_detail"


def test_cell_rules():
    assert Cell(2.0, 2).text == "2.00" and Cell().text == "–" and na("why").text == "n/a"
    with pytest.raises(ValueError):
        Cell(1.0, reason="both")
    with pytest.raises(ValueError, match="3 columns"):
        Table("t", "T", ["a", "b", "c"]).add([Cell(1)])


def test_no_results_is_an_error():
    with pytest.raises(ValueError, match="no evaluated variants"):
        build_tables([])


def test_values_that_round_to_zero_print_without_a_sign():
    from evaluation.report.table import Cell

    assert Cell(-0.001, 2).text == "0.00" and Cell(-0.01, 2).text == "-0.01" and Cell(0.004, 2).text == "0.00"


def test_probe_table_lists_each_group_and_the_chance_levels(tables):
    t = tables.probes
    assert t is not None and t in tables.all()
    rows = [(r.cells[0].text, r.cells[1].text) for r in t.rows]
    assert ("content", "baseline") in rows and ("chance level", "baseline") in rows
    baseline = [r for r in t.rows if r.cells[1].text == "baseline"]
    assert [r.cells[0].text for r in baseline] == ["prosody", "content", "timbre", "chance level"]
    content = next(r for r in baseline if r.cells[0].text == "content")
    assert content.cells[2].value == pytest.approx(0.74) and content.cells[4].value == pytest.approx(0.12)
    chance = next(r for r in baseline if r.cells[0].text == "chance level")
    assert chance.cells[3].value == pytest.approx(0.06)
    assert any("Expected pattern" in n for n in t.notes)


def test_no_probes_no_probe_table(metric_files):
    import json

    for path in metric_files:
        data = json.loads(path.read_text())
        data.pop("disentanglement", None)
        path.write_text(json.dumps(data))
    assert build_tables(collect_from_files(metric_files)).probes is None
