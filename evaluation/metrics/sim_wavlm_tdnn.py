"""SIM-O / SIM-R with the paper's speaker model: WavLM-Large + ECAPA-TDNN, UniSpeech speaker verification.

NaturalSpeech 3 (like VALL-E, Voicebox and seed-tts-eval) scores speaker similarity with the UniSpeech
``downstreams/speaker_verification`` model, ``ECAPA_TDNN_SMALL(feat_dim=1024, feat_type='wavlm_large')``. Its
checkpoint ``wavlm_large_finetune.pth`` is a torch pickle ``{'model': state_dict, ...}`` in which:
- ``feature_extract.model.*`` is the WavLM-Large upstream (s3prl names, see ``wavlm_encoder``);
- ``feature_weight`` ``[layers + 1]`` weights WavLM's hidden states (softmax, then a weighted sum);
- ``layer1`` .. ``layer4``, ``conv``, ``pooling``, ``bn``, ``linear`` are the ECAPA-TDNN head (see ``ecapa_tdnn``);
- ``loss_calculator.*`` is the AAM-softmax speaker classifier of fine-tuning (the published file has
  ``loss_calculator.projection.weight``). Inference does not use it; it is the one group of keys set aside.
Every other key must be one of the model's and every parameter and buffer must be in the file; otherwise loading
fails and names the keys. The reference code loads with ``strict=False``, which would score silently with
randomly initialised layers if a key were renamed.

The file holds no config. The sizes are read from tensor shapes, so a tiny checkpoint in the same layout loads as
well. Three things are assumed from WavLM-Large: conv strides (5 for the first layer, 2 after), the relative
position ``max_distance`` of 800, and waveform normalisation. Scoring follows the reference: one 16 kHz utterance
at a time, with no trimming, and the score is the cosine of the two 256-d embeddings.
"""
from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import LocalModel, MetricValue, PairwiseMetric, cosine, cpu_inference, register
from .ecapa_tdnn import EcapaDims, EcapaTdnn
from .wavlm_encoder import WavLM, WavLMDims

UPSTREAM = "feature_extract.model."
TRAINING_ONLY = ("loss_calculator.",)  # key prefixes kept in the file but not part of the inference model


@dataclass(frozen=True)
class WavLMTDNNDims:
    wavlm: WavLMDims
    ecapa: EcapaDims


class _S3prlExpert(nn.Module):
    """Holds WavLM as ``.model``, so its keys read ``feature_extract.model.*`` like s3prl's UpstreamExpert's."""

    def __init__(self, model: WavLM) -> None:
        super().__init__()
        self.model = model


class WavLMTDNN(EcapaTdnn):
    """WavLM-Large hidden states, weighted and instance-normalised, into the ECAPA-TDNN head.

    It subclasses the head, not wraps it, because the checkpoint keeps the head's keys at the top level, next to
    ``feature_extract`` and ``feature_weight`` (UniSpeech's ``ECAPA_TDNN`` is a single module too).
    """

    def __init__(self, dims: WavLMTDNNDims) -> None:
        if dims.ecapa.in_dim != dims.wavlm.hidden:
            raise ValueError(f"ECAPA input size {dims.ecapa.in_dim} != WavLM hidden size {dims.wavlm.hidden}")
        super().__init__(dims.ecapa)
        self.dims = dims
        self.feature_extract = _S3prlExpert(WavLM(dims.wavlm))
        self.feature_weight = nn.Parameter(torch.zeros(dims.wavlm.layers + 1))

    @property
    def min_samples(self) -> int:
        return self.dims.wavlm.min_samples

    def features(self, wav: Tensor) -> Tensor:
        """``[B, T]`` 16 kHz -> ``[B, hidden, T']``: the softmax(feature_weight)-weighted sum of all hidden states,
        instance-normalised per channel over time."""
        states = torch.stack(self.feature_extract.model.hidden_states(wav))  # [L+1, B, T', D]
        weights = torch.softmax(self.feature_weight, dim=0).view(-1, 1, 1, 1)
        x = (weights * states).sum(dim=0).transpose(1, 2) + 1e-6  # UniSpeech adds the 1e-6 before the norm too
        return F.instance_norm(x)

    def forward(self, wav: Tensor) -> Tensor:
        """``[B, T]`` equal-length 16 kHz waveforms -> ``[B, embedding]`` speaker embeddings."""
        return self.head(self.features(wav))


# ---------------------------------------------------------------------------------------------
# the checkpoint


def _shape(state: Mapping[str, Tensor], key: str) -> tuple[int, ...]:
    if key not in state:
        raise ValueError(f"missing key {key!r}")
    return tuple(state[key].shape)


def _indices(state: Mapping[str, Tensor], pattern: str) -> int:
    """How many consecutive indices ``N`` the keys matching ``pattern`` (with one ``(\\d+)``) use, from 0."""
    found = {int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))}
    if not found:
        raise ValueError(f"no key matches {pattern!r}")
    if found != set(range(len(found))):
        raise ValueError(f"keys matching {pattern!r} skip an index: {sorted(found)}")
    return len(found)


def infer_dims(state: Mapping[str, Tensor]) -> WavLMTDNNDims:
    """Read every size from the state dict's tensor shapes (see the module docstring for the three assumptions)."""
    fe = UPSTREAM + "feature_extractor.conv_layers."
    n_conv = _indices(state, re.escape(fe) + r"(\d+)\.0\.weight")
    convs = [_shape(state, f"{fe}{i}.0.weight") for i in range(n_conv)]  # [C_out, C_in, K]
    if f"{fe}0.2.1.weight" not in state:
        raise ValueError(f"missing key {fe + '0.2.1.weight'!r}: only WavLM-Large's layer-norm feature extractor "
                         "is supported")
    channels = tuple(c[0] for c in convs)
    enc = UPSTREAM + "encoder."
    # not post_extract_proj's shape: that projection is absent when the widths agree, so its absence must stay
    # a nameable missing key when they do not
    hidden = _shape(state, enc + "layer_norm.weight")[0]
    layers = _indices(state, re.escape(enc) + r"layers\.(\d+)\.fc1\.weight")
    num_buckets, heads = _shape(state, enc + "layers.0.self_attn.relative_attention_bias.weight")
    pos = _shape(state, enc + "pos_conv.0.weight_v")  # [D, D / groups, K]
    wavlm = WavLMDims(conv_channels=channels, conv_kernels=tuple(c[2] for c in convs),
                      conv_strides=(5,) + (2,) * (n_conv - 1), conv_bias=f"{fe}0.0.bias" in state,
                      hidden=hidden, layers=layers, heads=heads, ffn=_shape(state, enc + "layers.0.fc1.weight")[0],
                      pos_conv_kernel=pos[2], pos_conv_groups=hidden // pos[1], num_buckets=num_buckets)
    n_weights = _shape(state, "feature_weight")[0]
    if n_weights != layers + 1:
        raise ValueError(f"feature_weight has {n_weights} entries; a {layers}-layer WavLM has {layers + 1} hidden "
                         "states")
    first = _shape(state, "layer1.conv.weight")  # [C, D, K]
    width = _shape(state, "layer2.Res2Conv1dReluBn.convs.0.weight")  # [C / scale, C / scale, K]
    pooled, attention = _shape(state, "pooling.linear1.weight")[1], _shape(state, "pooling.linear1.weight")[0]
    ecapa = EcapaDims(in_dim=first[1], channels=first[0], first_kernel=first[2], res2_kernel=width[2],
                      scale=first[0] // width[0], se_dim=_shape(state, "layer2.SE_Connect.linear1.weight")[0],
                      pooled=pooled, attention=attention, embedding=_shape(state, "linear.weight")[0])
    return WavLMTDNNDims(wavlm=wavlm, ecapa=ecapa)


def _listed(keys: list[str], limit: int = 8) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


@dataclass(frozen=True)
class LoadedWavLMTDNN:
    model: WavLMTDNN  # in eval mode
    dims: WavLMTDNNDims
    set_aside: tuple[str, ...]  # training-only keys of the file (loss_calculator.*)


def build_wavlm_tdnn(state: Mapping[str, Tensor], where: str = "state dict") -> LoadedWavLMTDNN:
    """A ``WavLMTDNN`` from a state dict in the UniSpeech layout, loaded strictly (ValueError naming the keys)."""
    set_aside = tuple(sorted(k for k in state if k.startswith(TRAINING_ONLY)))
    state = {k: v for k, v in state.items() if k not in set_aside}
    try:
        dims = infer_dims(state)
        model = WavLMTDNN(dims)
    except ValueError as e:
        raise ValueError(f"{where}: not a WavLM-TDNN speaker checkpoint in the UniSpeech layout: {e}") from None
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = [f"{what} keys [{_listed(keys)}]" for what, keys in (("missing", missing), ("unexpected", unexpected))
                 if keys]
        raise ValueError(f"{where}: not a WavLM-TDNN speaker checkpoint in the UniSpeech layout: {'; '.join(parts)}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:  # size mismatches: the shapes disagree with the sizes read from other tensors
        raise ValueError(f"{where}: inconsistent tensor shapes: {e}") from None
    return LoadedWavLMTDNN(model.eval(), dims, set_aside)


def load_wavlm_tdnn(path: str | Path, device: str = "cpu") -> LoadedWavLMTDNN:
    """Load ``wavlm_large_finetune.pth`` (or a file in its layout) from a local path."""
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises several types for a non-checkpoint file)
        raise ValueError(f"{path}: cannot read as a torch checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("model"), Mapping):
        raise ValueError(f"{path}: expected a dict with the speaker model's state dict under 'model' (the layout of "
                         "UniSpeech's wavlm_large_finetune.pth)")
    loaded = build_wavlm_tdnn(ckpt["model"], where=str(path))
    loaded.model.to(device)
    return loaded


# ---------------------------------------------------------------------------------------------
# the metric


@register("sim_wavlm_tdnn")
class WavLMTDNNSimilarity(LocalModel, PairwiseMetric):
    """cos(embedding(prompt or its resynthesis), embedding(generated)) in [-1, 1], as in NS3's SIM-O / SIM-R."""

    name = "sim_wavlm_tdnn"
    higher_is_better = True
    model_description = "WavLM-TDNN speaker checkpoint (UniSpeech wavlm_large_finetune.pth)"

    CACHE_SIZE = 4096  # embeddings of 256 floats: a few MB

    def __init__(self, checkpoint: str | Path | None = None, device: str = "cpu") -> None:
        self._init_local(checkpoint, device)
        # A TTS evaluation scores each generated clip against the prompt and against its resynthesis, and each
        # prompt against every system; a 300M-parameter forward per repeat would double or quadruple the cost.
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()

    def _load_model(self) -> WavLMTDNN:
        return load_wavlm_tdnn(self.checkpoint, self.device).model

    def embed(self, wav: np.ndarray) -> np.ndarray:
        """``[T]`` 16 kHz float32 -> ``[embedding]`` (256 for the real checkpoint)."""
        wav = np.ascontiguousarray(wav, np.float32)
        key = hashlib.blake2b(wav.tobytes(), digest_size=16).digest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        model = self._load()
        with cpu_inference():
            out = model(torch.from_numpy(wav)[None].to(self.device))
        emb = out[0].float().cpu().numpy()
        emb.setflags(write=False)  # shared through the cache
        self._cache[key] = emb
        if len(self._cache) > self.CACHE_SIZE:
            self._cache.popitem(last=False)
        return emb

    def _score(self, reference: np.ndarray, degraded: np.ndarray) -> MetricValue:
        need = self._load().min_samples
        short = min(len(reference), len(degraded))
        if short < need:
            return MetricValue.unavailable(f"utterance of {short} samples is shorter than WavLM's {need}-sample "
                                           "receptive field")
        return MetricValue.of(cosine(self.embed(reference), self.embed(degraded)))
