from pathlib import Path

import pytest
import yaml

from ns3.config import ConfigError, load_params
from tests.helpers import PROJECT, make_project


def test_params_yaml_and_profiles_validate():
    mini = load_params(PROJECT / "params.yaml")
    assert mini.profile == "mini" and mini.corpus.source == "synth"
    paper = load_params(PROJECT / "params.yaml", profile="paper")
    assert paper.corpus.source == "librilight" and paper.shard.task_runner == "dask"
    # The overlay only changes what it lists.
    assert paper.seed == mini.seed and paper.corpus.synth == mini.corpus.synth


def test_unknown_key_is_named(tmp_path):
    data = yaml.safe_load((PROJECT / "params.yaml").read_text())
    data["shard"]["utts_per_shrad"] = 3
    p = make_project(tmp_path) / "params.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"shard\.utts_per_shrad: unknown key"):
        load_params(p)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"shard.utts_per_shard": 0}, r"shard\.utts_per_shard"),
        ({"shard.task_runner": "mpi"}, r"shard\.task_runner"),
        ({"corpus.max_duration": 0.5}, r"max_duration must be > min_duration"),
        ({"corpus.source": "librilight"}, r"corpus\.root is required"),
        ({"corpus.synth.max_words": 2}, r"max_words must be >= min_words"),
    ],
)
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_params(PROJECT / "params.yaml", overrides=override)


def test_missing_key_is_named(tmp_path):
    data = yaml.safe_load((PROJECT / "params.yaml").read_text())
    del data["corpus"]["vad"]
    p = make_project(tmp_path) / "params.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"corpus\.vad: missing"):
        load_params(p)


def test_unknown_profile_lists_known(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'lab'.*paper"):
        load_params(PROJECT / "params.yaml", profile="lab")


def test_relative_paths_resolve_against_params_folder(tmp_path):
    p = load_params(make_project(tmp_path) / "params.yaml")
    assert p.resolve("data") == tmp_path / "data"
    assert Path(p.resolve("metrics")).parent == tmp_path


def test_profile_override_applies_the_overlay_then_the_other_overrides():
    paper = load_params(PROJECT / "params.yaml", overrides={"profile": "paper", "shard.workers": 3})
    assert paper.profile == "paper" and paper.corpus.source == "librilight" and paper.codec.model.size == "paper"
    assert paper.shard.workers == 3  # the overlay's 64, then the override on top
    assert paper == load_params(PROJECT / "params.yaml", profile="paper", overrides={"shard.workers": 3})
    same = load_params(PROJECT / "params.yaml", profile="paper", overrides={"profile": "paper"})
    assert same.corpus.source == "librilight"
    with pytest.raises(ConfigError, match=r"--profile ci and --set profile=paper disagree"):
        load_params(PROJECT / "params.yaml", profile="ci", overrides={"profile": "paper"})
    with pytest.raises(ConfigError, match=r"profile: expected a profile name"):
        load_params(PROJECT / "params.yaml", overrides={"profile": 3})


def test_the_default_mini_profile_applies_its_overlay_like_any_other(tmp_path):
    root = make_project(tmp_path)
    (root / "configs" / "mini.yaml").write_text(yaml.safe_dump({"seed": 7, "shard": {"workers": 5}}))
    p = load_params(root / "params.yaml")
    assert p.profile == "mini" and p.seed == 7 and p.shard.workers == 5
    assert load_params(root / "params.yaml", overrides={"seed": 9}).seed == 9  # overrides still win
    (root / "configs" / "mini.yaml").unlink()
    with pytest.raises(ConfigError, match=r"unknown profile 'mini'.*mini\.yaml"):
        load_params(root / "params.yaml")


@pytest.mark.parametrize(
    "override, message",
    [
        ({"seed.x": 1}, r"seed\.x: seed is a value \(1234\), not a section"),
        ({"align.aligner.dilations.0": 2}, r"align\.aligner\.dilations\.0: align\.aligner\.dilations is a value"),
        ({"corpus.root.path": "/x"}, r"corpus\.root\.path: corpus\.root is a value \(None\)"),
        ({"shard..workers": 2}, r"'shard\.\.workers': not a dotted key"),
        ({"shard.workers": "four"}, r"shard\.workers: Input should be a valid integer"),
        ({"shard.splits": 2}, r"shard\.splits: Input should be a valid dictionary"),
        ({"shard.nope.deeper": 2}, r"shard\.nope: unknown key"),
    ],
)
def test_bad_override_keys_and_types_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_params(PROJECT / "params.yaml", overrides=override)


@pytest.mark.parametrize("key", ["valid_speakers", "test_speakers"])
@pytest.mark.parametrize("value", [1.5, 2.25, float("inf"), 0, -1])
def test_speaker_splits_are_a_fraction_or_a_whole_count(key, value):
    with pytest.raises(ConfigError, match=rf"shard\.splits\.{key}: .*fraction of speakers in \(0, 1\) or a whole"):
        load_params(PROJECT / "params.yaml", overrides={f"shard.splits.{key}": value})


@pytest.mark.parametrize("value", [0.25, 1, 3.0])
def test_speaker_splits_accept_fractions_and_counts(value):
    p = load_params(PROJECT / "params.yaml", overrides={"shard.splits.valid_speakers": value})
    assert p.shard.splits.valid_speakers == value


@pytest.mark.parametrize(
    "official",
    [{"encoder": "enc.bin"}, {"decoder": "dec.bin"}, {"redecoder": "redec.bin"}, {"decoder": "d", "redecoder": "r"}],
)
def test_official_encoder_and_decoder_go_together(official):
    overrides = {f"codec.official.{k}": v for k, v in official.items()}
    with pytest.raises(ConfigError, match=r"codec\.official\.encoder and codec\.official\.decoder"):
        load_params(PROJECT / "params.yaml", overrides=overrides)
    both = {"codec.official.encoder": "e", "codec.official.decoder": "d"}
    assert load_params(PROJECT / "params.yaml", overrides={**both, **overrides}).codec.official.decoder


def test_cli_set_profile_and_bad_keys_exit_2_naming_the_key():
    from typer.testing import CliRunner

    from ns3.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["--params", str(PROJECT / "params.yaml"), "--set", "profile=paper", "--set",
                             "shard.workers=3", "config"])
    assert ok.exit_code == 0, ok.output
    shown = yaml.safe_load(ok.stdout)
    assert shown["profile"] == "paper" and shown["corpus"]["source"] == "librilight" and shown["shard"]["workers"] == 3
    for item, key in [("seed.x=1", "seed.x"), ("shard.splits.valid_speakers=1.5", "shard.splits.valid_speakers"),
                      ("codec.official.encoder=enc.bin", "codec.official.decoder"),
                      ("shard.workers=[1", "shard.workers")]:
        bad = runner.invoke(app, ["--params", str(PROJECT / "params.yaml"), "--set", item, "config"])
        assert bad.exit_code == 2 and key in bad.output, (item, bad.output)
        assert bad.exception is None or isinstance(bad.exception, SystemExit)  # no traceback


def test_unreachable_codec_knobs_are_params_with_the_codecs_defaults():
    from ns3.builders import codec_hparams
    from ns3.codec.hparams import FACodecHParams

    for profile in ("mini", "paper"):
        m = load_params(PROJECT / "params.yaml", profile=profile).codec.model
        preset = FACodecHParams.mini() if m.size == "mini" else FACodecHParams.paper()
        hp = codec_hparams(m, num_phones=10, num_speakers=4)
        for knob in ("grl_prosody_phone", "grl_content_f0", "grl_detail_phone", "grl_detail_f0", "codebook_restart_decay"):
            assert getattr(hp, knob) == getattr(preset, knob) == getattr(m, knob)
    with pytest.raises(ConfigError, match=r"codec\.model\.codebook_restart_decay"):
        load_params(PROJECT / "params.yaml", overrides={"codec.model.codebook_restart_decay": 1.0})
