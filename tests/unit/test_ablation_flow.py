"""Which stages an ablation re-runs, and how it shares the rest with its baseline."""
from __future__ import annotations

from pipelines.ablation_flow import first_stage, link_upstream, stages_from


def test_each_override_re_runs_from_the_first_stage_it_changes():
    assert first_stage({"codec.model.factorized": False}) == "train_codec"
    assert first_stage({"diffusion.model.duration_objective": "l2"}) == "train_diffusion"
    assert first_stage({"diffusion.sample.use_cfg": False}) == "synthesize"
    assert first_stage({"diffusion.sample.use_cfg": False, "codec.train.max_steps": 4}) == "train_codec"
    assert first_stage({"variant": "x"}) is None and first_stage({}) is None
    assert stages_from("train_diffusion") == ["train_diffusion", "synthesize", "evaluate_tts"]
    assert stages_from("train_codec")[:2] == ["train_codec", "extract_codes"]


def test_upstream_outputs_are_linked_and_later_ones_left_to_rebuild(tmp_path):
    src = tmp_path / "base"
    for name in ("raw", "shards", "align", "codec", "codes", "diffusion", "tts"):
        (src / name).mkdir(parents=True)
    dst = tmp_path / "variant"
    link_upstream(src, dst, "train_diffusion")
    assert sorted(p.name for p in dst.iterdir()) == ["align", "codec", "codes", "raw", "shards"]
    assert all((dst / n).is_symlink() and (dst / n).resolve() == (src / n).resolve() for n in ("codec", "codes"))
    link_upstream(src, dst, "synthesize")  # idempotent, and a later start links more
    assert (dst / "diffusion").is_symlink() and not (dst / "tts").exists()


def test_dvc_queue_commands_start_from_a_committed_baseline():
    """`ns3 ablations --dvc`: the baseline runs in the workspace and is committed before any variant is queued,
    so queued variants start from its dvc.lock; every variant is queued under its own name with the budgets."""
    from typer.testing import CliRunner

    from evaluation.report.tts_ablations import TTS_ABLATIONS
    from ns3.cli import app

    out = CliRunner().invoke(app, ["ablations", "--dvc", "--codec-steps", "7"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("dvc exp run -n baseline") and "--queue" not in lines[0]
    assert "git commit" in lines[1] and "dvc.lock" in lines[1]
    queued = [ln for ln in lines if ln.startswith("dvc exp run --queue")]
    assert [ln.split(" -n ")[1].split()[0] for ln in queued] == [s.variant for s in TTS_ABLATIONS]
    assert all("codec.train.max_steps=7" in ln and "tracking.experiment=ns3-ablations" in ln for ln in queued)
    assert lines[-1].startswith("dvc queue start")
