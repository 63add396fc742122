"""Tiny diffusion models and random code batches (shared by the diffusion tests)."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ns3.data.code_batch import CodeBatch
from ns3.diffusion.hparams import DiffusionHParams


def tiny_hparams(**kw) -> DiffusionHParams:
    base = dict(num_phones=12, codebook_size=16, max_duration=6, encoder_layers=1, encoder_dim=16, encoder_heads=2,
                encoder_hidden=32, encoder_kernel=3, phone_layers=1, phone_dim=16, frame_layers=1, frame_dim=24,
                heads=2, hidden=32, dropout=0.0)
    return DiffusionHParams(**{**base, **kw})


def random_batch(hp: DiffusionHParams, phones: list[int], seed: int = 0) -> CodeBatch:
    """Items with ``phones[i]`` phones of 1..max_duration frames, codes consistent with the durations."""
    g = torch.Generator().manual_seed(seed)
    durs = [torch.randint(1, hp.max_duration + 1, (n,), generator=g) for n in phones]
    frames = [int(d.sum()) for d in durs]
    b, p, t = len(phones), max(phones), max(frames)
    codes = torch.zeros(b, hp.num_levels, t, dtype=torch.long)
    fmask = torch.zeros(b, t, dtype=torch.bool)
    ids, dd, pros = (torch.zeros(b, p, dtype=torch.long) for _ in range(3))
    pmask = torch.zeros(b, p, dtype=torch.bool)
    for i, (n, d, f) in enumerate(zip(phones, durs, frames)):
        codes[i, :, :f] = torch.randint(0, hp.codebook_size, (hp.num_levels, f), generator=g)
        fmask[i, :f] = True
        ids[i, :n] = torch.randint(1, hp.num_phones, (n,), generator=g)
        dd[i, :n] = d
        pros[i, :n] = torch.randint(0, hp.codebook_size, (n,), generator=g)
        pmask[i, :n] = True
    return CodeBatch(codes, fmask, ids, dd, pros, pmask, torch.randn(b, 8, generator=g), [f"u{i}" for i in range(b)],
                     ["s"] * b)


def ddp_diffusion_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """Two DiffusionSolver steps under gloo DDP; each rank saves its weights."""
    from ns3.diffusion.model import FactorizedDiffusion
    from ns3.solvers.diffusion import DiffusionSolver

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        torch.manual_seed(rank)
        hp = tiny_hparams()
        batches = [random_batch(hp, [5, 7], seed=10 * rank + k) for k in range(2)]
        solver = DiffusionSolver(model=FactorizedDiffusion(hp), batches=lambda e, s: iter(batches[s:]),
                                 out_dir=Path(out_dir) / "run", max_steps=2, progress=False, device="cpu", warmup_steps=1)
        solver.run()
        torch.save(solver.unwrapped("diffusion").state_dict(), Path(out_dir) / f"rank{rank}.pt")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
