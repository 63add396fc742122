"""How much of the accelerator a training step uses: FLOPs per step, peak FLOP/s by GPU, MFU.

MFU (model FLOPs utilisation, PaLM appendix B) = the FLOPs the step's math needs / step time / the device's
peak. The FLOPs are counted, not estimated: `count_flops` runs one step under
``torch.utils.flop_counter.FlopCounterMode``, which adds up matmuls, convolutions and attention, forward and
backward (elementwise ops, FFTs and the optimizer update are not counted, by the usual convention). The count
is the same whatever the precision: bf16 changes how fast those FLOPs run, not how many there are.
"""
from __future__ import annotations

import re
from typing import Callable

# Dense (no 2:4 sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' datasheets, first match wins,
# so the more specific names come first. GPUs without bf16 tensor cores (V100, T4) are absent on purpose.
PEAK_BF16_TFLOPS: tuple[tuple[str, float, str], ...] = (
    (r"GB200", 2500.0, "GB200 (per GPU)"),
    (r"B200", 2250.0, "B200"),
    (r"H100.*PCIe", 756.0, "H100 PCIe"),
    (r"H100 NVL", 835.0, "H100 NVL"),
    (r"H200 NVL", 835.0, "H200 NVL"),
    (r"H100|H800", 989.0, "H100/H800 SXM"),
    (r"H200|GH200", 989.0, "H200/GH200"),
    (r"A100|A800", 312.0, "A100/A800"),
    (r"L40S", 362.0, "L40S"),
    (r"L40\b", 181.0, "L40"),
    (r"\bL4\b", 121.0, "L4"),
    (r"\bA10\b", 125.0, "A10"),
    (r"RTX 6000 Ada", 364.0, "RTX 6000 Ada"),
    (r"RTX A6000", 155.0, "RTX A6000"),
    (r"RTX 4090", 165.0, "RTX 4090"),
    (r"RTX 3090", 71.0, "RTX 3090"),
    (r"MI300X", 1307.0, "MI300X"),
    (r"MI250X", 383.0, "MI250X"),
)


def peak_bf16_tflops(device_name: str) -> tuple[float, str] | None:
    """(dense bf16 TFLOP/s, table row) for a ``torch.cuda.get_device_name()``; None when the GPU is not listed."""
    for pattern, tflops, label in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name):
            return tflops, label
    return None


def count_flops(step: Callable[[], object]) -> int:
    """FLOPs of one call of ``step`` (forward + backward when it trains), counted by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return int(counter.get_total_flops())


def mfu(flops_per_step: float, step_seconds: float, peak_tflops: float) -> float:
    """Fraction of the peak used: (FLOPs / step) / (s / step) / (peak TFLOP/s x 1e12)."""
    if step_seconds <= 0 or peak_tflops <= 0:
        raise ValueError(f"step_seconds and peak_tflops must be positive, got {step_seconds} and {peak_tflops}")
    return flops_per_step / step_seconds / (peak_tflops * 1e12)
