"""DiffusionSolver: one optimisation step of the factorized diffusion on a CodeBatch.

The base solver owns the loop, checkpoints, exact resume, DDP, the non-finite guard, MLflow and the
progress bar; this adds the objective (``FactorizedDiffusion.forward``: losses by metric name, combined by
the configured weights), AdamW with warm-up + inverse-square-root decay (paper A.2; fused on CUDA), the
forward under the solver's autocast (``precision``: "auto" is bf16 on CUDA, see ns3/solvers/precision.py),
and an optional EMA of the weights that is checkpointed and exported.

No layer of the diffusion model is kept out of bf16: its inputs are token ids (embeddings stay fp32), the
time and position sinusoids are computed in fp32, autocast keeps layer norms, softmax and the
cross-entropy losses in fp32 on CUDA, and the logits go straight into those losses.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn

from ns3.diffusion.model import DURATION, FRAME_CE, PROSODY_CE, FactorizedDiffusion
from ns3.losses.weighting import weighted_sum
from ns3.solvers.base import BaseSolver
from ns3.solvers.distributed import init_distributed

MODEL = "diffusion"
PAPER_LOSS_WEIGHTS = {FRAME_CE: 1.0, PROSODY_CE: 1.0, DURATION: 1.0}


def inverse_sqrt_schedule(optimizer: torch.optim.Optimizer, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the base lr over ``warmup`` steps, then lr · sqrt(warmup / step)."""
    w = max(1, int(warmup))

    def factor(step: int) -> float:
        s = step + 1
        return s / w if s < w else (w / s) ** 0.5

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def make_diffusion_optimizer(model: nn.Module, lr: float, betas: tuple[float, float], weight_decay: float,
                             warmup: int, fused: bool = False) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW + `inverse_sqrt_schedule`. ``fused`` (one kernel per step) is meant for CUDA; it is decided by the
    device the solver trains on, not by where the model is now (the solver moves it there afterwards)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay,
                            **({"fused": True} if fused else {}))
    return opt, inverse_sqrt_schedule(opt, warmup)


class DiffusionSolver(BaseSolver):
    def __init__(self, *, model: FactorizedDiffusion, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.98),
                 weight_decay: float = 0.01, warmup_steps: int = 5000, loss_weights: Mapping[str, float] | None = None,
                 prompt_drop: float = 0.15, ema_decay: float | None = None, **kwargs: Any) -> None:
        device = init_distributed(kwargs.get("device")).device  # where the solver will put the model
        opt, sched = make_diffusion_optimizer(model, lr, betas, weight_decay, warmup_steps, fused=device.type == "cuda")
        self.loss_weights = dict(loss_weights or PAPER_LOSS_WEIGHTS)
        self.prompt_drop = prompt_drop
        self.ema_decay = ema_decay
        self.ema: FactorizedDiffusion | None = None
        super().__init__(models={MODEL: model}, optimizers={MODEL: opt}, schedulers={MODEL: sched}, **kwargs)
        if ema_decay and self.ema is None:  # not restored by a resume
            self.ema = copy.deepcopy(self.unwrapped(MODEL)).eval().requires_grad_(False)

    def train_step(self, batch) -> dict[str, float]:
        batch = batch.to(self.device)
        out = self.amp_forward(self.models[MODEL], batch, prompt_drop=self.prompt_drop)
        total = weighted_sum(out.losses, self.loss_weights)
        norm = self.optimize(MODEL, total, out.losses)
        if self.ema is not None:
            self._update_ema()
        metrics = {k: float(v.detach()) for k, v in out.losses.items()}
        metrics.update(out.metrics)
        metrics["diffusion/total"] = float(total.detach())
        metrics["diffusion/grad_norm"] = norm
        return metrics

    @torch.no_grad()
    def _update_ema(self) -> None:
        for e, p in zip(self.ema.parameters(), self.unwrapped(MODEL).parameters()):
            e.lerp_(p.detach(), 1.0 - float(self.ema_decay))

    def inference_model(self) -> FactorizedDiffusion:
        """The weights to evaluate and export: the EMA when kept, else the trained ones."""
        return self.ema if self.ema is not None else self.unwrapped(MODEL)

    def extra_state(self) -> dict[str, Any]:
        return {"ema": self.ema.state_dict()} if self.ema is not None else {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        if "ema" in state and self.ema_decay:
            self.ema = copy.deepcopy(self.unwrapped(MODEL)).eval().requires_grad_(False)
            self.ema.load_state_dict(state["ema"])
