"""The release's zero-shot VC re-decoder: its own code embeddings, a prosody embedding restyled by a
transformer whose layer norms are conditioned on the *target* timbre, and its own generator."""
from __future__ import annotations

from torch import Tensor, nn

from ns3.codec.codes import FactorCodes
from ns3.codec.decoder import WaveGenerator
from ns3.codec.hparams import FACodecHParams
from ns3.codec.timbre import ConditionalLayerNorm
from ns3.codec.transformer import TransformerEncoder


def _tables(n: int, size: int, dim: int) -> nn.ModuleList:
    tables = nn.ModuleList(nn.Embedding(size, dim) for _ in range(n))
    for t in tables:
        nn.init.normal_(t.weight, std=1e-5)
    return tables


class Redecoder(nn.Module):
    def __init__(self, hp: FACodecHParams):
        super().__init__()
        d = hp.latent_dim
        self.prosody_embs = _tables(hp.n_prosody, hp.codebook_size, d)
        self.content_embs = _tables(hp.n_content, hp.codebook_size, d)
        self.detail_embs = _tables(hp.n_detail if hp.use_detail else 0, hp.codebook_size, d)
        self.prosody_restyler = TransformerEncoder(
            d, hp.timbre_layers, hp.attention_heads, hp.ffn_channels, hp.ffn_kernel, hp.transformer_dropout,
            hp.positional, style_adaptive=True,
        )
        self.cln = ConditionalLayerNorm(d)
        self.generator = WaveGenerator(d, hp.redecoder_channels, tuple(reversed(hp.strides)), hp.anti_alias)

    def embed(self, codes: FactorCodes, timbre: Tensor, use_detail: bool = False) -> Tensor:
        """codes [B, ., F], target timbre [B, D] -> decoder input [B, D, F]."""
        # With several prosody codebooks the release restyles after each addition; we restyle the sum
        # once (identical for the released single prosody codebook).
        p = sum(t(codes.prosody[:, i]) for i, t in enumerate(self.prosody_embs))
        x = self.prosody_restyler(p, condition=timbre)
        x = x + sum(t(codes.content[:, i]) for i, t in enumerate(self.content_embs))
        if use_detail and codes.detail.shape[1] > 0:
            x = x + sum(t(codes.detail[:, i]) for i, t in enumerate(self.detail_embs))
        return x.transpose(1, 2)

    def forward(self, codes: FactorCodes, timbre: Tensor, use_detail: bool = False) -> Tensor:
        """-> wav [B, F * hop]"""
        return self.generator(self.cln(self.embed(codes, timbre, use_detail), timbre)).squeeze(1)

