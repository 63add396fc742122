"""TTS tables from fixture eval_tts.json files: cells, n/a reasons, direction marks, queue commands, rendering."""
from __future__ import annotations

import base64
import copy
import re
from pathlib import Path

import pytest
import yaml
from tts_fixtures import BASELINE, DURATION_L2, NO_CFG, PAPER_BASELINE, PROSODY_V2, write_eval_dir

from evaluation.report import (
    TTS_ABLATIONS,
    build_tts_report,
    build_tts_tables,
    collect_tts_from_files,
    queue_commands,
    read_table_csv,
    reduced_budget_sets,
)
from evaluation.report.reference import PAPER_NO_CFG, PAPER_PROSODY, PAPER_TTS_ABLATIONS
from evaluation.report.table import Table
from evaluation.report.tts_ablations import PER, PER_GT, SIM_O_OURS, SIM_O_PAPER, SIM_R_OURS, UTMOS, WER, run_command
from evaluation.report.tts_tables import DNSMOS, MCD_ACC, MCD_AVG

GEN, RESYN, GT = "ours: generated", "ours: resynthesis (codec ceiling)", "ours: ground truth"
PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture
def files(tmp_path) -> list[Path]:
    docs = {"baseline": BASELINE, "no-cfg": NO_CFG, "duration-l2": DURATION_L2, "prosody-v2": PROSODY_V2,
            "paper-baseline": PAPER_BASELINE}
    return [write_eval_dir(tmp_path / "eval" / name, data) for name, data in docs.items()]


@pytest.fixture
def results(files):
    return collect_tts_from_files(files, profile="mini")


@pytest.fixture
def tables(results):
    return build_tts_tables(results)


def _ablation(tables, key: str) -> Table:
    return next(t for t in tables.ablations if t.key == key)


def test_librispeech_table_places_ours_in_percent_beside_the_ground_truth(tables):
    t = tables.librispeech
    assert [r.cells[0].text for r in t.rows[:3]] == [GEN, RESYN, GT]
    assert t.cell(GEN, SIM_O_OURS).value == pytest.approx(0.78)
    assert t.cell(GEN, SIM_R_OURS).value == pytest.approx(0.80)
    assert t.cell(GEN, PER).value == 64.0 and t.cell(GEN, PER).text == "64.00"  # percent, exactly
    assert [t.cell(s, PER_GT).value for s in (GEN, RESYN, GT)] == [22.3] * 3  # the floor beside every PER
    assert t.cell(RESYN, SIM_O_OURS).value == pytest.approx(0.81)
    assert "60 NFE" in t.cell(GEN, "Source").text
    assert DNSMOS not in t.columns  # no DNSMOS measured or configured: no column


def test_paper_numbers_only_in_the_paper_models_columns(tables):
    t = tables.librispeech
    assert t.cell("NaturalSpeech 3", SIM_O_PAPER, kind="paper").value == 0.67
    assert t.cell("NaturalSpeech 3", "Sim-R (WavLM-TDNN) ↑", kind="paper").value == 0.76
    assert t.cell("NaturalSpeech 3", WER, kind="paper").value == 1.81
    assert t.cell("NaturalSpeech 3", UTMOS, kind="paper").value == 4.30
    assert t.cell("Ground Truth", SIM_O_PAPER, kind="paper").value == 0.68
    assert t.cell("Ground Truth", "Sim-R (WavLM-TDNN) ↑", kind="paper").text == "–"
    for row in (r for r in t.rows if r.kind == "paper"):
        assert row.cells[t.columns.index(SIM_O_OURS)].text == "–"  # Resemblyzer columns never hold the paper's
    # Our WavLM-TDNN column is n/a (not configured), never filled with Resemblyzer's number.
    ours = t.cell(GEN, SIM_O_PAPER)
    assert ours.value is None and "sim_wavlm_tdnn is null" in ours.reason


def test_unavailable_values_say_why_and_are_never_zero(tables):
    t = tables.librispeech
    assert "no Whisper checkpoint" in t.cell(GEN, WER).reason
    utmos = t.cell(GEN, UTMOS)
    assert utmos.text == "n/a" and "models.mos is null" in utmos.reason
    assert "codec-reconstructed prompt" in t.cell(GT, SIM_R_OURS).reason
    for table in tables.all():
        for row in table.rows:
            for cell in row.cells:
                assert cell.value is not None or cell.text in ("–", "n/a")
                assert cell.text != "n/a" or cell.reason


def test_dnsmos_gets_its_own_labelled_column_when_measured(tmp_path):
    data = copy.deepcopy(BASELINE)
    data["protocols"]["librispeech"]["systems"]["generated"]["dnsmos_ovrl"] = 3.1
    t = build_tts_tables(collect_tts_from_files([write_eval_dir(tmp_path, data)])).librispeech
    assert DNSMOS in t.columns and "not UTMOS" in DNSMOS
    assert t.cell(GEN, DNSMOS).value == pytest.approx(3.1)
    assert t.cell(GEN, UTMOS).value is None  # DNSMOS never lands in the UTMOS column
    assert t.cell("NaturalSpeech 3", DNSMOS, kind="paper").text == "–"


def test_valle_protocol_has_our_rows_only(tables):
    t = tables.librispeech_valle
    assert t.key == "tts_librispeech_valle" and "4-10 s" in t.title
    assert {r.kind for r in t.rows} == {"ours"} and t.cell(GEN, SIM_O_OURS).value == pytest.approx(0.76)
    assert any("no numbers on this protocol" in n for n in t.notes)


def test_ravdess_table_per_emotion_and_chance(tables):
    t = tables.ravdess
    assert t.cell(GEN, MCD_AVG).value == pytest.approx(6.1) and t.cell(GEN, MCD_ACC).value == pytest.approx(0.31)
    assert t.cell(GEN, "MCD neutral ↓").value == pytest.approx(6.1)
    assert t.cell(GEN, "MCD surprised ↓").value == pytest.approx(6.8)
    assert t.cell(GT, MCD_AVG).text == "0.00"  # a measured zero, not a missing value
    assert t.cell("chance level", MCD_ACC).value == pytest.approx(1 / 8)
    ns3 = t.find_row("NaturalSpeech 3", kind="paper")
    assert [c.value for c in ns3.cells[2:5]] == [4.28, 0.52, 3.23]
    valle = t.cell("VALL-E", "MCD happy ↓", kind="paper")
    assert valle.value is None and "not transcribed" in valle.reason
    assert t.cell(GT, "MCD calm ↓").value is None and t.cell(GT, "MCD calm ↓").reason


def test_speed_table_60_vs_15_nfe(tables):
    t = tables.speed
    assert t.cell("ours: generated", "NFE").value == 60 and t.cell("ours: generated, one-step", "NFE").value == 15
    assert t.cell("ours: generated, one-step", "RTF ↓").value == pytest.approx(0.2)
    assert t.cell("NaturalSpeech 3 one-step", "RTF ↓", kind="paper").value == 0.067
    assert t.cell("VALL-E", "NFE", kind="paper").text == "–"
    assert any("V100" in n for n in t.notes) and any("3.60x faster" in n for n in t.notes)


def test_direction_marks_follow_the_paper(tables):
    cfg = _ablation(tables, "tts_ablation_cfg")
    assert cfg.cell(SIM_O_OURS, "Ours (-cfg)").value == pytest.approx(0.70)
    assert cfg.cell(SIM_O_OURS, "Ours moves that way").text == "✓"  # 0.78 with cfg > 0.70 without
    assert cfg.cell(SIM_O_OURS, "Expected").text == "NS3 > -cfg"
    assert cfg.cell(WER, "Paper (-cfg)").value == PAPER_NO_CFG.values["wer"][1]
    assert cfg.cell(PER, "Ours moves that way").text == "–"  # the paper's WER ties: not judged
    l2 = _ablation(tables, "tts_ablation_duration_l2")
    assert l2.cell(SIM_O_OURS, "Ours moves that way").text == "✗"  # 0.80 with L2 beats CE: against the paper
    assert l2.cell(PER, "Ours moves that way").text == "✓"  # 64 % with CE < 70 % with L2
    assert l2.cell(PER, "Expected").text == "NS3 < L2"
    assert l2.cell(PER_GT, "Ours (L2)").value == 22.3 and l2.cell(PER_GT, "Ours moves that way").text == "–"
    assert l2.cell(UTMOS, "Paper (NS3)").value == 4.30 and l2.cell(UTMOS, "Ours moves that way").text == "n/a"
    prosody = _ablation(tables, "tts_ablation_prosody_input")
    assert prosody.cell("RAVDESS MCD ↓", "Ours moves that way").text == "✓"  # 6.1 < 6.4
    assert prosody.cell("MCD-Acc ↑", "Ours moves that way").text == "✗"  # 0.31 < 0.35
    assert prosody.cell("RAVDESS MCD ↓", "Paper (Mel 20 Bins)").value == PAPER_PROSODY.values["ravdess_mcd"][1]


def test_missing_variant_names_the_command(tables):
    t = _ablation(tables, "tts_ablation_factorization")
    cell = t.cell(SIM_O_OURS, "Ours (-factorization)")
    assert cell.value is None
    assert "`dvc exp run -S variant=no-factorization -S codec.model.factorized=false`" in cell.reason
    assert t.cell(SIM_O_OURS, "Ours moves that way").text == "n/a"
    assert t.cell(SIM_O_PAPER, "Paper (-factorization)").value == 0.55


def test_variant_found_by_its_settings_and_paper_commands_name_the_profile(tmp_path):
    renamed = copy.deepcopy(NO_CFG)
    renamed["variant"]["name"] = "cfg-off"
    paths = [write_eval_dir(tmp_path / n, d) for n, d in (("b", BASELINE), ("v", renamed))]
    cfg = _ablation(build_tts_tables(collect_tts_from_files(paths)), "tts_ablation_cfg")
    assert cfg.cell(SIM_O_OURS, "Ours (-cfg)").value == pytest.approx(0.70)
    paper = build_tts_tables(collect_tts_from_files([write_eval_dir(tmp_path / "p", PAPER_BASELINE)]))
    reason = _ablation(paper, "tts_ablation_cfg").cell(SIM_O_OURS, "Ours (-cfg)").reason
    assert "profile paper" in reason and "-S profile=paper" in reason


def test_one_profile_per_report(files):
    with pytest.raises(ValueError, match="mix profiles"):
        build_tts_tables(collect_tts_from_files(files))
    paper = build_tts_tables(collect_tts_from_files(files, profile="paper"))
    assert paper.profile == "paper" and paper.librispeech.cell(GEN, PER).value == 5.0
    with pytest.raises(ValueError, match="no evaluated TTS variants"):
        build_tts_tables([])


# ------------------------------------------------------------------------------------------ the queue

def test_queue_commands_spell_yaml_and_pass_budgets_through():
    cmds = {c[5]: c for c in queue_commands()}
    assert cmds["no-cfg"] == ["dvc", "exp", "run", "--queue", "-n", "no-cfg", "-S", "variant=no-cfg",
                              "-S", "diffusion.sample.use_cfg=false"]
    assert cmds["duration-one-step"][-1] == "diffusion.sample.duration_steps=1"
    assert cmds["prosody-v2"][-1] == "codec.model.prosody_input=v2"
    budget = queue_commands(TTS_ABLATIONS[:1], reduced_budget_sets(codec_minutes=5, diffusion_minutes=2.5))
    assert budget[0][-4:] == ["-S", "codec.train.max_minutes=5", "-S", "diffusion.train.max_minutes=2.5"]
    assert queue_commands(TTS_ABLATIONS[:1], ["seed=7"])[0][-2:] == ["-S", "seed=7"]
    with pytest.raises(ValueError, match="own settings"):
        queue_commands(TTS_ABLATIONS[:1], {"codec.model.factorized": True})
    with pytest.raises(ValueError, match="key=value"):
        queue_commands(TTS_ABLATIONS[:1], ["seed"])
    assert run_command(TTS_ABLATIONS[1]) == "dvc exp run -S variant=no-cfg -S diffusion.sample.use_cfg=false"


def test_every_ablation_override_is_a_param_and_every_variant_is_distinct():
    params = yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8"))
    for spec in TTS_ABLATIONS:
        assert next(iter(spec.overrides)) == "variant" and spec.overrides["variant"] == spec.variant
        for key, value in spec.settings.items():
            node = params
            for part in key.split("."):
                assert part in node, f"{spec.variant}: {key} is not in params.yaml"
                node = node[part]
            assert node != value, f"{spec.variant}: {key}={value!r} is already the default"
    assert len({s.variant for s in TTS_ABLATIONS}) == len(TTS_ABLATIONS)
    assert len({s.key for s in TTS_ABLATIONS}) == len(TTS_ABLATIONS)


def test_stated_expectations_agree_with_the_paper_numbers():
    assert {s.paper.name for s in TTS_ABLATIONS} == set(PAPER_TTS_ABLATIONS)
    for spec in TTS_ABLATIONS:
        for m in spec.metrics:
            if m.paper_key is None:
                continue
            ns3, ablated = spec.paper.values[m.paper_key]
            want = None if ns3 == ablated else (ns3 > ablated) == m.higher_is_better
            assert m.expect_baseline_better == want, (spec.variant, m.label)


# ------------------------------------------------------------------------------------------ rendering

def test_report_files_tables_audio_and_figure(results, tmp_path):
    out = tmp_path / "reports" / "tts"
    files = build_tts_report(results, out)
    assert files.markdown == out / "report.md" and not files.warnings
    page = files.html.read_text(encoding="utf-8")
    audio = re.findall(r'<audio controls[^>]*src="([^"]+)"', page)
    assert len(audio) == 3 and all(not a.startswith("/") for a in audio)
    assert "../../eval/baseline/samples/spk1-utt3_generated.wav" in audio
    for link in audio:
        assert (out / link).resolve().is_file()
    assert "a short sentence" in page and "mini profile" in page
    for title in ("paper Tables 1 and 9", "paper Tables 2 and 12", "paper Table 10", "paper Table 3",
                  "paper Table 4", "paper Table 11"):
        assert title in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1 and base64.b64decode(images[0])[:4] == b"\x89PNG"
    tables = build_tts_tables(results)
    assert set(files.csv) == {t.key for t in tables.all()} and len(files.csv) == 11
    rows = {r["System"]: r for r in read_table_csv(files.csv["tts_librispeech"])}
    assert rows[GEN][PER] == 64.0 and "no Whisper checkpoint" in rows[GEN]["unavailable"]
    text = files.markdown.read_text(encoding="utf-8")
    assert "| **ours: generated** |" in text and "](../../eval/baseline/samples/spk1-utt3_prompt.wav)" in text
    assert not list(out.rglob(".*.tmp"))
