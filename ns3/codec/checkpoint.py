"""Our own FACodec checkpoint: {"format", "version", "hparams", "state_dict"}, loadable with weights_only."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from ns3.codec.hparams import FACodecHParams
from ns3.codec.model import FACodec

CODEC_FORMAT = "ns3.facodec"
CODEC_VERSION = 1


def save_codec(path: str | Path, model: FACodec) -> None:
    """Write ``model`` (unwrapped; DDP/compile wrappers are stripped) atomically to ``path``."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CODEC_FORMAT,
        "version": CODEC_VERSION,
        "hparams": model.hp.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_codec(path: str | Path, map_location: str | torch.device = "cpu") -> FACodec:
    """Read a checkpoint written by ``save_codec`` -> FACodec in eval mode (strict load)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"codec checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a loadable torch checkpoint ({e.__class__.__name__}: {e})") from e
    if not isinstance(obj, dict) or obj.get("format") != CODEC_FORMAT:
        hint = " (for the released Amphion files use `ns3 codec import-official` first)" if isinstance(obj, dict) else ""
        raise ValueError(f"{path}: not an {CODEC_FORMAT} checkpoint{hint}")
    if obj.get("version") != CODEC_VERSION:
        raise ValueError(f"{path}: {CODEC_FORMAT} version {obj.get('version')} is not supported (expected {CODEC_VERSION})")
    model = FACodec(FACodecHParams.from_dict(obj["hparams"]))
    try:
        model.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match its hparams: {e}") from e
    return model.eval()

