"""Zero-shot generation with the factorized diffusion, batched over utterances of different lengths.

Order (paper §3.3.1, §4.1): phone-level prosody (CFG) -> durations (no CFG) -> length regulator -> p -> c1 ->
c2 -> d1 -> d2 -> d3 (CFG on each). Each process sees only its own attribute's prompt as an unmasked prefix:
``prompts`` maps "duration", "prosody", "content", "detail" to an utterance (its phones, durations,
phone-level prosody codes and frame codes); one prompt for all is the usual case. The unconditional branch
of CFG runs the same network on the target alone (prompt removed), as in training's prompt drop.

NFE with the defaults: 4 x 2 (phone-level prosody) + 4 (duration) + 6 x 4 x 2 = 60; one-step: 2 + 1 + 12 = 15;
without CFG (iterations doubled): 8 + 4 + 6 x 8 = 60. Timbre is never generated: the decoder takes the
timbre prompt's vector.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from ns3.diffusion.model import FactorizedDiffusion
from ns3.diffusion.networks import TASK_DURATION, TASK_PROSODY, length_regulate
from ns3.diffusion.sampler import SamplerConfig, masked_sample

PROMPT_ROLES = ("duration", "prosody", "content", "detail")


@dataclass
class PromptUtterance:
    """One prompt: phone ids / durations / phone-level prosody codes [P], frame codes [L, T] (long tensors)."""

    phone_ids: Tensor
    durations: Tensor
    phone_prosody: Tensor
    codes: Tensor


@dataclass(frozen=True)
class GenerationConfig:
    steps: int = 4  # per process; 1 = the one-step mode (15 NFE)
    duration_steps: int = 4
    use_cfg: bool = True  # False: the -cfg ablation (steps doubled unless ``double_steps_without_cfg`` is off)
    double_steps_without_cfg: bool = True
    cfg_alpha: float = 1.0
    cfg_rescale: float = 1.0
    top_k: int = 20
    temperature: float = 1.5
    gumbel_scale: float = 1.0

    def one_step(self) -> "GenerationConfig":
        """The same sampler with one iteration per process (15 NFE; paper Table 10)."""
        return replace(self, steps=1)

    def sampler(self, cfg: bool) -> SamplerConfig:
        steps = self.steps * (2 if cfg and not self.use_cfg and self.double_steps_without_cfg else 1)
        return SamplerConfig(steps=steps, top_k=self.top_k, temperature=self.temperature,
                             gumbel_scale=self.gumbel_scale, cfg_alpha=self.cfg_alpha, cfg_rescale=self.cfg_rescale,
                             use_cfg=cfg and self.use_cfg)

    def duration_sampler(self) -> SamplerConfig:
        steps = 1 if self.steps == 1 else self.duration_steps
        return SamplerConfig(steps=steps, top_k=self.top_k, temperature=self.temperature,
                             gumbel_scale=self.gumbel_scale, use_cfg=False)


@dataclass
class Generated:
    codes: list[Tensor]  # per item [L, T_i]
    durations: list[Tensor]  # per item [P_i]
    phone_prosody: list[Tensor]  # per item [P_i]
    nfe: int
    nfe_by_process: dict[str, int] = field(default_factory=dict)


def _pack(prefixes: Sequence[Tensor], targets: Sequence[Tensor], pad: int) -> tuple[Tensor, Tensor, Tensor]:
    """Per item prefix [..., A] + target [..., B] along the last dim -> (x [B, ..., N], mask [B, N], target [B, N])."""
    n = max(p.shape[-1] + t.shape[-1] for p, t in zip(prefixes, targets))
    lead = targets[0].shape[:-1]
    x = torch.full((len(targets), *lead, n), pad, dtype=torch.long)
    mask = torch.zeros(len(targets), n, dtype=torch.bool)
    tgt = torch.zeros(len(targets), n, dtype=torch.bool)
    for i, (p, t) in enumerate(zip(prefixes, targets)):
        a, b = p.shape[-1], t.shape[-1]
        x[i, ..., :a], x[i, ..., a:a + b] = p, t
        mask[i, :a + b] = True
        tgt[i, a:a + b] = True
    return x, mask, tgt


def _unpack(x: Tensor, target: Tensor) -> list[Tensor]:
    """Inverse of _pack's target part: x [B, ..., N] -> per item [..., B_i]."""
    return [x[i][..., target[i]] for i in range(x.shape[0])]


def _target_only(fn: Callable[[Tensor, Tensor, Tensor], Tensor], target: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """An uncond LogitsFn: run ``fn(tokens_t, t, mask_t)`` on each item's target alone, scatter logits back."""
    lengths = target.sum(1)
    width = int(lengths.max())
    mask_t = torch.arange(width)[None] < lengths[:, None]

    def uncond(tokens: Tensor, t: Tensor) -> Tensor:
        lead = tokens.shape[1:-1]
        shifted = torch.zeros((tokens.shape[0], *lead, width), dtype=tokens.dtype)
        for i in range(tokens.shape[0]):
            shifted[i, ..., : int(lengths[i])] = tokens[i][..., target[i]]
        logits = fn(shifted, t, mask_t)
        out = logits.new_zeros((tokens.shape[0], tokens.shape[-1], logits.shape[-1]))
        for i in range(tokens.shape[0]):
            out[i, target[i]] = logits[i, : int(lengths[i])]
        return out

    return uncond


@torch.no_grad()
def generate(model: FactorizedDiffusion, phone_ids: Sequence[Tensor], prompts: Sequence[Mapping[str, PromptUtterance]],
             config: GenerationConfig = GenerationConfig(), generators: Sequence[torch.Generator] | None = None) -> Generated:
    """Target phone ids (one [P_i] per item) + per-item attribute prompts -> codes, durations, phone-level prosody."""
    model.eval()
    hp = model.hp
    b = len(phone_ids)
    gens = list(generators) if generators is not None else [torch.Generator().manual_seed(i) for i in range(b)]
    role = lambda i, r: prompts[i][r] if r in prompts[i] else prompts[i]["prosody"]  # noqa: E731
    nfe: dict[str, int] = {}

    def encode(prefix_phones: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        ids, mask, tgt = _pack(prefix_phones, phone_ids, 0)
        return model.encoder(ids, mask), mask, tgt

    # Phone-level prosody (CFG).
    pros_prompts = [role(i, "prosody") for i in range(b)]
    states, pmask, ptgt = encode([p.phone_ids for p in pros_prompts])
    tokens, _, _ = _pack([p.phone_prosody for p in pros_prompts], [torch.full_like(x, hp.mask_id) for x in phone_ids], 0)
    tgt_states, tgt_mask, _ = encode([x[:0] for x in phone_ids])
    sc = config.sampler(cfg=True)
    res = masked_sample(
        lambda x, t: model.phone_model(TASK_PROSODY, x, states, t, pmask), tokens, ptgt, hp.mask_id, sc,
        uncond_fn=_target_only(lambda x, t, m: model.phone_model(TASK_PROSODY, x, tgt_states, t, m), ptgt), generators=gens)
    phone_prosody = _unpack(res.tokens, ptgt)
    nfe["phone_prosody"] = res.nfe

    # Durations (no CFG), conditioned on the phone-level prosody codes.
    dur_prompts = [role(i, "duration") for i in range(b)]
    states, dmask, dtgt = encode([p.phone_ids for p in dur_prompts])
    mask_id = model.phone_model.duration_mask_id
    prefix = [p.durations.clamp(1, hp.max_duration) if hp.duration_uses_prompt else torch.full_like(p.durations, mask_id)
              for p in dur_prompts]
    tokens, _, _ = _pack(prefix, [torch.full_like(x, mask_id) for x in phone_ids], 0)
    cond_codes, _, _ = _pack([p.phone_prosody for p in dur_prompts], phone_prosody, 0)
    dur_fn = lambda x, t: model.phone_model(TASK_DURATION, x, states, t, dmask, cond_codes)  # noqa: E731
    if hp.duration_objective == "ce":
        res = masked_sample(dur_fn, tokens, dtgt, mask_id, config.duration_sampler(), generators=gens)
        durations = [d.clamp_min(1) for d in _unpack(res.tokens, dtgt)]
        nfe["duration"] = res.nfe
    else:
        pred = dur_fn(tokens, torch.ones(b))[..., 0]
        durations = [torch.exp(d).round().long().clamp(1, hp.max_duration) for d in _unpack(pred, dtgt)]
        nfe["duration"] = 1

    # Frame levels, coarse to fine, each with its attribute's prompt (CFG).
    frames_len = [int(d.sum()) for d in durations]
    generated = [torch.full((hp.num_levels, n), hp.mask_id, dtype=torch.long) for n in frames_len]
    sc = config.sampler(cfg=True)
    # The unconditional branch's phone condition: the target phones alone, regulated by their durations.
    t_cond, _ = length_regulate(tgt_states, torch.nn.utils.rnn.pad_sequence(durations, batch_first=True), tgt_mask)
    for q in range(hp.num_levels):
        attr = hp.level_attributes[q]
        ps = [role(i, attr) for i in range(b)]
        ids, mask_p, _ = _pack([p.phone_ids for p in ps], phone_ids, 0)
        durs, _, _ = _pack([p.durations for p in ps], durations, 0)
        cond, fmask = length_regulate(model.encoder(ids, mask_p), durs, mask_p)
        shown = list(hp.prompt_levels(q))
        prefix = []
        for p in ps:
            pc = torch.full_like(p.codes, hp.mask_id)
            pc[shown] = p.codes[shown]
            prefix.append(pc)
        tokens, fmask2, ftgt = _pack(prefix, generated, hp.mask_id)
        cond = cond[:, : tokens.shape[-1]]
        lev = torch.full((b,), q, dtype=torch.long)

        def cond_fn(x: Tensor, t: Tensor, q=q, tokens=tokens, cond=cond, fmask=fmask2) -> Tensor:
            full = tokens.clone()
            full[:, q] = x
            return model.frame_model(full, lev, cond, t, fmask)

        def uncond_inner(x: Tensor, t: Tensor, m: Tensor, q=q, tokens=tokens, ftgt=ftgt, t_cond=t_cond) -> Tensor:
            width = x.shape[-1]
            full = torch.full((b, hp.num_levels, width), hp.mask_id, dtype=torch.long)
            for i in range(b):
                n = int(m[i].sum())
                full[i, :, :n] = tokens[i][:, ftgt[i]]
            full[:, q] = x
            return model.frame_model(full, lev, t_cond[:, :width], t, m)

        res = masked_sample(cond_fn, tokens[:, q], ftgt, hp.mask_id, sc, uncond_fn=_target_only(uncond_inner, ftgt),
                            generators=gens)
        for i, row in enumerate(_unpack(res.tokens, ftgt)):
            generated[i][q] = row
        nfe[hp.levels[q]] = res.nfe
    return Generated(generated, durations, phone_prosody, sum(nfe.values()), nfe)
