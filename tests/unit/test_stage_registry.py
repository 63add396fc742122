"""The stage registry is the one place a stage is named: dvc.yaml, the CLI, `ns3 run` and the flows agree with it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.stages import COMMON_DEPS, DATA, STAGE_NAMES, STAGES, dvc_stage, render_dvc_yaml, stage

PROJECT = Path(__file__).resolve().parents[2]


def _dvc_stages() -> dict:
    return yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_declares_exactly_what_the_registry_says():
    declared = _dvc_stages()
    assert list(declared) == list(STAGE_NAMES)  # same stages, same order
    for s in STAGES:
        want, got = dvc_stage(s), declared[s.name]
        for key in ("cmd", "deps", "params", "outs", "metrics"):
            assert got.get(key) == want.get(key), f"dvc.yaml stage {s.name!r} {key} differs from pipelines/stages.py"
        assert set(got) <= {"cmd", "deps", "params", "outs", "metrics"}, f"{s.name}: keys the registry does not know"
    assert yaml.safe_load(render_dvc_yaml()) == yaml.safe_load((PROJECT / "dvc.yaml").read_text())


def test_a_changed_dvc_yaml_is_caught(tmp_path):
    """The comparison above is not vacuous: dropping one dep makes the stage differ."""
    declared = _dvc_stages()
    declared["train_codec"]["deps"].remove("ns3/codec")
    assert declared["train_codec"]["deps"] != dvc_stage(stage("train_codec"))["deps"]


def test_cli_has_one_subcommand_per_stage_in_order():
    from ns3.cli import app

    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    stage_commands = [n for n in names if n in {s.command for s in STAGES}]
    assert stage_commands == [s.command for s in STAGES]
    assert "run" in names


def test_every_stage_flow_is_a_prefect_flow_named_after_its_stage():
    from prefect import Flow

    for s in STAGES:
        f = s.load_flow()
        assert isinstance(f, Flow) and f.name == s.name


def test_pipeline_order_and_unknown_stage_message():
    from pipelines.pipeline import configured_flow

    assert STAGE_NAMES == ("corpus", "shard", "align", "train_codec", "extract_codes", "train_diffusion", "evaluate_codec",
                           "synthesize", "evaluate_tts", "report")
    with pytest.raises(KeyError, match="stages are"):
        configured_flow("train", None)
    assert stage("train-codec") is stage("train_codec")


def test_declared_dependencies_exist_and_params_are_real_knobs():
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for s in STAGES:
        for dep in (*s.deps, *COMMON_DEPS):
            if "${" not in dep:
                assert (PROJECT / dep).exists(), f"{s.name}: dependency {dep} does not exist"
        for key in s.params:
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"{s.name}: param {key} is not in params.yaml"
                node = node[part]
    for profile in ("mini", "ci", "paper"):
        assert (PROJECT / "configs" / f"{profile}.yaml").exists()


def test_data_flows_forward_and_state_stays_outside_outs():
    produced: set[str] = set()
    for s in STAGES:
        for dep in s.deps:
            if dep.startswith(DATA):
                assert dep in produced, f"{s.name} reads {dep} before any stage writes it"
        produced.update(s.outs)
    outs = [o for s in STAGES for o in s.outs]
    for s in STAGES:
        if s.state:
            state = f"{DATA}/state/{s.state}"
            assert not any(state == o or state.startswith(o + "/") for o in outs)
    # Resumable shard sidecars survive `dvc repro`: the shards out is persistent.
    assert f"{DATA}/shards" in stage("shard").persist
