"""``ns3 compare`` end to end: MLflow runs -> the dashboard page -> served on loopback -> headless Chromium.

The browser checks what a reader sees: a row per variant with the metric columns and the deltas, every plot
decoded, no console errors, no request leaving the loopback server. The screenshot is kept in the test's
folder (and copied to $NS3_TEST_ARTIFACTS when set) so the page can be looked at.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from tests.servers import free_port, loopback_server

CHROMIUM = Path("/usr/bin/chromium")
# The flags of a quiet, offline headless Chromium; Playwright adds --headless itself (headless=True).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
EXPERIMENT = f"dashboard-{uuid.uuid4().hex[:8]}"
SIM_O, PER = "tts/librispeech/generated/sim_o", "tts/librispeech/generated/per"
# Against the baseline: -cfg lowers Sim-O (✓); L2 durations raise Sim-O (✗) and PER (✓); Mel-20 prosody raises
# the RAVDESS MCD (✓).
TTS_RUNS = {
    "baseline": {SIM_O: 0.78, PER: 0.64, "tts/ravdess/generated/mcd": 6.1, "tts/ravdess/generated/mcd_acc": 0.31},
    "no-cfg": {SIM_O: 0.70, PER: 0.66, "tts/ravdess/generated/mcd": 6.0, "tts/ravdess/generated/mcd_acc": 0.30},
    "duration-l2": {SIM_O: 0.80, PER: 0.70, "tts/ravdess/generated/mcd": 6.2, "tts/ravdess/generated/mcd_acc": 0.32},
    "prosody-v2": {SIM_O: 0.77, PER: 0.65, "tts/ravdess/generated/mcd": 6.4, "tts/ravdess/generated/mcd_acc": 0.35},
}
# Which variants retrain what (as `ns3 ablations` does): the codec for prosody-v2, the diffusion for duration-l2.
TRAIN_RUNS = {("baseline", "train_codec"): 1.0, ("prosody-v2", "train_codec"): 1.3,
              ("baseline", "train_diffusion"): 1.0, ("duration-l2", "train_diffusion"): 0.8}


T0 = 1_767_000_000_000  # ms since the epoch, as MLflow stores start times; minutes below are offsets from it


def _run(client, exp: str, variant: str, stage: str, minute: int, profile: str = "mini") -> str:
    tags = {"ns3.stage": stage, "ns3.variant": variant, "ns3.profile": profile}
    return client.create_run(exp, start_time=T0 + minute * 60_000, tags=tags, run_name=stage).info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """evaluate_tts runs of four variants (plus an older baseline and a paper-profile one) and train runs with a
    short loss history, in the session's temporary SQLite store."""
    from mlflow.tracking import MlflowClient

    uri = os.environ["MLFLOW_TRACKING_URI"]
    assert "ns3-tests-" in uri, "tests must never write the project's MLflow store"
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(EXPERIMENT, artifact_location=tmp_path_factory.mktemp("art").as_uri())
    ids = []
    for i, (variant, metrics) in enumerate(TTS_RUNS.items()):
        rid = _run(client, exp, variant, "evaluate_tts", 100 + i)
        for key, value in metrics.items():
            client.log_metric(rid, key, value, timestamp=T0, step=0)
        ids.append(rid)
    stale = _run(client, exp, "baseline", "evaluate_tts", 50)  # older: must not be the one compared
    paper = _run(client, exp, "no-cfg", "evaluate_tts", 200, profile="paper")  # newer, other profile
    for rid in (stale, paper):
        client.log_metric(rid, SIM_O, 0.01, timestamp=T0, step=0)
        ids.append(rid)
    for (variant, stage), scale in TRAIN_RUNS.items():
        rid = _run(client, exp, variant, stage, 10)
        keys = ("codec/rec", "codec/phone", "codec/grad_norm") if stage == "train_codec" else (
            "diffusion/total", "diffusion/frame_ce", "diffusion/grad_norm")
        for step in range(1, 6):
            for j, key in enumerate(keys):
                client.log_metric(rid, key, scale * (3.0 + j) / step, timestamp=T0 + step, step=step * 10)
        ids.append(rid)
    for rid in ids:
        client.set_terminated(rid, "FINISHED", end_time=T0 + 300 * 60_000)
    return uri


def _table(tables: list[dict], key: str) -> dict:
    return next(t for t in tables if t["id"] == key)


# What the reader sees, read out of the rendered DOM: each table under its heading, and every image's decode.
READ_PAGE = """() => ({
  tables: [...document.querySelectorAll('h2[id], h3[id]')].filter(h => h.nextElementSibling?.tagName === 'TABLE').map(h => {
    const rows = [...h.nextElementSibling.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.innerText.trim()));
    return {id: h.id, header: rows[0], rows: rows.slice(1)};
  }),
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,
                                          shown: i.getBoundingClientRect().width})),
})"""


@pytest.mark.server
def test_dashboard_renders_in_chromium(store, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[dev]')")
    from typer.testing import CliRunner

    from ns3.cli import app

    site = tmp_path / "site"
    args = ["compare", "--experiment", EXPERIMENT, "--profile", "mini", "--tag", "ns3.stage=evaluate_tts",
            "--baseline", "baseline", "--tracking-uri", store, "-o", str(site / "index.html")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    assert written["variants"] == ["baseline", "duration-l2", "no-cfg", "prosody-v2"]
    assert set(written["runs"]) >= {"baseline/train_codec", "duration-l2/train_diffusion"}

    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)]
    with loopback_server(argv, port, tmp_path / "http.log") as url:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
                viewport={"width": 1400, "height": 900})
            try:
                page = browser.new_page()
                errors: list[str] = []
                elsewhere: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("request", lambda r: None if r.url.startswith((url, "data:")) else elsewhere.append(r.url))
                page.goto(f"{url}/index.html", wait_until="load")
                seen = page.evaluate(READ_PAGE)
                shot = tmp_path / "dashboard.png"
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
    if os.environ.get("NS3_TEST_ARTIFACTS"):
        keep = Path(os.environ["NS3_TEST_ARTIFACTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "dashboard.png")

    assert errors == [] and elsewhere == []
    values = _table(seen["tables"], "values-tts-librispeech-generated")
    assert values["header"][0] == "variant" and SIM_O in values["header"] and PER in values["header"]
    assert [r[0] for r in values["rows"]] == ["baseline", "duration-l2", "no-cfg", "prosody-v2"]
    sim = values["header"].index(SIM_O)
    assert values["rows"][0][sim] == "0.780"  # the newest mini baseline, not the stale or the paper-profile run
    deltas = _table(seen["tables"], "deltas-tts-librispeech-generated")
    by_variant = {r[0]: dict(zip(deltas["header"], r)) for r in deltas["rows"]}
    assert set(by_variant) == {"duration-l2", "no-cfg", "prosody-v2"}
    assert by_variant["no-cfg"][SIM_O] == "-0.080 ✓" and by_variant["duration-l2"][SIM_O] == "+0.020 ✗"
    assert by_variant["duration-l2"][PER] == "+0.060 ✓"
    ravdess = {r[0]: dict(zip(t["header"], r)) for t in [_table(seen["tables"], "deltas-tts-ravdess-generated")]
               for r in t["rows"]}
    assert ravdess["prosody-v2"]["tts/ravdess/generated/mcd"] == "+0.300 ✓"
    runs = _table(seen["tables"], "runs")
    assert {r[1] for r in runs["rows"]} == {"evaluate_tts", "train_codec", "train_diffusion"}
    # two bar charts (librispeech, ravdess) and the codec and diffusion training curves, each decoded and shown
    images = seen["images"]
    assert len(images) == 4 and {i["alt"] for i in images} >= {"curves-train_codec", "curves-train_diffusion"}
    assert all(i["complete"] and i["width"] > 0 and i["shown"] > 0 for i in images), images
    assert shot.stat().st_size > 10_000


def test_cli_errors_name_the_cause(store):
    from typer.testing import CliRunner

    from ns3.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["compare", "--experiment", "no-such-experiment", "--tracking-uri", store])
    assert missing.exit_code == 1 and "'no-such-experiment' not found" in missing.output
    other = runner.invoke(app, ["compare", "--experiment", EXPERIMENT, "--tracking-uri", store, "--profile", "ci"])
    assert other.exit_code == 1 and "profile ci" in other.output
    clash = runner.invoke(app, ["compare", "--experiment", EXPERIMENT, "--profile", "mini", "--tag", "ns3.profile=paper"])
    assert clash.exit_code == 2 and "disagree" in clash.output


def test_report_stage_builds_the_page_its_reports_link_to(store, tmp_path):
    from evaluation.report.render import DASHBOARD_PAGE
    from ns3.config import load_params
    from pipelines.report_flow import compare_dashboard

    reports = tmp_path / "reports"
    p = load_params(None, "mini", {"paths.reports": str(reports), "tracking.experiment": EXPERIMENT})
    got = compare_dashboard(p)
    assert got["dashboard"] == str(reports / DASHBOARD_PAGE) and (reports / DASHBOARD_PAGE).is_file()
    assert got["dashboard_variants"] == ["baseline", "duration-l2", "no-cfg", "prosody-v2"]
    assert (reports / "compare" / "compare.csv").is_file()
    off = load_params(None, "mini", {"paths.reports": str(tmp_path / "off"), "tracking.experiment": EXPERIMENT,
                                     "report.dashboard": False})
    assert compare_dashboard(off) == {"dashboard": None} and not (tmp_path / "off").exists()


def test_report_flow_links_both_reports_to_the_dashboard(store, tmp_path, prefect_harness):
    from evaluation.report.render import DASHBOARD_PAGE
    from ns3.config import load_params
    from pipelines.report_flow import report_flow
    from tests.unit.report.report_fixtures import BASELINE, write_json

    data, reports = tmp_path / "data", tmp_path / "reports"
    write_json(data / "eval_codec" / "eval_codec.json", BASELINE)  # this variant's codec evaluation
    p = load_params(None, "mini", {"paths.data": str(data), "paths.reports": str(reports),
                                   "tracking.experiment": EXPERIMENT})
    result = report_flow(p)
    assert result["dashboard"] == str(reports / DASHBOARD_PAGE)
    for report in ("codec", "tts"):  # built after the page, so each links to it
        assert 'href="../compare/index.html"' in (reports / report / "report.html").read_text()
        assert "(../compare/index.html)" in (reports / report / "report.md").read_text()
