"""How a training step uses the accelerator: autocast precision, TF32, fp32 islands, torch.compile.

The solvers take these as plain settings (``precision``, ``tf32``, ``compile``); nothing here reads params.

Mixed precision here means autocast over the model forward only. Weights, gradients and optimizer state stay
fp32 (the "master weights"), and the losses are computed in fp32 from fp32 copies of the model outputs
(`to_fp32`). bf16 keeps fp32's 8-bit exponent, so gradients do not underflow as they do in fp16: no
GradScaler is needed, and the solver's non-finite guard still sees every loss in fp32. What bf16 loses is
mantissa (8 bits, ~3 significant digits), which matters where a result is compared, exponentiated or
accumulated rather than fed to the next layer; `run_in_fp32` keeps such layers in fp32 inside the autocast
region (the codec solver lists which, and why).
"""
from __future__ import annotations

import dataclasses
import types
from typing import Any, Literal

import torch
from torch import nn

Precision = Literal["fp32", "bf16", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "auto")


def native_bf16(device: torch.device) -> bool:
    """bf16 tensor-core support on ``device`` (Ampere and later); emulated bf16 on older GPUs is slower than fp32."""
    return device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)


def resolve_precision(precision: str, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``; None means no autocast (plain fp32).

    "auto": bf16 on a CUDA device with native bf16, else fp32 (so a CPU run is unchanged). "bf16": bf16 on
    any device, the CPU included (slow there, but it runs the same code path, which the tests use).
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if native_bf16(device) else None
    if device.type == "cuda" and not native_bf16(device):
        raise ValueError(f"precision bf16 on {torch.cuda.get_device_name(device)}, which has no native bf16 "
                         "(pre-Ampere): it would run slower than fp32; use precision fp32 or auto")
    return torch.bfloat16


def precision_name(dtype: torch.dtype | None) -> str:
    return "bf16" if dtype == torch.bfloat16 else "fp32"


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """The autocast region of a model forward (a no-op context when ``dtype`` is None)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def set_tf32(enabled: bool, device: torch.device) -> None:
    """TF32 tensor cores for fp32 matmuls and convolutions on CUDA (10-bit mantissa inputs, fp32 accumulation).

    Only on a CUDA device: these flags are process-wide, and a CPU run must stay bit-for-bit what it was.
    The legacy ``allow_tf32`` flags on purpose: in torch >= 2.9, setting the newer per-backend
    ``fp32_precision`` makes ``torch.get_float32_matmul_precision()`` raise ("a mix of legacy and new APIs"),
    and inductor calls it; ``torch.set_float32_matmul_precision("high")`` would switch oneDNN's CPU matmuls too.
    """
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def to_fp32(tree: Any) -> Any:
    """Floating tensors in ``tree`` (tensors, dataclasses, dicts, lists, tuples) cast to fp32; the rest as is.

    Applied to a model's outputs where the autocast region ends, so the losses after it run in fp32. The cast
    is differentiable: gradients flow back into the bf16 activations.
    """
    if isinstance(tree, torch.Tensor):
        return tree.float() if tree.is_floating_point() and tree.dtype != torch.float32 else tree
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        changes = {f.name: to_fp32(getattr(tree, f.name)) for f in dataclasses.fields(tree) if f.init}
        return dataclasses.replace(tree, **changes)
    if isinstance(tree, dict):
        return {k: to_fp32(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):  # (namedtuples are left alone)
        return type(tree)(to_fp32(v) for v in tree)
    return tree


def _cast_args(values: Any) -> Any:
    if isinstance(values, torch.Tensor):
        return values.float() if values.is_floating_point() else values
    if isinstance(values, (list, tuple)) and not hasattr(values, "_fields"):
        return type(values)(_cast_args(v) for v in values)
    if isinstance(values, dict):
        return {k: _cast_args(v) for k, v in values.items()}
    return values


def _first_tensor_device(values: Any) -> str | None:
    for v in values:
        if isinstance(v, torch.Tensor):
            return v.device.type
    return None


def _fp32_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    device = _first_tensor_device((*args, *kwargs.values()))
    if device is None or not torch.is_autocast_enabled(device):
        return type(self).forward(self, *args, **kwargs)
    with torch.autocast(device, enabled=False):
        return type(self).forward(self, *_cast_args(args), **_cast_args(kwargs))


def run_in_fp32(module: nn.Module) -> nn.Module:
    """Make ``module`` compute in fp32 inside an autocast region; returns it (modified in place).

    Within its forward, floating inputs are cast to fp32 and autocast is off, so its matmuls/convolutions run
    in fp32 and its outputs are fp32; outside autocast nothing changes. It is set on the instance (its own
    ``forward`` attribute), so class, state_dict keys and checkpoints are untouched; ``copy.deepcopy`` (the
    EMA) rebinds it to the copy; torch.compile traces through it. Calling it twice is harmless.
    """
    current = module.__dict__.get("forward")
    if not (isinstance(current, types.MethodType) and current.__func__ is _fp32_forward):
        module.forward = types.MethodType(_fp32_forward, module)
    return module


def runs_in_fp32(module: nn.Module) -> bool:
    current = module.__dict__.get("forward")
    return isinstance(current, types.MethodType) and current.__func__ is _fp32_forward
