"""The GPU path without a GPU: NCCL + LOCAL_RANK device selection under torchrun (torch's CUDA and process-group
calls replaced by recorders), and benchmarks/gpu_throughput.py end to end (--cpu) and its no-CUDA skip."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from ns3.solvers import distributed

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu_throughput.py"


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two visible CUDA devices and a process group that only records how it was started."""
    calls: dict = {"set_device": [], "init": []}
    state = {"initialized": False}

    def init_process_group(**kwargs):
        calls["init"].append(kwargs)
        state["initialized"] = True

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls["set_device"].append(torch.device(d)))
    monkeypatch.setattr(dist, "init_process_group", init_process_group)
    monkeypatch.setattr(dist, "is_initialized", lambda: state["initialized"])
    monkeypatch.setattr(dist, "get_rank", lambda: calls["init"][-1]["rank"])
    monkeypatch.setattr(dist, "get_world_size", lambda: calls["init"][-1]["world_size"])
    return calls


def _torchrun_env(monkeypatch, rank: int, local_rank: int, world_size: int) -> None:
    for k, v in dict(RANK=rank, LOCAL_RANK=local_rank, WORLD_SIZE=world_size, MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=29500).items():
        monkeypatch.setenv(k, str(v))


def test_torchrun_on_gpus_uses_nccl_on_the_local_rank_device(monkeypatch, fake_gpus):
    _torchrun_env(monkeypatch, rank=3, local_rank=1, world_size=4)  # second GPU of the second node
    info = distributed.init_distributed()
    assert info.device == torch.device("cuda", 1) and (info.rank, info.local_rank, info.world_size) == (3, 1, 4)
    assert fake_gpus["set_device"] == [torch.device("cuda", 1)]
    (init,) = fake_gpus["init"]
    assert init["backend"] == "nccl" and init["device_id"] == torch.device("cuda", 1)
    assert (init["rank"], init["world_size"]) == (3, 4)


def test_torchrun_on_cpus_uses_gloo_without_a_device_id(monkeypatch, fake_gpus):
    _torchrun_env(monkeypatch, rank=1, local_rank=1, world_size=2)
    info = distributed.init_distributed("cpu")
    (init,) = fake_gpus["init"]
    assert info.device.type == "cpu" and init["backend"] == "gloo" and "device_id" not in init
    assert fake_gpus["set_device"] == []


def test_a_local_rank_beyond_the_visible_gpus_is_a_clear_error(monkeypatch, fake_gpus):
    _torchrun_env(monkeypatch, rank=2, local_rank=2, world_size=3)
    with pytest.raises(RuntimeError, match=r"cuda:2 \(LOCAL_RANK=2\) but only 2 CUDA device"):
        distributed.init_distributed()
    assert fake_gpus["init"] == []  # failed before joining a group the other ranks would wait on


def _run(args: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCHMARK), *args], capture_output=True, text=True, timeout=600,
                          cwd=BENCHMARK.parents[1], env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def test_benchmark_without_cuda_prints_why_it_skipped():
    run = _run([], CUDA_VISIBLE_DEVICES="")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("skipped: no CUDA device (")


def test_benchmark_cpu_mode_measures_both_models_end_to_end(tmp_path):
    out = tmp_path / "rows.json"
    run = _run(["--cpu", "--warmup", "2", "--steps", "1", "--peak-tflops", "1", "--json", str(out)],
               CUDA_VISIBLE_DEVICES="")
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(out.read_text())
    assert [(r["model"], r["variant"]) for r in rows] == [("codec", "fp32"), ("codec", "bf16"),
                                                          ("diffusion", "fp32"), ("diffusion", "bf16")]
    for r in rows:
        assert r["flops_per_step"] > 0 and r["samples_per_s"] > 0 and 0 < r["mfu"] < 1, r
    assert {r["precision"] for r in rows} == {"fp32", "bf16"}
    assert [r["speedup_vs_fp32"] for r in rows if r["variant"] == "fp32"] == [1.0, 1.0]
    assert "MFU" in run.stdout and "x fp32" in run.stdout
