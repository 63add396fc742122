"""BaseSolver under DDP: two CPU processes on gloo, launched like torchrun (RANK/WORLD_SIZE env)."""
from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp

from ns3.solvers.base import LAST
from solver_fixtures import ddp_codec_worker, ddp_worker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_steps_keep_ranks_equal_and_save_unwrapped(tmp_path):
    mp.spawn(ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["steps"] == r1["steps"] == 2
    # Ranks started from different inits and saw different data; DDP broadcast + all-reduce make them equal.
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    ckpt = torch.load(tmp_path / "run" / LAST, weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    keys = list(ckpt["models"]["net"])
    assert keys and not any(k.startswith("module.") for k in keys)
    for k in keys:
        assert torch.equal(ckpt["models"]["net"][k], r0["state"][k])
    # The two ranks' RNG streams differ (seeded seed + rank), and both are kept.
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])


@pytest.mark.slow  # ~20 s: two processes import the codec stack
def test_codec_solver_gan_step_under_ddp(tmp_path):
    mp.spawn(ddp_codec_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    ckpt = torch.load(tmp_path / "run" / LAST, weights_only=True)
    for name in ("generator", "discriminator"):
        assert not any(k.startswith("module.") for k in ckpt["models"][name])
        for k, v in r0[name].items():
            assert torch.equal(v, r1[name][k]), f"{name}.{k}"
            assert torch.equal(v, ckpt["models"][name][k]), f"{name}.{k}"


def test_bare_cuda_device_means_this_process_gpu(monkeypatch):
    # torch.cuda.set_device rejects a device without an index; a user passing device="cuda" means
    # the process's own GPU (LOCAL_RANK under torchrun). No GPU is needed: set_device is recorded.
    import torch

    from ns3.solvers.distributed import init_distributed

    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: chosen.append(d))
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed("cuda")
    assert info.device == torch.device("cuda", 1) and chosen == [torch.device("cuda", 1)]
    assert init_distributed("cuda:0").device == torch.device("cuda", 0)
