"""The exported diffusion model: {"format", "version", "hparams", "codec_hash", "stats", "state_dict"}.

``codec_hash`` names the codec whose codes it was trained on (`ns3.data.code_shards.file_sha256`): a model
only makes sense with that codec's decoder. ``stats`` holds what the data said (duration cap, per-level
majority codes, phone mean durations) for the baselines the evaluation prints beside the model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ns3.diffusion.hparams import DiffusionHParams
from ns3.diffusion.model import FactorizedDiffusion
from ns3.solvers.checkpoint import atomic_save

DIFFUSION_FORMAT = "ns3.diffusion"
DIFFUSION_VERSION = 1


def save_diffusion(path: str | Path, model: FactorizedDiffusion, codec_hash: str, stats: dict[str, Any]) -> Path:
    model = getattr(model, "module", model)
    payload = {"format": DIFFUSION_FORMAT, "version": DIFFUSION_VERSION, "hparams": model.hp.to_dict(),
               "codec_hash": codec_hash, "stats": stats,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_save(payload, Path(path))
    return Path(path)


def load_diffusion(path: str | Path, map_location: str | torch.device = "cpu",
                   codec_path: str | Path | None = None) -> tuple[FactorizedDiffusion, dict]:
    """-> (model in eval mode, {"codec_hash", "stats"}). With ``codec_path``: refuse (``CodecMismatchError``) a
    model trained on another codec's codes, whose output that codec's decoder cannot make sense of."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"diffusion checkpoint not found: {path}; run `ns3 train-diffusion`")
    obj = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(obj, dict) or obj.get("format") != DIFFUSION_FORMAT:
        raise ValueError(f"{path}: not an {DIFFUSION_FORMAT} checkpoint")
    if obj.get("version") != DIFFUSION_VERSION:
        raise ValueError(f"{path}: {DIFFUSION_FORMAT} version {obj.get('version')} (expected {DIFFUSION_VERSION})")
    if codec_path is not None:
        from ns3.data.code_shards import check_codec_hash

        check_codec_hash(obj["codec_hash"], codec_path, f"{path} was trained on codes of",
                         "re-run `ns3 extract-codes` and `ns3 train-diffusion` with this codec")
    model = FactorizedDiffusion(DiffusionHParams.from_dict(obj["hparams"]))
    model.load_state_dict(obj["state_dict"], strict=True)
    return model.eval(), {"codec_hash": obj["codec_hash"], "stats": obj["stats"]}
