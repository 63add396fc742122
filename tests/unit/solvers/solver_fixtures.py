"""A tiny solver for BaseSolver tests: a 2-layer MLP with dropout on a synthetic regression task.

Its step draws from the torch, numpy and python RNGs, so an exact resume needs all three restored.
Importable by name from DDP worker processes (pytest puts this folder on sys.path).
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ns3.solvers.base import BaseSolver, epoch_generator, replay_epochs

BATCHES_PER_EPOCH = 3


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def tiny_batches(seed: int = 0, rank: int = 0):
    """Batch source: each epoch is BATCHES_PER_EPOCH (x [8, 4], y [8, 1]) pairs, a pure function of (seed, epoch)."""

    def make_epoch(epoch: int):
        g = epoch_generator(seed * 100 + rank, epoch)
        for _ in range(BATCHES_PER_EPOCH):
            x = torch.randn(8, 4, generator=g)
            yield x, x.sum(1, keepdim=True) * 0.5

    return replay_epochs(make_epoch)


class TinySolver(BaseSolver):
    def __init__(self, *, init_seed: int = 0, nan_at_step: int | None = None, crash_at_step: int | None = None,
                 lr: float = 0.05, **kwargs) -> None:
        torch.manual_seed(init_seed)
        model = TinyNet()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.9)
        self.nan_at_step, self.crash_at_step = nan_at_step, crash_at_step
        kwargs.setdefault("batches", tiny_batches())
        kwargs.setdefault("progress", False)
        super().__init__(models={"net": model}, optimizers={"net": opt}, schedulers={"net": sched}, **kwargs)

    def train_step(self, batch):
        step = self.step + 1
        if self.crash_at_step == step:
            raise RuntimeError(f"simulated kill at step {step}")
        x, y = (t.to(self.device) for t in batch)
        jitter = torch.randn_like(x) * 0.01 + float(np.random.randn()) * 1e-3 + random.random() * 1e-3
        loss = ((self.models["net"](x + jitter) - y) ** 2).mean()
        if self.nan_at_step == step:
            loss = loss * float("nan")
        norm = self.optimize("net", loss, {"tiny/mse": loss})
        return {"tiny/mse": loss.detach(), "tiny/grad_norm": norm}


def ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """torch.multiprocessing.spawn target: a 2-step DDP run with rank-dependent init and data."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        solver = TinySolver(init_seed=rank, batches=tiny_batches(seed=1, rank=rank), out_dir=Path(out_dir) / "run",
                            max_steps=2, ckpt_every=2, device="cpu")
        result = solver.run()
        torch.save({"state": solver.unwrapped("net").state_dict(), "steps": result.steps},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def ddp_codec_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    """Two CodecSolver steps (warm-up, then generator + discriminator) under DDP with a tiny FACodec."""
    from ns3.codec import FACodec, FACodecHParams
    from ns3.codec.discriminators import CodecDiscriminator
    from ns3.data.batch import CodecBatch
    from ns3.losses import MelScale, MultiScaleMelLoss
    from ns3.solvers.codec import CodecSolver

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)

    def make_epoch(epoch: int):
        g = epoch_generator(rank, epoch)
        for _ in range(2):
            yield CodecBatch(wav=0.1 * torch.randn(2, 1600, generator=g), phone_ids=torch.randint(0, 10, (2, 8), generator=g),
                             f0=torch.randn(2, 8, generator=g), uv=torch.ones(2, 8), speaker_ids=torch.tensor([0, 1]),
                             frame_mask=torch.ones(2, 8, dtype=torch.bool), f0_stats=torch.tensor([[4.6, 0.1]] * 2))

    try:
        torch.manual_seed(rank)
        hp = FACodecHParams.mini(encoder_channels=4, latent_dim=16, decoder_channels=32, ffn_channels=32, timbre_layers=1,
                                 attention_heads=2, codebook_size=32, num_phones=10, num_speakers=4)
        disc = CodecDiscriminator(periods=(2, 3), n_ffts=(128,), mpd_channels=4, mpd_max_channels=8, mpd_layers=2,
                                  stft_channels=4, stft_max_channels=8)
        solver = CodecSolver(generator=FACodec(hp), discriminator=disc, batches=replay_epochs(make_epoch),
                             mel_loss=MultiScaleMelLoss([MelScale(256, 64, 32)]), adv_start_step=1,
                             out_dir=Path(out_dir) / "run", max_steps=2, progress=False, device="cpu")
        solver.run()
        torch.save({k: solver.unwrapped(k).state_dict() for k in ("generator", "discriminator")},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
