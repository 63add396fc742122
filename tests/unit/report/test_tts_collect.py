"""Collecting TTS variants from eval_tts.json files and from a temporary MLflow store."""
from __future__ import annotations

import copy
import json
import uuid

import pytest
from tts_fixtures import BASELINE, NO_CFG, PAPER_BASELINE, write_eval_dir

from evaluation.report import ReportInputError, build_tts_tables, collect_tts_from_files, collect_tts_from_mlflow
from evaluation.report.tts_ablations import SIM_O_OURS
from evaluation.report.tts_collect import ProtocolResult, TTSResult


def test_files_parse_numbers_settings_and_samples(tmp_path):
    path = write_eval_dir(tmp_path / "eval", BASELINE)
    [r] = collect_tts_from_files([path])
    assert (r.name, r.profile, r.source) == ("baseline", "mini", str(path))
    assert r.value("librispeech", "generated", "sim_o") == pytest.approx(0.78)
    assert r.value("librispeech", "generated", "wer") is None
    assert r.value("ravdess", "generated", "mcd/happy") == pytest.approx(6.3)
    assert r.protocols["librispeech"].items == 16 and r.protocols["librispeech"].list_path == "lists/librispeech.jsonl"
    assert r.setting("diffusion.sample.use_cfg") is True
    assert r.setting("diffusion.model.duration_objective") == "ce"
    assert r.setting("codec.model.factorized") is True and r.setting("codec.model.unknown") is None
    assert r.models["sim"] == "Resemblyzer" and r.models["wer"] is None
    sample = r.samples[0]
    assert sample.protocol == "librispeech" and sample.text == "a short sentence"
    assert sample.generated == path.parent.resolve() / "samples" / "spk1-utt3_generated.wav"
    assert sample.prompt.is_file()


def test_profile_filter_and_duplicate_variants(tmp_path):
    paths = [write_eval_dir(tmp_path / n, d) for n, d in (("b", BASELINE), ("c", NO_CFG), ("p", PAPER_BASELINE))]
    assert [r.name for r in collect_tts_from_files(paths, profile="mini")] == ["baseline", "no-cfg"]
    assert [(r.name, r.profile) for r in collect_tts_from_files(paths, profile="paper")] == [("baseline", "paper")]
    assert collect_tts_from_files(paths, profile="ci") == []
    assert len(collect_tts_from_files(paths)) == 3  # same name, different profiles: both kept, never mixed later
    twice = write_eval_dir(tmp_path / "again", BASELINE)
    with pytest.raises(ReportInputError, match="given twice"):
        collect_tts_from_files([paths[0], twice])


def test_reasons_prefer_the_specific_cause():
    r = TTSResult("v", "mini", "x.json", models={"mos": None, "sim": "Resemblyzer"},
                  protocols={"librispeech": ProtocolResult("librispeech", {"generated": {"utmos": None, "sim_o": None}},
                                                           {"generated/sim_o": "prompt too short"})})
    assert r.reason("librispeech", "generated", "sim_o") == "prompt too short"
    assert "models.mos is null" in r.reason("librispeech", "generated", "utmos")
    assert "protocol ravdess not evaluated" in r.reason("ravdess", "generated", "mcd")
    assert "resynthesis not evaluated on librispeech" in r.reason("librispeech", "resynthesis", "sim_o")
    assert "rtf not reported for librispeech/generated" in r.reason("librispeech", "generated", "rtf")


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("variant"), "variant.name"),
    (lambda d: d.pop("profile"), "'profile'"),
    (lambda d: d["protocols"]["librispeech"]["systems"]["generated"].update(sim_o="0.7"),
     r"protocols\.librispeech\.systems\.generated\.sim_o"),
    (lambda d: d["protocols"]["ravdess"].pop("systems"), r"protocols\.ravdess: expected an object with 'systems'"),
    (lambda d: d["samples"][0].pop("prompt"), r"samples\[0\]: missing \['prompt'\]"),
    (lambda d: d.update(models=["Resemblyzer"]), "models: expected an object"),
    (lambda d: d["protocols"]["librispeech"].update(reasons=[1]), r"protocols\.librispeech\.reasons"),
])
def test_bad_files_name_the_file_and_key(tmp_path, mutate, match):
    data = copy.deepcopy(BASELINE)
    mutate(data)
    path = write_eval_dir(tmp_path / "bad", data)
    with pytest.raises(ReportInputError, match=match) as err:
        collect_tts_from_files([path])
    assert str(path) in str(err.value)


def test_missing_or_corrupt_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="evaluate_tts"):
        collect_tts_from_files([tmp_path / "none.json"])
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ReportInputError, match="broken.json"):
        collect_tts_from_files([tmp_path / "broken.json"])


# --------------------------------------------------------------------------------------------- MLflow

def _log_run(client, exp_id: str, variant: str, profile: str, start: int, metrics: dict, params: dict | None = None,
             status: str = "FINISHED", artifact: dict | None = None, audio: list | None = None) -> str:
    tags = {"ns3.stage": "evaluate_tts", "ns3.variant": variant, "ns3.profile": profile}
    rid = client.create_run(exp_id, start_time=start, tags=tags).info.run_id
    for k, v in metrics.items():
        client.log_metric(rid, k, v, timestamp=start, step=0)
    for k, v in (params or {}).items():
        client.log_param(rid, k, v)
    if artifact is not None:
        client.log_dict(rid, artifact, "eval_tts.json")
    for path in audio or []:
        client.log_artifact(rid, str(path), "samples")
    client.set_terminated(rid, status=status, end_time=start + 1)
    return rid


@pytest.fixture(scope="module")
def mlflow_store(mlflow_uri, tmp_path_factory):
    """evaluate_tts runs: an old and the newest mini baseline (with the JSON and its audio), a failed newer one,
    a paper-profile run, and a mini no-cfg run with metrics and params only."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = f"tts-report-{uuid.uuid4().hex[:8]}"
    exp = client.create_experiment(experiment, artifact_location=tmp_path_factory.mktemp("mlartifacts").as_uri())
    local = write_eval_dir(tmp_path_factory.mktemp("eval"), BASELINE).parent
    audio = sorted((local / "samples").iterdir())
    _log_run(client, exp, "baseline", "mini", 1_000, {"tts/librispeech/generated/sim_o": 0.1})
    ids = {"baseline": _log_run(client, exp, "baseline", "mini", 2_000, {"tts/librispeech/generated/sim_o": 0.78},
                                artifact=BASELINE, audio=audio)}
    _log_run(client, exp, "baseline", "mini", 3_000, {"tts/librispeech/generated/sim_o": 0.2}, status="FAILED")
    ids["paper"] = _log_run(client, exp, "baseline", "paper", 4_000, {"tts/librispeech/generated/sim_o": 0.55})
    ids["no-cfg"] = _log_run(
        client, exp, "no-cfg", "mini", 2_500,
        {"tts/librispeech/generated/sim_o": 0.70, "tts/librispeech/generated/per": 0.66,
         "tts/librispeech/generated/wer": float("nan"), "tts/ravdess/generated/mcd/happy": 6.2},
        {"sample.use_cfg": "False", "diffusion.sample.steps": "8", "codec_hparams.prosody_input": "v1"})
    return mlflow_uri, experiment, ids, client


def test_mlflow_latest_finished_run_per_variant_of_one_profile(mlflow_store):
    uri, experiment, ids, _ = mlflow_store
    results = {r.name: r for r in collect_tts_from_mlflow(uri, experiment, "mini")}
    assert set(results) == {"baseline", "no-cfg"}
    base = results["baseline"]
    assert base.source == f"mlflow run {ids['baseline']}" and base.profile == "mini"
    assert base.protocols["librispeech"].reasons["generated/wer"].startswith("no Whisper")  # from the artifact
    assert base.samples[0].generated.is_file()  # sample paths resolve inside the run's artifacts
    cfg = results["no-cfg"]  # no artifact: rebuilt from metrics and params
    assert cfg.value("librispeech", "generated", "sim_o") == pytest.approx(0.70)
    assert cfg.value("librispeech", "generated", "wer") is None  # NaN is unavailable, not a number
    assert cfg.value("ravdess", "generated", "mcd/happy") == pytest.approx(6.2)
    assert cfg.setting("diffusion.sample.use_cfg") is False and cfg.setting("diffusion.sample.steps") == 8
    assert cfg.setting("codec.model.prosody_input") == "v1"
    [paper] = collect_tts_from_mlflow(uri, experiment, "paper")
    assert paper.source == f"mlflow run {ids['paper']}"
    assert paper.value("librispeech", "generated", "sim_o") == pytest.approx(0.55)


def test_mlflow_results_feed_the_tables(mlflow_store):
    uri, experiment, _, _ = mlflow_store
    tables = build_tts_tables(collect_tts_from_mlflow(uri, experiment, "mini"))
    cfg = next(t for t in tables.ablations if t.key == "tts_ablation_cfg")
    assert cfg.cell(SIM_O_OURS, "Ours (-cfg)").value == pytest.approx(0.70)
    assert cfg.cell(SIM_O_OURS, "Ours moves that way").text == "✓"
    assert "mlflow run" in cfg.cell("WER (%) ↓", "Ours (-cfg)").reason  # NaN metric: n/a naming the run


def test_mlflow_unfinished_runs_missing_experiment_and_profile_mismatch(mlflow_store):
    uri, experiment, _, client = mlflow_store
    results = {r.name: r for r in collect_tts_from_mlflow(uri, experiment, "mini", finished_only=False)}
    assert results["baseline"].value("librispeech", "generated", "sim_o") == pytest.approx(0.2)
    assert collect_tts_from_mlflow(uri, experiment, "ci") == []
    with pytest.raises(ReportInputError, match="'nope' not found"):
        collect_tts_from_mlflow(uri, "nope", "mini")
    other = f"tts-mismatch-{uuid.uuid4().hex[:8]}"
    exp = client.create_experiment(other)
    _log_run(client, exp, "baseline", "ci", 1_000, {}, artifact=json.loads(json.dumps(BASELINE)))
    with pytest.raises(ReportInputError, match="ns3.profile=ci"):
        collect_tts_from_mlflow(uri, other, "ci")


def test_a_missing_wavlm_column_names_its_own_model_not_resemblyzers():
    """sim_o_wavlm also starts with "sim_": its reason must name models.sim_wavlm, and Resemblyzer's own columns
    (configured) must not be reported as unconfigured."""
    res = TTSResult(name="baseline", profile="mini", source="x.json",
                    models={"sim": "Resemblyzer", "sim_wavlm": None, "sim_wavlm_tdnn": None},
                    protocols={"librispeech": ProtocolResult("librispeech", systems={"generated": {"sim_o": 0.8}})})
    assert "models.sim_wavlm is null" in res.reason("librispeech", "generated", "sim_o_wavlm")
    assert "models.sim_wavlm_tdnn is null" in res.reason("librispeech", "generated", "sim_r_wavlm_tdnn")
    assert "no model configured" not in res.reason("librispeech", "generated", "sim_r")
