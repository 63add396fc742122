"""Report files: CSV round trip, self-contained HTML, markdown table shape, atomic outputs."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from evaluation.report import build_report, build_tables, collect_from_files, read_table_csv, write_report
from evaluation.report.collect import ReconSample


@pytest.fixture
def results(metric_files):
    return collect_from_files(metric_files)


@pytest.fixture
def report(results, tmp_path):
    return build_report(results, tmp_path / "report")


def test_csv_round_trip(results, tmp_path):
    tables = build_tables(results)
    files = write_report(tables, tmp_path / "out")
    assert set(files.csv) == {t.key for t in tables.all()}
    for table in tables.all():
        rows = read_table_csv(files.csv[table.key])
        assert len(rows) == len(table.rows)
        for row, back in zip(table.rows, rows):
            assert back["kind"] == row.kind
            for col, cell in zip(table.columns, row.cells):
                assert back[col] == (float(cell.value) if isinstance(cell.value, (int, float)) else cell.value)
            for col, cell in zip(table.columns, row.cells):
                if cell.reason:
                    assert f"{col}: {cell.reason}" in back["unavailable"]
    codec = {r["System"]: r for r in read_table_csv(files.csv["codec_reconstruction"])}
    assert codec["ns3-facodec [baseline]"]["STOI ↑"] == 0.834  # full precision, not the printed "0.83"
    assert codec["codec2-3.2k"]["PESQ ↑"] is None and "c2enc" in codec["codec2-3.2k"]["unavailable"]


def test_html_is_self_contained_with_audio_links(report, metrics_dir):
    page = report.html.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1
    assert base64.b64decode(images[0]) == (metrics_dir / "spec.png").read_bytes()
    audio = re.findall(r'<audio controls[^>]*src="([^"]+)"', page)
    assert "../metrics/audio/ref.wav" in audio and "../metrics/audio/opus.wav" in audio
    for link in audio:  # relative links resolve from the report folder
        assert (report.html.parent / link).resolve().is_file()
    assert "<sup>" in page and "c2enc not found on PATH" in page
    assert not report.warnings


def test_markdown_table_shape(report):
    text = report.markdown.read_text(encoding="utf-8")
    blocks = re.findall(r"((?:^\|.*\|\n)+)", text, flags=re.M)
    assert len(blocks) == 8  # codec, VC, five ablations and the disentanglement probes
    for block in blocks:
        lines = block.strip().split("\n")
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, block
        assert set(lines[1]) <= {"|", "-"}
    assert "| **ns3-facodec [baseline]** | ours (baseline) | 16 | 200 | 6 | 4.8 | 2.10 | 0.83 | 1.20 | 4.10 |" in text
    assert re.search(r"\| n/a \[\d\] \|", text) and "[1] " in text
    assert "](../metrics/audio/facodec.wav)" in text and "![spectrograms](../metrics/spec.png)" in text


def test_matplotlib_figures_are_saved_and_embedded(results, tmp_path):
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1])
    files = write_report(build_tables(results), tmp_path / "out", figures={"curves": fig})
    assert files.figures["curves"] == tmp_path / "out" / "figures" / "curves.png"
    assert files.figures["curves"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in files.html.read_text(encoding="utf-8")


def test_missing_inputs_become_warnings_and_no_temp_files_remain(results, tmp_path):
    out = tmp_path / "out"
    sample = ReconSample("k", tmp_path / "gone.wav", {"ns3-facodec": tmp_path / "gone2.wav"})
    files = write_report(build_tables(results), out, figures={"spec": tmp_path / "none.png"}, samples=[sample])
    assert any("none.png" in w for w in files.warnings)
    assert sum("gone" in w for w in files.warnings) == 2
    assert not list(out.rglob(".*.tmp"))
    with pytest.raises(ValueError, match="not an image"):
        write_report(build_tables(results), out, figures={"x": tmp_path / "fig.pdf"})


def test_rewrite_replaces_previous_report(results, tmp_path):
    out = tmp_path / "out"
    write_report(build_tables(results[:1]), out)
    files = write_report(build_tables(results), out)
    assert "no_detail" in Path(files.markdown).read_text(encoding="utf-8")


def _markdown_table(text: str, title: str) -> tuple[list[str], dict[str, list[str]]]:
    """(header cells, first cell -> row cells) of the markdown table under ``## title``; bold markers dropped."""
    block = text.split(f"## {title}\n", 1)[1].lstrip("\n").split("\n\n", 1)[0]
    lines = block.splitlines()
    split = [[c.strip().strip("*") for c in ln.strip("|").split(" | ")] for ln in lines]
    header, rows = split[0], split[2:]
    return header, {r[0]: r for r in rows}


def test_vc_report_shows_wavlm_sim_beside_the_paper_and_names_every_similarity_model(tmp_path):
    import copy

    from report_fixtures import BASELINE, write_json

    data = copy.deepcopy(BASELINE)
    data["vc"]["ns3-facodec"].update(sim_o_wavlm=0.58, utmos=3.21)
    data["reconstruction"]["ns3-facodec"]["utmos"] = 3.4
    files = build_report(collect_from_files([write_json(tmp_path / "eval_codec.json", data)]), tmp_path / "report")
    text = files.markdown.read_text(encoding="utf-8")
    header, rows = _markdown_table(text, "Zero-shot voice conversion (paper Table 14 layout)")
    sims = [h for h in header if "Sim" in h]
    assert len(sims) == 4 and all("(WavLM-base-plus-sv)" in h or "(Resemblyzer)" in h for h in sims)
    wavlm, resem = header.index("Sim-O (WavLM-base-plus-sv) ↑"), header.index("Sim-O (Resemblyzer) ↑")
    ours, paper = rows["ns3-facodec"], rows["FACodec"]
    assert ours[wavlm] == "0.58" and ours[resem] == "0.71"
    assert paper[wavlm] == "0.86" and paper[resem] == "–"  # the paper's Sim-O is WavLM's, never Resemblyzer's
    assert ours[header.index("UTMOS ↑")] == "3.21"
    codec_header, codec_rows = _markdown_table(text, "Codec reconstruction (paper Table 13 layout)")
    assert codec_rows["ns3-facodec"][codec_header.index("UTMOS ↑")] == "3.40"


def test_vc_report_without_wavlm_says_why(report):
    text = report.markdown.read_text(encoding="utf-8")
    header, rows = _markdown_table(text, "Zero-shot voice conversion (paper Table 14 layout)")
    cell = rows["ns3-facodec [baseline]"][header.index("Sim-O (WavLM-base-plus-sv) ↑")]
    assert cell.startswith("n/a [")
    assert "sim_o_wavlm not reported" in text
