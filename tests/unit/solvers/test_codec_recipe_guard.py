"""train_codec resumes only training state of the same recipe; other state is moved aside, never lost."""
from __future__ import annotations

import json
from pathlib import Path

from ns3.codec import FACodecHParams
from ns3.config import load_params
from pipelines.codec_train import FINGERPRINT_FILE, _recipe_fingerprint, _retire_stale_training_state

PROJECT = Path(__file__).resolve().parents[3]


def _fingerprint(**overrides):
    params = load_params(PROJECT / "params.yaml", overrides=overrides)
    return _recipe_fingerprint(params, FACodecHParams.mini())


def test_budgets_may_change_between_a_run_and_its_resume_but_the_recipe_may_not():
    base = _fingerprint()["hash"]
    assert _fingerprint(**{"codec.train.max_minutes": 60, "codec.train.log_every": 5})["hash"] == base
    assert _fingerprint(**{"codec.train.lr": 1e-3})["hash"] != base
    assert _fingerprint(**{"codec.train.loss_weights.codec/rec": 1.0})["hash"] != base
    assert _fingerprint(seed=7)["hash"] != base


def test_state_of_another_recipe_is_moved_aside_and_same_recipe_state_is_kept(tmp_path):
    train = tmp_path / "codec" / "train"
    a, b = {"hash": "aaa", "recipe": {}}, {"hash": "bbb", "recipe": {}}
    _retire_stale_training_state(train, a)
    (train / "last.pt").write_bytes(b"state of a")
    _retire_stale_training_state(train, a)  # same recipe: resume
    assert (train / "last.pt").read_bytes() == b"state of a"
    _retire_stale_training_state(train, b)  # new recipe: fresh start, old state kept aside
    assert not (train / "last.pt").exists()
    assert (tmp_path / "codec" / "train.replaced-aaa" / "last.pt").read_bytes() == b"state of a"
    assert json.loads((train / FINGERPRINT_FILE).read_text())["hash"] == "bbb"


def test_state_without_a_fingerprint_is_treated_as_another_recipe(tmp_path):
    train = tmp_path / "train"
    train.mkdir()
    (train / "last.pt").write_bytes(b"old")
    _retire_stale_training_state(train, {"hash": "ccc", "recipe": {}})
    assert (tmp_path / "train.replaced-unknown" / "last.pt").exists() and not (train / "last.pt").exists()
