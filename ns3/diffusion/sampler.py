"""Iterative masked-diffusion sampling with classifier-free guidance (NS3 §3.3.2, A.2).

Generic over a logits function: the sampler knows token positions, a mask id and a schedule, nothing
about codec levels, phones or durations. One call runs one diffusion process (e.g. one code level).

Per step k of K (t_k = 1 − k/K):
  1. logits = cond_fn(x, t_k) and, with CFG, cfg_combine(logits, uncond_fn(x, t_k)).
  2. At the still-masked positions draw x̂ from the top-k of softmax(logits / τ_k), where
     τ_k = temperature·(1 − k/K), annealed linearly in t as in MaskGCT; the last step is greedy argmax.
  3. Confidence = log softmax(logits)[x̂] + gumbel_scale·(1 − (k+1)/K)·Gumbel noise (MaskGIT puts the
     noise on log-confidences; the scale reaches 0 at the last step).
  4. Re-mask the remask_counts(n_i, k, K) least confident of this step's samples. Positions unmasked at
     an earlier step are out of the ranking altogether, so they are never re-masked (the paper's
     "confidence 1" for them is the same intent, made strict).

Batch independence: every random draw for item i comes from ``generators[i]`` and has one value per
currently masked position of item i, so item i's result does not depend on the rest of the batch or on
how far it is padded (as long as the logits functions are themselves per-item).

Choices the paper leaves open (../shared/notes/ns3_diffusion.md §4, §9): CFG acts on the logits, and its
std rescale uses a per-sample std over that sample's generated positions (all V logits there).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ns3.diffusion.schedule import remask_counts

# fn(tokens [B, N] long with mask_id at masked positions, t [B] float in (0, 1]) -> logits [B, N, V],
# V = the vocabulary without the mask token.
LogitsFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class SamplerConfig:
    steps: int = 4  # iterations per process (1 = the one-step mode)
    top_k: int = 20
    temperature: float = 1.5  # τ at t = 1, annealed linearly to 0; the last step is greedy
    gumbel_scale: float = 1.0  # Gumbel noise on log-confidences, scaled by (1 − (k+1)/steps)
    cfg_alpha: float = 1.0  # α in g_c + α(g_c − g_u)
    cfg_rescale: float = 1.0  # φ: 1 = the paper's full std rescale, 0 = plain CFG
    use_cfg: bool = True  # False: uncond_fn is never called even when given

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.temperature < 0 or self.gumbel_scale < 0:
            raise ValueError("temperature and gumbel_scale must be >= 0")


@dataclass
class SampleResult:
    tokens: Tensor  # [B, N] long: the input with every generate position filled
    nfe: int  # forward passes made, unconditional ones included
    trace: Tensor | None = None  # [steps, B] long: masked positions per item after each step


def count_nfe(steps: int, cfg: bool) -> int:
    """Forward passes of one process: steps, doubled by the unconditional branch under CFG."""
    return steps * (2 if cfg else 1)


def _masked_moments(x: Tensor, sel: Tensor) -> tuple[Tensor, Tensor]:
    """Per-sample mean and population std of x [B, N, V] over the positions sel [B, N] -> ([B], [B])."""
    m = sel[..., None].expand_as(x)
    count = m.sum(dim=(1, 2)).clamp_min(1)
    xs = torch.where(m, x, torch.zeros_like(x))  # where, not multiply: padding logits may be ±inf
    mean = xs.sum(dim=(1, 2)) / count
    dev = torch.where(m, x - mean[:, None, None], torch.zeros_like(x))
    return mean, (dev.pow(2).sum(dim=(1, 2)) / count).sqrt()


def cfg_combine(cond: Tensor, uncond: Tensor, alpha: float, phi: float, positions: Tensor) -> Tensor:
    """Classifier-free guidance on logits with the std rescale of Lin et al. -> [B, N, V] float32.

    cond, uncond [B, N, V] logits; positions [B, N] bool (the generated ones).
      g_cfg = g_c + α(g_c − g_u);  g_rescaled = std(g_c) · g_cfg / std(g_cfg);
      out   = φ · g_rescaled + (1 − φ) · g_cfg.
    std is per sample over that sample's ``positions`` only (all V logits of each), so padding and prompt
    positions never move it; the paper leaves both the target (logits vs hidden states) and the std's
    extent open. The per-sample factor is applied to every position (only ``positions`` are used). A
    sample whose std(g_cfg) is 0, or that has no positions, is not rescaled.
    """
    if cond.shape != uncond.shape or cond.dim() != 3 or positions.shape != cond.shape[:2]:
        raise ValueError(f"need cond == uncond [B, N, V] and positions [B, N]; got {tuple(cond.shape)}, "
                         f"{tuple(uncond.shape)}, {tuple(positions.shape)}")
    c, u = cond.float(), uncond.float()
    g_cfg = c + alpha * (c - u)
    sel = positions.to(torch.bool)
    _, std_c = _masked_moments(c, sel)
    _, std_cfg = _masked_moments(g_cfg, sel)
    ratio = torch.where(std_cfg > 0, std_c / torch.where(std_cfg > 0, std_cfg, torch.ones_like(std_cfg)),
                        torch.ones_like(std_cfg))
    scale = phi * ratio + (1.0 - phi)  # φ·r·g + (1−φ)·g
    return g_cfg * scale[:, None, None]


def _draw(gen: torch.Generator, n: int, device: torch.device) -> Tensor:
    """n uniforms in [0, 1) from ``gen`` (on its own device), moved to ``device``."""
    return torch.rand(n, generator=gen, device=gen.device).to(device)


def _sample_item(logits: Tensor, tau: float, top_k: int, gumbel: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """logits [m, V] of one item's masked positions -> (tokens [m] long, noisy log-confidences [m]).

    Two draws of m uniforms happen at every step whatever τ is, so an item's random stream does not
    depend on the temperature (greedy and top_k=1 follow the same noise).
    """
    m = logits.shape[0]
    u_token = _draw(gen, m, logits.device)
    u_gumbel = _draw(gen, m, logits.device)
    vals, idx = logits.topk(min(top_k, logits.shape[-1]), dim=-1)  # sorted, largest first
    if tau > 0:
        cdf = torch.softmax(vals / tau, dim=-1).cumsum(dim=-1)
        choice = (cdf < u_token[:, None]).sum(dim=-1).clamp_max(vals.shape[-1] - 1)  # inverse CDF
    else:
        choice = torch.zeros(m, dtype=torch.long, device=logits.device)
    tokens = idx.gather(1, choice[:, None])[:, 0]
    conf = torch.log_softmax(logits, dim=-1).gather(1, tokens[:, None])[:, 0]
    if gumbel > 0:
        conf = conf + gumbel * -torch.log(-torch.log(u_gumbel.clamp_min(1e-20)))
    return tokens, conf


def masked_sample(cond_fn: LogitsFn, tokens: Tensor, generate: Tensor, mask_id: int, config: SamplerConfig,
                  uncond_fn: LogitsFn | None = None,
                  generators: Sequence[torch.Generator] | None = None) -> SampleResult:
    """Fill the ``generate`` positions of tokens [B, N] by ``config.steps`` rounds of masked prediction.

    tokens [B, N] long: the fixed values (prompt, condition, padding) where ``generate`` [B, N] bool is
    False; these come back bit for bit. Generate positions start as ``mask_id`` whatever they hold. The
    logits functions must return [B, N, V] with V <= mask_id (the mask token is never a sample).
    ``generators``: one per item; None seeds item i with torch.Generator().manual_seed(i), which is
    batch-independent but the same for every call, so pass your own for varied samples.
    """
    if tokens.dim() != 2 or generate.shape != tokens.shape:
        raise ValueError(f"tokens and generate must both be [B, N]; got {tuple(tokens.shape)}, {tuple(generate.shape)}")
    b, n_pos = tokens.shape
    if generators is None:
        generators = [torch.Generator().manual_seed(i) for i in range(b)]
    if len(generators) != b:
        raise ValueError(f"need one generator per item: {b} items, {len(generators)} generators")
    steps = config.steps
    generate = generate.to(torch.bool)
    x = torch.where(generate, torch.full_like(tokens, mask_id), tokens)
    masked = generate.clone()
    n_gen = generate.sum(dim=1)  # [B]
    cfg = config.use_cfg and uncond_fn is not None
    nfe = 0
    trace = torch.zeros(steps, b, dtype=torch.long)

    for k in range(steps):
        t = torch.full((b,), 1.0 - k / steps, device=tokens.device)
        logits = cond_fn(x, t)
        nfe += 1
        if cfg:
            logits = cfg_combine(logits, uncond_fn(x, t), config.cfg_alpha, config.cfg_rescale, generate)
            nfe += 1
        if logits.shape[:2] != (b, n_pos) or logits.shape[-1] > mask_id:
            raise ValueError(f"logits must be [{b}, {n_pos}, V <= {mask_id}], got {tuple(logits.shape)}")
        last = k == steps - 1
        tau = 0.0 if last else config.temperature * (1.0 - k / steps)
        gumbel = config.gumbel_scale * (1.0 - (k + 1) / steps)
        keep_masked = remask_counts(n_gen, k, steps)

        for i in range(b):
            pos = masked[i].nonzero()[:, 0]  # this step's candidates, in position order
            if pos.numel() == 0:
                continue
            sampled, conf = _sample_item(logits[i, pos].float(), tau, config.top_k, gumbel, generators[i])
            r = min(int(keep_masked[i]), pos.numel())
            order = torch.sort(conf, stable=True).indices  # least confident first
            accept = order[r:]
            x[i, pos[accept]] = sampled[accept].to(x.dtype)
            masked[i, pos[accept]] = False
        trace[k] = masked.sum(dim=1).cpu()

    return SampleResult(tokens=x, nfe=nfe, trace=trace)
