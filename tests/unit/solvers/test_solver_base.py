"""BaseSolver: exact resume, kill + resume, non-finite guard, weights_only checkpoints, time budget."""
from __future__ import annotations

import hashlib

import pytest
import torch

from ns3.solvers.base import LAST, BaseSolver, replay_epochs
from ns3.solvers.checkpoint import load_checkpoint
from solver_fixtures import TinySolver

N = 8


def _state(solver: BaseSolver) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v.clone() for k, v in solver.unwrapped("net").state_dict().items()}
    for pid, st in solver.optimizers["net"].state_dict()["state"].items():
        out.update({f"opt.{pid}.{k}": torch.as_tensor(v).clone() for k, v in st.items()})
    out["lr"] = torch.tensor(solver.optimizers["net"].param_groups[0]["lr"])
    return out


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    solver = TinySolver(out_dir=tmp_path_factory.mktemp("full"), max_steps=N, ckpt_every=100)
    result = solver.run()
    assert result.steps == N and result.stopped_reason == "max_steps"
    return _state(solver)


def test_resume_from_half_matches_uninterrupted_run(tmp_path, uninterrupted):
    first = TinySolver(out_dir=tmp_path, max_steps=N // 2, ckpt_every=100).run()
    assert first.steps == N // 2 and first.checkpoint == tmp_path / LAST
    # Different init: only the checkpoint can make the weights match.
    resumed = TinySolver(out_dir=tmp_path, max_steps=N, ckpt_every=100, init_seed=123)
    assert resumed.step == N // 2
    result = resumed.run()
    assert result.resumed_from == N // 2 and result.steps == N
    _assert_identical(_state(resumed), uninterrupted)


def test_kill_then_resume_from_last_checkpoint(tmp_path, uninterrupted):
    with pytest.raises(RuntimeError, match="simulated kill"):
        TinySolver(out_dir=tmp_path, max_steps=N, ckpt_every=3, crash_at_step=5).run()
    ckpt = load_checkpoint(tmp_path / LAST)
    assert ckpt["step"] == 3 and ckpt["data"] == {"epoch": 0, "batch": 3}
    resumed = TinySolver(out_dir=tmp_path, max_steps=N, ckpt_every=3, init_seed=7)
    assert resumed.run().steps == N
    _assert_identical(_state(resumed), uninterrupted)


def test_checkpoint_loads_weights_only_and_holds_full_state(tmp_path):
    TinySolver(out_dir=tmp_path, max_steps=4, ckpt_every=100).run()
    ckpt = torch.load(tmp_path / LAST, weights_only=True)
    assert ckpt["step"] == 4
    assert ckpt["data"] == {"epoch": 1, "batch": 1}  # 3 batches per epoch
    assert set(ckpt["models"]) == set(ckpt["optimizers"]) == set(ckpt["schedulers"]) == {"net"}
    assert ckpt["schedulers"]["net"]["last_epoch"] == 4
    rng = ckpt["rng"]
    assert len(rng) == 1 and {"python", "numpy", "torch"} <= set(rng[0])
    assert not any(k.startswith("module.") for k in ckpt["models"]["net"])
    assert not list(tmp_path.glob(".*.tmp*")), "temporary checkpoint file left behind"


def test_nan_guard_stops_naming_the_loss_and_keeps_last_good_checkpoint(tmp_path):
    path = tmp_path / LAST
    # Write the step-3 checkpoint first, then continue into the NaN at step 5.
    TinySolver(out_dir=tmp_path, max_steps=3, ckpt_every=3).run()
    good_hash = _sha(path)
    solver = TinySolver(out_dir=tmp_path, max_steps=N, ckpt_every=100, nan_at_step=5)
    result = solver.run()
    assert result.stopped_reason == "non_finite"
    assert "tiny/mse" in result.message and "step 5" in result.message
    assert result.steps == 4  # step 5 was refused
    assert _sha(path) == good_hash
    # The refused update left the in-memory weights finite.
    assert all(torch.isfinite(p).all() for p in solver.unwrapped("net").parameters())


def test_nan_guard_raises_before_touching_weights(tmp_path):
    solver = TinySolver(out_dir=tmp_path, max_steps=2)
    before = {k: v.clone() for k, v in solver.unwrapped("net").state_dict().items()}
    loss = torch.tensor(float("inf"), requires_grad=True)
    with pytest.raises(Exception, match=r"non-finite tiny/bad = inf at step 1"):
        solver.optimize("net", loss, {"tiny/ok": torch.tensor(1.0), "tiny/bad": loss})
    for k, v in solver.unwrapped("net").state_dict().items():
        assert torch.equal(v, before[k])


def test_time_budget_stops_and_saves(tmp_path):
    result = TinySolver(out_dir=tmp_path, max_steps=N, ckpt_every=100, max_minutes=0.0).run()
    assert result.stopped_reason == "time_budget" and result.steps == 1
    assert load_checkpoint(result.checkpoint)["step"] == 1


def test_logging_windows_and_eval_hook(tmp_path):
    calls = []
    result = TinySolver(out_dir=tmp_path, max_steps=4, log_every=2, eval_every=2,
                        eval_fn=lambda s, step: calls.append(step) or {"eval/x": 1.0}).run()
    assert calls == [2, 4]
    assert [h["step"] for h in result.history] == [2.0, 4.0]
    assert {"tiny/mse", "tiny/grad_norm", "lr/net"} <= set(result.final_metrics)


def test_empty_batch_source_is_an_error(tmp_path):
    solver = TinySolver(out_dir=tmp_path, max_steps=2, batches=replay_epochs(lambda epoch: []))
    with pytest.raises(RuntimeError, match="no batches for epoch 0"):
        solver.run()


def test_corrupt_checkpoint_names_the_file(tmp_path):
    (tmp_path / LAST).write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="last.pt"):
        TinySolver(out_dir=tmp_path, max_steps=2)


def test_bad_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="max_steps"):
        TinySolver(out_dir=tmp_path, max_steps=0)


def test_time_budget_spans_resumes(tmp_path, monkeypatch):
    """max_minutes bounds the whole run: the spent minutes travel in the checkpoint, like the step."""
    import ns3.solvers.base as base

    clock = {"t": 0.0}

    def tick():  # every look at the clock is one minute later: a machine-independent fake clock
        clock["t"] += 60.0
        return clock["t"]

    monkeypatch.setattr(base.time, "monotonic", tick)
    first = TinySolver(out_dir=tmp_path, max_steps=100, ckpt_every=100, max_minutes=3.0).run()
    assert first.stopped_reason == "time_budget"
    spent = load_checkpoint(first.checkpoint)["minutes"]
    assert 3.0 <= spent < 10.0
    # Same budget again: nothing left to train, and the state is untouched.
    again = TinySolver(out_dir=tmp_path, max_steps=100, ckpt_every=100, max_minutes=3.0).run()
    assert again.stopped_reason == "time_budget" and again.steps == first.steps and "raise max_minutes" in again.message
    # A larger budget continues from the checkpoint for the difference only.
    more = TinySolver(out_dir=tmp_path, max_steps=100, ckpt_every=100, max_minutes=spent + 4.0).run()
    assert more.resumed_from == first.steps and first.steps < more.steps < first.steps + 10
    assert load_checkpoint(more.checkpoint)["minutes"] >= spent + 4.0
