"""Factorized vector quantization (FVQ) in three groups: prosody, content, detail.

Each codebook projects the D-dim latent to a low-dim space (the information bottleneck), picks the
entry of highest cosine similarity (both sides L2-normalised), passes the gradient straight through,
and projects the *raw* codebook row back to D. Within a group, codebooks quantize residuals in
cascade. Detail reads x - sg(q_prosody + q_content), so it only models what the other two missed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ns3.codec.codes import FactorCodes
from ns3.codec.layers import WNLinear


def _masked_mse(a: Tensor, b: Tensor, mask: Tensor | None) -> Tensor:
    """Mean squared error over [B, F, C], counting only frames where ``mask`` [B, F] is True."""
    se = (a - b).pow(2).mean(dim=-1)
    if mask is None:
        return se.mean()
    w = mask.to(se.dtype)
    return (se * w).sum() / w.sum().clamp_min(1.0)


@dataclass
class VQResult:
    """quantized [B, D, F] (straight-through), codes [B, N, F] long, scalar losses summed over codebooks."""

    quantized: Tensor
    codes: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor


RUN_STATISTICS = (".usage",)  # state_dict key suffixes that are training statistics, not published weights


class FactorizedVQ(nn.Module):
    """One codebook. x [B, D, F] -> VQResult with codes [B, 1, F].

    ``restart_decay`` > 0 enables dead-code restarts in training: an entry whose usage (an exponential moving
    average of how many frames pick it per step) falls below 5% of the uniform share is re-seeded with an
    encoder vector from the batch. At the first step every entry is "dead", so this doubles as a
    data-dependent initialisation; without it a freshly initialised codebook collapses onto a few entries
    within tens of steps (measured on the mini codec: 1-2 of 1024 entries in use after 20 steps).
    """

    def __init__(self, dim: int, codebook_size: int, codebook_dim: int, bottleneck: bool = True,
                 restart_decay: float = 0.0, normalized: bool = False):
        super().__init__()
        self.bottleneck = bottleneck
        # normalized=True: encoder vectors and code vectors live on the unit sphere (as the lookup already
        # assumes), so the VQ losses are bounded; from-scratch training diverged without it (codebook loss
        # 1e2 -> 1e17 within 400 steps on the mini codec). False decodes raw rows, as the release does.
        self.normalized = normalized
        cdim = codebook_dim if bottleneck else dim
        self.in_proj: nn.Module = WNLinear(dim, cdim) if bottleneck else nn.Identity()
        self.out_proj: nn.Module = WNLinear(cdim, dim) if bottleneck else nn.Identity()
        self.codebook = nn.Embedding(codebook_size, cdim)
        self.restart_decay = restart_decay
        # Saved so a resumed run restarts exactly the codes an uninterrupted one would; it is a statistic of
        # training, not a weight: official import/export leave it out (see RUN_STATISTICS).
        self.register_buffer("usage", torch.zeros(codebook_size))

    @torch.no_grad()
    def _restart_dead(self, z_e: Tensor, codes: Tensor, mask: Tensor | None) -> None:
        """z_e [B, F, c], codes [B, F]. Identical on every DDP rank (counts all-reduced, seeds broadcast)."""
        import torch.distributed as dist

        flat_z = z_e.reshape(-1, z_e.shape[-1])
        flat_c = codes.reshape(-1)
        if mask is not None:
            keep = mask.reshape(-1)
            flat_z, flat_c = flat_z[keep], flat_c[keep]
        k = self.codebook.num_embeddings
        counts = torch.bincount(flat_c, minlength=k).to(self.usage.dtype)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            counts /= dist.get_world_size()
        self.usage.mul_(self.restart_decay).add_(counts * (1 - self.restart_decay))
        expected = max(flat_c.numel(), 1) / k
        dead = self.usage < 0.05 * expected
        n_dead = int(dead.sum())
        if n_dead == 0 or flat_z.shape[0] == 0:
            return
        pick = torch.randint(0, flat_z.shape[0], (n_dead,), device=flat_z.device)
        seeds = flat_z[pick] + 1e-3 * torch.randn_like(flat_z[pick])
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(seeds, src=0)
        self.codebook.weight.data[dead] = seeds.to(self.codebook.weight.dtype)
        self.usage[dead] = expected

    def lookup(self, z_e: Tensor) -> Tensor:
        """z_e [B, F, c] -> codes [B, F]: index of the entry with the largest cosine similarity."""
        sim = F.normalize(z_e, dim=-1) @ F.normalize(self.codebook.weight, dim=-1).t()
        return sim.argmax(dim=-1)

    def quantize_latent(self, z_e: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """In code space: z_e [B, F, c] -> (z_st [B, F, c], codes [B, F], codebook_loss, commitment_loss)."""
        if self.normalized:
            z_e = F.normalize(z_e, dim=-1)
        codes = self.lookup(z_e)
        if self.training and self.restart_decay > 0:
            self._restart_dead(z_e.detach(), codes, mask)
            codes = self.lookup(z_e)
        z_q = self._rows(codes)
        codebook_loss = _masked_mse(z_q, z_e.detach(), mask)  # pulls entries towards the encoder
        commitment_loss = _masked_mse(z_e, z_q.detach(), mask)  # keeps the encoder near its entries
        z_st = z_e + (z_q - z_e).detach()
        return z_st, codes, codebook_loss, commitment_loss

    def forward(self, x: Tensor, mask: Tensor | None = None) -> VQResult:
        z_st, codes, cb, commit = self.quantize_latent(self.in_proj(x.transpose(1, 2)), mask)
        return VQResult(self.out_proj(z_st).transpose(1, 2), codes.unsqueeze(1), cb, commit)

    def _rows(self, codes: Tensor) -> Tensor:
        rows = self.codebook(codes)
        return F.normalize(rows, dim=-1) if self.normalized else rows

    def embed(self, codes: Tensor) -> Tensor:
        """codes [B, F] -> [B, D, F] (the decoder-side value of each code)."""
        return self.out_proj(self._rows(codes)).transpose(1, 2)


class ResidualFVQ(nn.Module):
    """``n`` codebooks in cascade; each quantizes what the previous ones left. x [B, D, F] -> VQResult (codes [B, n, F])."""

    def __init__(self, n: int, dim: int, codebook_size: int, codebook_dim: int, bottleneck: bool = True,
                 restart_decay: float = 0.0, normalized: bool = False):
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(
            FactorizedVQ(dim, codebook_size, codebook_dim, bottleneck, restart_decay, normalized) for _ in range(n))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> VQResult:
        residual, total = x, torch.zeros_like(x)
        codes, cb, commit = [], x.new_zeros(()), x.new_zeros(())
        for layer in self.layers:
            r = layer(residual, mask)
            residual = residual - r.quantized
            total = total + r.quantized
            codes.append(r.codes)
            cb, commit = cb + r.codebook_loss, commit + r.commitment_loss
        codes_t = torch.cat(codes, dim=1) if codes else x.new_zeros((x.shape[0], 0, x.shape[2]), dtype=torch.long)
        return VQResult(total, codes_t, cb, commit)

    def embed(self, codes: Tensor) -> Tensor:
        """codes [B, n, F] -> summed [B, D, F]"""
        if codes.shape[1] != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} codebooks, got codes of shape {tuple(codes.shape)}")
        out = codes.new_zeros((codes.shape[0], self.dim, codes.shape[2]), dtype=torch.float32)
        for i, layer in enumerate(self.layers):
            out = out + layer.embed(codes[:, i])
        return out


@dataclass
class QuantizerOutput:
    """codes per factor; factors: name -> quantized [B, D, F]; losses summed over all codebooks."""

    codes: FactorCodes
    factors: dict[str, Tensor]
    codebook_loss: Tensor
    commitment_loss: Tensor


class FactorizedQuantizer(nn.Module):
    """Prosody, content and (optional) detail groups.

    ``factorized=False`` chains the groups into one plain residual VQ (the "-factorization" codec): content
    quantizes what prosody left, detail what both left, with gradients through the whole cascade.
    """

    def __init__(
        self, dim: int, n_prosody: int, n_content: int, n_detail: int,
        codebook_size: int, codebook_dim: int, bottleneck: bool = True, restart_decay: float = 0.0,
        normalized: bool = False, factorized: bool = True,
    ):
        super().__init__()
        self.factorized = factorized
        args = (dim, codebook_size, codebook_dim, bottleneck, restart_decay, normalized)
        self.prosody = ResidualFVQ(n_prosody, *args)
        self.content = ResidualFVQ(n_content, *args)
        self.detail = ResidualFVQ(n_detail, *args) if n_detail else None

    def forward(self, latent: Tensor, prosody_input: Tensor, mask: Tensor | None = None) -> QuantizerOutput:
        """latent [B, D, F] (encoder output), prosody_input [B, D, F] (latent in V1, mel encoder in V2)."""
        p = self.prosody(prosody_input, mask)
        c = self.content(latent if self.factorized else latent - p.quantized, mask)
        results = {"prosody": p, "content": c}
        if self.detail is not None:
            pc = p.quantized + c.quantized
            results["detail"] = self.detail(latent - (pc.detach() if self.factorized else pc), mask)
        empty = latent.new_zeros((latent.shape[0], 0, latent.shape[2]), dtype=torch.long)
        d_codes = results["detail"].codes if "detail" in results else empty
        return QuantizerOutput(
            codes=FactorCodes(p.codes, c.codes, d_codes),
            factors={k: r.quantized for k, r in results.items()},
            codebook_loss=sum((r.codebook_loss for r in results.values()), latent.new_zeros(())),
            commitment_loss=sum((r.commitment_loss for r in results.values()), latent.new_zeros(())),
        )

    def embed(self, codes: FactorCodes, use_detail: bool = True) -> dict[str, Tensor]:
        """Codes -> quantized factors [B, D, F] (name -> tensor); detail left out unless present and wanted."""
        out = {"prosody": self.prosody.embed(codes.prosody), "content": self.content.embed(codes.content)}
        if use_detail and self.detail is not None and codes.detail.shape[1] > 0:
            out["detail"] = self.detail.embed(codes.detail)
        return out
