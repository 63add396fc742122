"""torchrun/DDP plumbing: read the launcher's environment, start the process group, pick the device.

torchrun exports RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; without them we are a single
process and nothing is initialised. gloo on CPU (tests, laptops), NCCL on GPUs: process LOCAL_RANK drives
cuda:LOCAL_RANK (torchrun starts one process per GPU of a node; RANK counts across nodes, LOCAL_RANK within one).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device | None = None) -> DistInfo:
    """Idempotent: joins the process group described by the environment (if any) and returns who we are.

    ``device`` overrides the default (cuda:LOCAL_RANK when CUDA is available, else cpu); a bare "cuda"
    means cuda:LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if device is None:
        device = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda":
        if device.index is None:  # plain "cuda": this process's GPU (set_device needs an index)
            device = torch.device("cuda", local_rank)
        visible = torch.cuda.device_count()
        if 0 < visible <= device.index:  # (none visible at all: set_device's own error says so)
            raise RuntimeError(f"{device} (LOCAL_RANK={local_rank}) but only {visible} CUDA device(s) are visible; "
                               "start at most one process per GPU (torchrun --nproc-per-node) and do not restrict "
                               "CUDA_VISIBLE_DEVICES per process")
        # Before the process group: NCCL and the collectives of all_gather_object/barrier use the current device.
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        for key in ("MASTER_ADDR", "MASTER_PORT"):
            if key not in os.environ:
                raise RuntimeError(f"WORLD_SIZE={world_size} but {key} is not set; launch with torchrun")
        # device_id binds the NCCL process group to this GPU at init (eagerly), so barrier() need not guess
        # the device from the rank (torch warns that a wrong guess can hang).
        nccl = device.type == "cuda"
        dist.init_process_group(backend="nccl" if nccl else "gloo", rank=rank, world_size=world_size,
                                **({"device_id": device} if nccl else {}))
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def all_true(flag: bool, info: DistInfo) -> bool:
    """True only if ``flag`` is true on every rank (one tiny all-reduce), so ranks take the same branch."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0.5)


def any_true(flag: bool, info: DistInfo) -> bool:
    return not all_true(not flag, info)
