from pathlib import Path

import pytest
import yaml

from ns3.config import ConfigError, load_params
from tests.helpers import PROJECT


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
    p = tmp_path / "params.yaml"
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
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"corpus\.vad: missing"):
        load_params(p)


def test_unknown_profile_lists_known(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'lab'.*paper"):
        load_params(PROJECT / "params.yaml", profile="lab")


def test_relative_paths_resolve_against_params_folder(tmp_path):
    (tmp_path / "params.yaml").write_text((PROJECT / "params.yaml").read_text())
    p = load_params(tmp_path / "params.yaml")
    assert p.resolve("data") == tmp_path / "data"
    assert Path(p.resolve("metrics")).parent == tmp_path
