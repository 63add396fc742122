"""DiffusionSolver: the lr schedule, exact resume, EMA, export/load, and a 2-process gloo DDP step."""
from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from diffusion_fixtures import ddp_diffusion_worker, random_batch, tiny_hparams
from ns3.diffusion.checkpoint import load_diffusion, save_diffusion
from ns3.diffusion.model import FactorizedDiffusion
from ns3.solvers.base import LAST
from ns3.solvers.diffusion import DiffusionSolver, inverse_sqrt_schedule


def _solver(out_dir, max_steps, hp, **kw):
    batches = [random_batch(hp, [4, 6], seed=k) for k in range(3)]
    torch.manual_seed(0)
    return DiffusionSolver(model=FactorizedDiffusion(hp), batches=lambda e, s: iter(batches[s:]), out_dir=out_dir,
                           max_steps=max_steps, progress=False, device="cpu", warmup_steps=2, ckpt_every=1, seed=3, **kw)


def test_warmup_then_inverse_sqrt():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = inverse_sqrt_schedule(opt, warmup=4)
    lrs = []
    for _ in range(16):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert abs(lrs[15] - (4 / 16) ** 0.5) < 1e-9 and all(a > b for a, b in zip(lrs[4:], lrs[5:]))


def test_resume_matches_an_uninterrupted_run(tmp_path):
    hp = tiny_hparams()
    straight = _solver(tmp_path / "a", 5, hp, ema_decay=0.9)
    straight.run()
    first = _solver(tmp_path / "b", 2, hp, ema_decay=0.9)
    first.run()
    resumed = _solver(tmp_path / "b", 5, hp, ema_decay=0.9)
    assert resumed.step == 2
    resumed.run()
    for (k, a), b in zip(straight.unwrapped("diffusion").state_dict().items(), resumed.unwrapped("diffusion").state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(straight.ema.state_dict().values(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b)
    # The EMA lags the weights.
    w = dict(straight.unwrapped("diffusion").named_parameters())["frame_model.head_bias"]
    e = dict(straight.ema.named_parameters())["frame_model.head_bias"]
    assert not torch.equal(w, e)


def test_export_round_trip(tmp_path):
    hp = tiny_hparams(duration_objective="l2")
    model = FactorizedDiffusion(hp)
    path = save_diffusion(tmp_path / "d.pt", model, "abc123", {"max_duration": 6})
    loaded, meta = load_diffusion(path)
    assert loaded.hp == hp and meta == {"codec_hash": "abc123", "stats": {"max_duration": 6}}
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_load_refuses_a_model_of_another_codec(tmp_path):
    from ns3.data.code_shards import CodecMismatchError, file_sha256

    codec, other = tmp_path / "codec.pt", tmp_path / "other.pt"
    codec.write_bytes(b"the codec the codes came from")
    other.write_bytes(b"a retrained codec")
    path = save_diffusion(tmp_path / "d.pt", FactorizedDiffusion(tiny_hparams()), file_sha256(codec), {})
    load_diffusion(path, codec_path=codec)
    with pytest.raises(CodecMismatchError, match=f"{file_sha256(codec)}.*{file_sha256(other)}.*train-diffusion"):
        load_diffusion(path, codec_path=other)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_step_keeps_ranks_equal(tmp_path):
    mp.spawn(ddp_diffusion_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    ckpt = torch.load(tmp_path / "run" / LAST, weights_only=True)
    assert ckpt["world_size"] == 2 and ckpt["step"] == 2
