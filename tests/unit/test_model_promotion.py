"""The champion decision (a pure function of scores), model URIs, test-set fingerprints and the registry params."""
from __future__ import annotations

import json
import math
import typing

import pytest

from ns3.model_registry import CHALLENGER, CHAMPION, RULES, Scores, decide, is_model_uri, resolve_checkpoint
from ns3.model_registry.fingerprints import code_checksums, codec_test_set, shard_checksums, tts_test_set
from ns3.model_registry.resolve import parse_model_uri

SIM, PER = "tts/librispeech/generated/sim_o", "tts/librispeech/generated/per"
CRITERIA = {SIM: "higher", PER: "not_higher"}
CHAMP = Scores("1", "T", {SIM: 0.80, PER: 0.30})


def test_no_champion_makes_the_first_evaluated_version_champion():
    d = decide(CRITERIA, Scores("1", "T", {SIM: 0.1}), None)
    assert d.promoted and d.alias == CHAMPION and d.champion_version is None and "no champion" in d.reason


def test_better_on_every_rule_takes_the_alias_and_records_the_margins():
    d = decide(CRITERIA, Scores("2", "T", {SIM: 0.85, PER: 0.25}), CHAMP)
    assert d.alias == CHAMPION and d.champion_version == "1"
    by = {c.metric: c for c in d.checks}
    assert by[SIM].margin == pytest.approx(0.05) and by[PER].margin == pytest.approx(0.05)  # > 0 = better, either way
    assert all(c.passed for c in d.checks) and "beats champion v1" in d.reason and SIM in d.reason


def test_worse_stays_challenger_and_the_reason_names_the_metric_and_values():
    d = decide(CRITERIA, Scores("3", "T", {SIM: 0.85, PER: 0.40}), CHAMP)
    assert d.alias == CHALLENGER and not d.promoted
    assert PER in d.reason and "0.4 vs 0.3" in d.reason and SIM not in d.reason  # only what failed
    assert {c.metric: c.passed for c in d.checks} == {SIM: True, PER: False}
    assert {c.metric: c.margin for c in d.checks}[PER] == pytest.approx(-0.10)


def test_a_tie_fails_a_must_improve_rule_and_passes_a_not_worse_rule():
    tie = Scores("2", "T", dict(CHAMP.metrics))
    d = decide(CRITERIA, tie, CHAMP)
    assert d.alias == CHALLENGER and "sim_o" in d.reason
    assert {c.metric: c.passed for c in d.checks} == {SIM: False, PER: True}
    assert decide({PER: "not_higher", SIM: "not_lower"}, tie, CHAMP).alias == CHAMPION


@pytest.mark.parametrize("candidate, champion, side", [
    ({SIM: 0.9}, {SIM: 0.8, PER: 0.3}, "candidate"),          # the candidate's evaluation lacks a metric
    ({SIM: 0.9, PER: 0.1}, {SIM: 0.8}, "champion"),           # the champion was scored before a rule was added
    ({SIM: 0.9, PER: math.nan}, {SIM: 0.8, PER: 0.3}, "candidate"),  # NaN is missing, not "not higher"
])
def test_a_missing_metric_fails_its_rule_instead_of_being_skipped(candidate, champion, side):
    d = decide(CRITERIA, Scores("2", "T", candidate), Scores("1", "T", champion))
    assert d.alias == CHALLENGER and f"{PER} is missing for the {side}" in d.reason
    assert [c.margin for c in d.checks if c.metric == PER] == [None]


def test_scores_on_another_test_set_are_never_compared():
    d = decide(CRITERIA, Scores("2", "U", {SIM: 0.99, PER: 0.0}), CHAMP)
    assert d.alias == CHALLENGER and d.checks == () and "not comparable" in d.reason
    assert "test set T" in d.reason and "U" in d.reason and d.test_set == "U"


def test_the_champion_re_evaluated_keeps_its_alias():
    d = decide(CRITERIA, Scores("1", "U", {SIM: 0.1, PER: 0.9}), CHAMP)
    assert d.alias == CHAMPION and "already the champion" in d.reason


def test_bad_criteria_are_errors():
    with pytest.raises(ValueError, match="no promotion criteria"):
        decide({}, Scores("2", "T"), CHAMP)
    with pytest.raises(ValueError, match="unknown promotion rule 'better'"):
        decide({SIM: "better"}, Scores("2", "T"), None)


def test_the_decision_serialises_for_the_run_and_the_version_tags():
    d = decide(CRITERIA, Scores("2", "T", {SIM: 0.85, PER: 0.25}), CHAMP).to_dict()
    assert json.loads(json.dumps(d))["checks"][0]["metric"] == SIM and d["promoted"] is True


def test_the_config_accepts_exactly_the_promotion_rules():
    from ns3.config import ConfigError, RegistryConfig, load_params
    from tests.helpers import PROJECT

    rules = typing.get_args(RegistryConfig.model_fields["codec_criteria"].annotation)[1]
    assert set(typing.get_args(rules)) == set(RULES)
    p = load_params(PROJECT / "params.yaml")
    assert p.registry.codec_model and p.registry.tts_model and p.registry.codec_criteria and p.registry.tts_criteria
    with pytest.raises(ConfigError, match="registry.tts_criteria"):
        load_params(PROJECT / "params.yaml", overrides={"registry.tts_criteria": {SIM: "better"}})


def test_the_default_criteria_name_metrics_the_evaluation_stages_log():
    """The rules must use the flat names evaluate_codec / evaluate_tts log, or no version could ever win."""
    from evaluation.codec_eval import OURS
    from ns3.config import load_params
    from tests.helpers import PROJECT

    r = load_params(PROJECT / "params.yaml").registry
    assert all(k.startswith(f"eval/{OURS}/") for k in r.codec_criteria)
    assert all(k.startswith("tts/librispeech/generated/") for k in r.tts_criteria)


def test_model_uris_parse_and_plain_paths_pass_through(tmp_path):
    assert parse_model_uri("models:/ns3-codec@champion") == ("ns3-codec", None, "champion")
    assert parse_model_uri("models:/ns3-tts/12") == ("ns3-tts", "12", None)
    for bad in ("models:/ns3-codec", "models:/a/b/c", "models:/x/latest", "models:/@champion", "runs:/abc/model"):
        with pytest.raises(ValueError, match="expected models:/<name>@<alias>"):
            parse_model_uri(bad)
    assert is_model_uri("models:/x@champion") and not is_model_uri(tmp_path / "codec.pt")
    assert resolve_checkpoint(tmp_path / "codec.pt") == tmp_path / "codec.pt"
    assert resolve_checkpoint(str(tmp_path / "codec.pt")) == tmp_path / "codec.pt"


def _shards(root, entries):
    root.mkdir(parents=True, exist_ok=True)
    (root / "shards.json").write_text(json.dumps([{"name": n, "split": s, "utterances": 1, "sha256": h}
                                                  for n, s, h in entries]))
    return root


def test_the_codec_test_set_follows_the_test_shards_and_settings_not_the_training_data(tmp_path):
    align = tmp_path / "align"
    align.mkdir()
    (align / "aligner.pt").write_bytes(b"recogniser v1")
    base = _shards(tmp_path / "a", [("train-0.tar", "train", "t0"), ("test-0.tar", "test", "x0")])
    more_train = _shards(tmp_path / "b", [("train-0.tar", "train", "t0"), ("train-1.tar", "train", "t1"),
                                          ("test-0.tar", "test", "x0")])
    other_test = _shards(tmp_path / "c", [("train-0.tar", "train", "t0"), ("test-0.tar", "test", "x1")])
    s = {"max_utterances": 40, "seed": 1}
    h = codec_test_set(base, align, s)
    assert h == codec_test_set(more_train, align, s)  # retraining on more data stays comparable
    assert h != codec_test_set(other_test, align, s)
    assert h != codec_test_set(base, align, {**s, "max_utterances": 20})
    assert shard_checksums(more_train, ["train"]) == {"train-0.tar": "t0", "train-1.tar": "t1"}
    (align / "aligner.pt").write_bytes(b"recogniser v2")  # PER is scored by it
    assert h != codec_test_set(base, align, s)


def test_the_tts_test_set_follows_its_lists_and_the_data_hash_the_code_shards(tmp_path):
    synth = tmp_path / "tts"
    (synth / "lists").mkdir(parents=True)
    (synth / "lists" / "librispeech.jsonl").write_text('{"id": "a"}\n')
    shards = _shards(tmp_path / "shards", [("test-0.tar", "test", "x0")])
    h = tts_test_set(synth, shards, tmp_path / "align", {"sample": {"steps": 4}})
    assert h != tts_test_set(synth, shards, tmp_path / "align", {"sample": {"steps": 1}})
    (synth / "lists" / "librispeech.jsonl").write_text('{"id": "b"}\n')
    assert h != tts_test_set(synth, shards, tmp_path / "align", {"sample": {"steps": 4}})
    with pytest.raises(FileNotFoundError, match="ns3 synthesize"):
        tts_test_set(tmp_path / "nothing", shards, tmp_path / "align", {})

    codes = tmp_path / "codes"
    codes.mkdir()
    (codes / "code_info.json").write_text("{}")
    (codes / "train-000000.tar.done").write_text(json.dumps({"sha256": "c0"}))
    got = code_checksums(codes)
    assert got["train-000000.tar"] == "c0" and set(got) == {"train-000000.tar", "code_info.json"}
