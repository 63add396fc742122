"""BaseSolver: the training loop every ns3 model shares.

It receives built things (models, optimizers, schedulers, a batch source) and plain settings; it owns
the loop, checkpoints, resume, DDP, gradient clipping, the non-finite guard, progress, MLflow curves and
the periodic evaluation hook. Subclasses implement `train_step` (and optionally `evaluate`).

Data position (resume contract). A checkpoint records ``epoch`` and ``batch`` (batches consumed in that
epoch). On resume the solver asks the batch source for ``source(epoch, batch)``: an iterator over the
rest of that epoch. A source must therefore be a pure function of (epoch, start): seed shuffles and crops
from (seed, epoch) — e.g. ``DataLoader(generator=epoch_generator(seed, epoch))`` and
`ns3.data.batch.RandomCropCollate.set_epoch` — never from the global RNGs, whose states belong to the
training step and are restored from the checkpoint. `replay_epochs` turns a per-epoch iterable factory
into a source by skipping the consumed batches (cost: reading them again, bounded by one epoch). For
WebDataset at scale use resampled shards with ``with_epoch(n)``, so an "epoch" is a fixed number of
batches and the replay stays short.

Device numerics (ns3/solvers/precision.py). ``precision`` ("fp32" | "bf16" | "auto": bf16 on a CUDA device
with native bf16, else fp32) is the autocast dtype of the model forwards a subclass runs through
`amp_forward`; weights, gradients, optimizer state and losses stay fp32. ``tf32`` lets fp32 matmuls and
convolutions use TF32 tensor cores (CUDA only). ``compile`` wraps the models train_step calls in
``torch.compile``; checkpoints and `unwrapped` are always the bare modules, so their state_dict keys carry
neither DDP's ``module.`` nor compile's ``_orig_mod.`` prefix.
"""
from __future__ import annotations

import itertools
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ns3 import tracking
from ns3.solvers.checkpoint import FORMAT, atomic_save, capture_rng_state, load_checkpoint, restore_rng_state, seed_everything
from ns3.solvers.distributed import DistInfo, any_true, init_distributed
from ns3.solvers.precision import autocast, precision_name, resolve_precision, set_tf32, to_fp32

log = logging.getLogger("ns3.solvers")

BatchSource = Callable[[int, int], Iterable[Any]]
"""``source(epoch, start)`` -> the batches of ``epoch`` from index ``start`` on (see the module docstring)."""

StopReason = Literal["max_steps", "time_budget", "non_finite"]
LAST = "last.pt"
# How an optimizer runs, not what it has learnt: they follow this process's device, not the checkpoint's.
OPTIMIZER_IMPLEMENTATION = ("fused", "foreach", "capturable")


def replay_epochs(make_epoch: Callable[[int], Iterable[Any]]) -> BatchSource:
    """Adapt ``make_epoch(epoch) -> iterable`` into a BatchSource that skips the first ``start`` batches."""

    def source(epoch: int, start: int) -> Iterator[Any]:
        return itertools.islice(iter(make_epoch(epoch)), start, None)

    return source


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A torch.Generator for one epoch's shuffling, independent of the global RNG."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


class NonFiniteLossError(RuntimeError):
    """A loss or gradient norm became NaN/inf; ``name`` is the metric key, ``step`` the 1-based step."""

    def __init__(self, name: str, step: int, value: float) -> None:
        self.name, self.step, self.value = name, step, value
        super().__init__(f"non-finite {name} = {value} at step {step}")


@dataclass
class TrainResult:
    steps: int  # completed optimisation steps (global, including those before a resume)
    final_metrics: dict[str, float]
    checkpoint: Path | None  # last.pt holding the state after `steps` (None when nothing was saved)
    stopped_reason: StopReason
    message: str = ""
    resumed_from: int = 0  # step of the checkpoint this run resumed from (0 = fresh start)
    history: list[dict[str, float]] = field(default_factory=list)  # logged windows (rank 0)


class BaseSolver:
    """Loop owner. Subclasses implement ``train_step(batch) -> metrics`` using `optimize` for each update.

    models/optimizers/schedulers are dicts keyed by name (a scheduler's key names its optimizer); models
    come unwrapped and are moved to the device, restored from ``out_dir/last.pt`` when it exists, then
    wrapped in DDP when WORLD_SIZE > 1. ``self.models[name]`` is what train_step calls (DDP-wrapped or
    not, compiled or not); `unwrapped` gives the bare module for evaluation and saving.
    """

    def __init__(
        self,
        *,
        models: Mapping[str, nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        batches: BatchSource,
        out_dir: str | Path,
        max_steps: int,
        schedulers: Mapping[str, Any] | None = None,
        log_every: int = 50,
        ckpt_every: int = 1000,
        eval_every: int = 0,
        grad_clip: float | None = None,
        seed: int = 0,
        max_minutes: float | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
        find_unused_parameters: bool = False,
        eval_fn: Callable[["BaseSolver", int], Mapping[str, float] | None] | None = None,
        precision: str = "auto",
        tf32: bool = True,
        compile: bool = False,
    ) -> None:
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        for name, value in (("log_every", log_every), ("ckpt_every", ckpt_every)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        schedulers = dict(schedulers or {})
        if unknown := set(schedulers) - set(optimizers):
            raise ValueError(f"schedulers {sorted(unknown)} name no optimizer; optimizers: {sorted(optimizers)}")
        self.dist: DistInfo = init_distributed(device)
        self.device = self.dist.device
        self.amp_dtype = resolve_precision(precision, self.device)  # None: no autocast
        self.precision = precision_name(self.amp_dtype)
        self.compiled = bool(compile)
        set_tf32(tf32, self.device)
        self.out_dir = Path(out_dir)
        self.max_steps, self.log_every, self.ckpt_every, self.eval_every = max_steps, log_every, ckpt_every, eval_every
        self.grad_clip, self.seed, self.max_minutes, self.progress = grad_clip, seed, max_minutes, progress
        self.eval_fn = eval_fn
        self.batches = batches
        self._models = {k: m.to(self.device) for k, m in models.items()}
        self.optimizers = dict(optimizers)
        self.schedulers = schedulers
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.resumed_from = 0
        # Training wall time is a budget over the whole run, like max_steps: it is saved with the state,
        # so raising ``max_minutes`` from 20 to 25 and resuming trains about 5 more minutes.
        self.minutes_before = 0.0  # trained before this process's run (from the checkpoint)
        self._run_start: float | None = None
        seed_everything(seed + self.dist.rank)  # per-rank training randomness; overwritten by a resume
        if (self.out_dir / LAST).exists():
            self.load(self.out_dir / LAST)
        self.models: dict[str, nn.Module] = {
            k: self._wrap(m, find_unused_parameters) for k, m in self._models.items()
        }
        if self.compiled:
            # After DDP (compiling the DDP module lets dynamo split graphs at its gradient buckets) and after
            # the resume above (weights load into the bare module).
            self.models = {k: torch.compile(m) if _trainable(m) else m for k, m in self.models.items()}
        if self.dist.is_main:
            log.info("%s on %s: precision %s%s, tf32 %s, compile %s", type(self).__name__, self.device, self.precision,
                     f" (from {precision})" if precision == "auto" else "",
                     "on" if tf32 and self.device.type == "cuda" else "off", "on" if self.compiled else "off")

    # ---------------------------------------------------------------- to implement
    def train_step(self, batch: Any) -> Mapping[str, float | torch.Tensor]:
        """One optimisation step on ``batch``; returns metrics keyed by their MLflow names."""
        raise NotImplementedError

    def evaluate(self, step: int) -> Mapping[str, float]:
        """Periodic evaluation/sample logging on rank 0 (every ``eval_every`` steps). Default: ``eval_fn``."""
        return dict(self.eval_fn(self, step) or {}) if self.eval_fn else {}

    def extra_state(self) -> dict[str, Any]:
        """Subclass state to checkpoint (tensors and primitives only)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass

    # ---------------------------------------------------------------- helpers for train_step
    def unwrapped(self, name: str) -> nn.Module:
        return self._models[name]

    def autocast(self) -> torch.autocast:
        """The autocast region of a model forward in this solver's precision (no-op in fp32)."""
        return autocast(self.device, self.amp_dtype)

    def amp_forward(self, model: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``model(*args, **kwargs)`` under `autocast`, its floating outputs handed back in fp32, so the
        losses computed from them run in fp32 (a bf16 mel matmul or log would lose the small differences
        the reconstruction loss is made of). In fp32 the outputs are returned untouched."""
        with self.autocast():
            out = model(*args, **kwargs)
        return to_fp32(out) if self.amp_dtype is not None else out

    def optimize(self, name: str, loss: torch.Tensor, parts: Mapping[str, torch.Tensor] | None = None) -> float:
        """Guard, backward, clip, step optimizer ``name`` (and its scheduler). Returns the gradient norm.

        Raises NonFiniteLossError before touching any weight when ``loss``, one of ``parts`` or the
        gradient norm is not finite on any rank (all ranks raise together, so none hangs in a collective).
        """
        checks = dict(parts or {})
        checks[f"{name}/total"] = loss
        bad = None
        for k, v in checks.items():
            v = v.detach()
            finite = torch.isfinite(v)
            if not finite.all():
                bad = (k, float(v[~finite].flatten()[0]))
                break
        if any_true(bad is not None, self.dist):
            self._raise_non_finite(bad)
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip if self.grad_clip else math.inf)
        norm_value = float(norm)
        if not math.isfinite(norm_value):  # grads are all-reduced, so every rank sees the same norm
            self._raise_non_finite((f"{name}/grad_norm", norm_value))
        opt.step()
        if name in self.schedulers:
            self.schedulers[name].step()
        return norm_value

    # ---------------------------------------------------------------- loop
    def run(self) -> TrainResult:
        main = self.dist.is_main
        for m in self._models.values():
            m.train()
        self._run_start = time.monotonic()
        window: dict[str, list[float]] = {}
        last_logged: dict[str, float] = {}
        history: list[dict[str, float]] = []
        saved_at = self.step if (self.out_dir / LAST).exists() else -1
        reason: StopReason = "max_steps"
        message = ""
        bar = self._progress_bar()
        try:
            spent = self.minutes_before > 0 and self.max_minutes is not None and self.minutes_before >= self.max_minutes
            if spent and self.step < self.max_steps:
                reason = "time_budget"
                message = (f"the time budget ({self.max_minutes} min) was spent before this run "
                           f"({self.minutes_before:.1f} min up to step {self.step}); raise max_minutes to train on")
            while self.step < self.max_steps and reason != "time_budget":
                got_any = False
                for batch in self.batches(self.epoch, self.batch_in_epoch):
                    got_any = True
                    self.batch_in_epoch += 1
                    metrics = self.train_step(batch)
                    self.step += 1
                    for k, v in metrics.items():
                        window.setdefault(k, []).append(float(v))
                    bar.update(1)
                    if self.step % self.log_every == 0 or self.step == self.max_steps:
                        last_logged = self._flush(window)
                        window = {}
                        if main:
                            history.append({"step": float(self.step), **last_logged})
                            tracking.log_metrics(last_logged, step=self.step)
                            bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in list(last_logged.items())[:4]})
                    if self.eval_every and self.step % self.eval_every == 0 and main:
                        with torch.no_grad():
                            ev = self.evaluate(self.step)
                        if ev:
                            tracking.log_metrics(dict(ev), step=self.step)
                    over_time = self.max_minutes is not None and self.minutes_trained() >= self.max_minutes
                    over_time = any_true(over_time, self.dist)
                    if self.step % self.ckpt_every == 0 or self.step >= self.max_steps or over_time:
                        self.save()
                        saved_at = self.step
                    if over_time:
                        reason = "time_budget"
                        message = f"stopped at the {self.max_minutes} min budget at step {self.step}"
                        break
                    if self.step >= self.max_steps:
                        break
                else:
                    if not got_any and self.batch_in_epoch == 0:
                        raise RuntimeError(f"the batch source yielded no batches for epoch {self.epoch}; "
                                           "check the training shards/split")
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    continue
                break
        except NonFiniteLossError as e:
            # The offending update was refused, but the run cannot go on. last.pt is deliberately not
            # rewritten: it stays the last good state for inspection or a restart with other settings.
            reason = "non_finite"
            kept = (f"{self.out_dir / LAST} (step {saved_at}) is the last good checkpoint" if saved_at >= 0
                    else "no checkpoint had been written yet")
            message = f"stopped: {e.name} was {e.value} at step {e.step}; that update was refused and {kept}"
            log.error(message)
        finally:
            bar.close()
            self.minutes_before, self._run_start = self.minutes_trained(), None  # this run's time is spent
        if window:
            last_logged = self._flush(window)
        ckpt = self.out_dir / LAST
        return TrainResult(
            steps=self.step, final_metrics=last_logged, checkpoint=ckpt if ckpt.exists() else None,
            stopped_reason=reason, message=message, resumed_from=self.resumed_from, history=history,
        )

    # ---------------------------------------------------------------- checkpoints
    def minutes_trained(self) -> float:
        """Training wall minutes of the whole run so far: before this process's resume plus since."""
        since = 0.0 if self._run_start is None else (time.monotonic() - self._run_start) / 60
        return self.minutes_before + since

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "step": self.step,
            "minutes": self.minutes_trained(),
            "data": {"epoch": self.epoch, "batch": self.batch_in_epoch},
            "models": {k: m.state_dict() for k, m in self._models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "world_size": self.dist.world_size,
            "extra": self.extra_state(),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Collective under DDP (every rank contributes its RNG state); rank 0 writes atomically."""
        path = Path(path) if path is not None else self.out_dir / LAST
        rng = capture_rng_state()
        if self.dist.enabled:
            gathered: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(gathered, rng)
            rng_states = gathered
        else:
            rng_states = [rng]
        if self.dist.is_main:
            state = self.state_dict()
            state["rng"] = rng_states
            atomic_save(state, path)
        if self.dist.enabled:
            dist.barrier()  # nobody races ahead (or reads last.pt) before it is complete
        return path

    def load(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path)
        for key, group in (("models", self._models), ("optimizers", self.optimizers), ("schedulers", self.schedulers)):
            if set(ckpt[key]) != set(group):
                raise RuntimeError(f"{path}: checkpoint has {key} {sorted(ckpt[key])} but the solver has {sorted(group)}")
        for k, m in self._models.items():
            m.load_state_dict(ckpt["models"][k], strict=True)
        for k, o in self.optimizers.items():
            # load_state_dict replaces every param-group setting with the saved one, fused/foreach included:
            # a state saved on a CPU (fused off) would silently turn the fused CUDA optimizer off on resume.
            # Writing this optimizer's flags into the saved groups first also places the step counters
            # where the fused kernel wants them (on the device), as torch does for a fused state.
            saved = ckpt["optimizers"][k]
            for group, now in zip(saved["param_groups"], o.param_groups):
                group.update({f: now[f] for f in OPTIMIZER_IMPLEMENTATION if f in now})
            o.load_state_dict(saved)
        for k, s in self.schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        self.step = self.resumed_from = int(ckpt["step"])
        self.minutes_before = float(ckpt.get("minutes", 0.0))  # checkpoints from before the budget was saved: 0
        self.epoch, self.batch_in_epoch = int(ckpt["data"]["epoch"]), int(ckpt["data"]["batch"])
        rng = ckpt["rng"]
        if len(rng) == self.dist.world_size:
            restore_rng_state(rng[self.dist.rank])
        else:
            # A different world size cannot continue the same random streams; derive fresh ones deterministically.
            log.warning("%s: saved with %d ranks, resuming with %d: RNG streams re-seeded", path, len(rng), self.dist.world_size)
            seed_everything(self.seed * 1_000_003 + self.step * 101 + self.dist.rank)
        self.load_extra_state(ckpt.get("extra", {}))
        if self.dist.is_main:
            log.info("resumed from %s at step %d (epoch %d, batch %d)", path, self.step, self.epoch, self.batch_in_epoch)

    # ---------------------------------------------------------------- internals
    def _wrap(self, model: nn.Module, find_unused: bool) -> nn.Module:
        if not self.dist.enabled or not _trainable(model):
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)

    def _raise_non_finite(self, bad: tuple[str, float] | None) -> None:
        if self.dist.enabled:
            names: list[Any] = [None] * self.dist.world_size
            dist.all_gather_object(names, bad)
            found = [(r, b) for r, b in enumerate(names) if b is not None]
            rank, bad = found[0]
            if rank != self.dist.rank:
                bad = (f"{bad[0]} (rank {rank})", bad[1])
        assert bad is not None
        raise NonFiniteLossError(bad[0], self.step + 1, bad[1])

    def _flush(self, window: dict[str, list[float]]) -> dict[str, float]:
        out = {k: sum(v) / len(v) for k, v in window.items() if v}
        for name, opt in self.optimizers.items():
            out[f"lr/{name}"] = float(opt.param_groups[0]["lr"])
        return out

    def _progress_bar(self):
        from tqdm.auto import tqdm

        return tqdm(total=self.max_steps, initial=self.step, desc=type(self).__name__, unit="step", file=sys.stderr,
                    dynamic_ncols=True, mininterval=1.0, disable=not (self.progress and self.dist.is_main))


def _trainable(model: nn.Module) -> bool:
    return any(p.requires_grad for p in model.parameters())
