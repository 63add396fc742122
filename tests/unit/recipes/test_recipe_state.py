"""A recipe resumes only training state of the same recipe; other state is moved aside, never lost."""
from __future__ import annotations

import json
from pathlib import Path

from ns3.builders import codec_train_spec
from ns3.config import load_params
from ns3.recipes.codec import CodecTrainingData
from ns3.recipes.state import FINGERPRINT_FILE, retire_stale_state as _retire_stale_training_state

PROJECT = Path(__file__).resolve().parents[3]
DATA = CodecTrainingData(train_shards=("train-000000.tar",), valid_shards=(), label_dir=Path("align"),
                         speakers={"a": 0, "b": 1}, num_phones=40, labelled_utterances=100, missing_labels=0)


def _fingerprint(**overrides):
    params = load_params(PROJECT / "params.yaml", overrides=overrides)
    return codec_train_spec(params, DATA).fingerprint()


def test_budgets_may_change_between_a_run_and_its_resume_but_the_recipe_may_not():
    base = _fingerprint()["hash"]
    assert _fingerprint(**{"codec.train.max_minutes": 60, "codec.train.log_every": 5, "codec.train.max_steps": 9,
                           "variant": "x", "paths.data": "/elsewhere"})["hash"] == base
    assert _fingerprint(**{"codec.train.lr": 1e-3})["hash"] != base
    assert _fingerprint(**{"codec.train.loss_weights.codec/rec": 1.0})["hash"] != base
    assert _fingerprint(seed=7)["hash"] != base
    assert _fingerprint(**{"codec.train.shuffle_buffer": 7})["hash"] != base
    assert _fingerprint(**{"codec.model.use_detail": False})["hash"] != base


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


def test_a_recipe_moved_aside_twice_keeps_both_copies(tmp_path):
    train = tmp_path / "train"
    for content, new in ((b"first", "x1"), (b"second", "x2")):
        _retire_stale_training_state(train, {"hash": "aaa", "recipe": {}})
        (train / "last.pt").write_bytes(content)
        _retire_stale_training_state(train, {"hash": new, "recipe": {}})
    assert (tmp_path / "train.replaced-aaa" / "last.pt").read_bytes() == b"first"
    assert (tmp_path / "train.replaced-aaa-2" / "last.pt").read_bytes() == b"second"


def _ddp_prepare(rank: int, world: int, port: int, root: str) -> None:
    import os

    import torch.distributed as dist

    from ns3.recipes.state import prepare_training_state

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        prepare_training_state(Path(root) / "train", {"hash": "new", "recipe": {}})
        # after the barrier every rank sees the finished move, never a half-done one
        assert not (Path(root) / "train" / "last.pt").exists()
        assert json.loads((Path(root) / "train" / FINGERPRINT_FILE).read_text())["hash"] == "new"
    finally:
        dist.destroy_process_group()


def test_under_ddp_one_rank_moves_the_state_and_all_ranks_see_it(tmp_path):
    import socket

    import torch.multiprocessing as mp

    train = tmp_path / "train"
    _retire_stale_training_state(train, {"hash": "old", "recipe": {}})
    (train / "last.pt").write_bytes(b"old state")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_prepare, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    moved = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("train.replaced"))
    assert moved == ["train.replaced-old"] and (tmp_path / "train.replaced-old" / "last.pt").read_bytes() == b"old state"
