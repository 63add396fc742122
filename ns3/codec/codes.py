"""Typed containers for FACodec codes and their on-disk form (.npz)."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CODES_FORMAT = "ns3.facodec.codes"
CODES_VERSION = 1
FACTORS = ("prosody", "content", "detail")


@dataclass
class FactorCodes:
    """Code indices per factor, long tensors: prosody [B, Np, F], content [B, Nc, F], detail [B, Nd, F].

    With the no-detail ablation ``detail`` is [B, 0, F].
    """

    prosody: Tensor
    content: Tensor
    detail: Tensor

    @property
    def num_frames(self) -> int:
        return self.prosody.shape[-1]

    def stacked(self) -> Tensor:
        """[B, Np + Nc + Nd, F] in the release's order: prosody, content, detail."""
        return torch.cat([self.prosody, self.content, self.detail], dim=1)

    @classmethod
    def from_stacked(cls, codes: Tensor, n_prosody: int, n_content: int) -> "FactorCodes":
        """[B, N, F] -> FactorCodes (the first ``n_prosody`` rows are prosody, the next ``n_content`` content)."""
        a, b = n_prosody, n_prosody + n_content
        return cls(codes[:, :a], codes[:, a:b], codes[:, b:])

    def to(self, device: torch.device | str) -> "FactorCodes":
        return FactorCodes(self.prosody.to(device), self.content.to(device), self.detail.to(device))

    def __getitem__(self, i: int | slice) -> "FactorCodes":
        """Select batch items (keeps the batch dimension for slices)."""
        return FactorCodes(self.prosody[i], self.content[i], self.detail[i])


@dataclass
class Encoded:
    """What ``FACodec.encode`` returns: codes [B, ., F] and the timbre vector [B, D].

    ``num_samples`` [B] are the input lengths, so a decode can be trimmed back to them.
    """

    codes: FactorCodes
    timbre: Tensor
    num_samples: Tensor | None = None


def save_codes(path: str | Path, enc: Encoded, sample_rate: int, hop_length: int, item: int = 0) -> None:
    """Write one item of ``enc`` as .npz (atomic): prosody/content/detail [N, F] int32, timbre [D] float32."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: getattr(enc.codes, name)[item].cpu().numpy().astype(np.int32) for name in FACTORS}
    arrays["timbre"] = enc.timbre[item].detach().cpu().numpy().astype(np.float32)
    n = enc.num_samples[item].item() if enc.num_samples is not None else enc.codes.num_frames * hop_length
    arrays.update(
        format=np.array(CODES_FORMAT), version=np.array(CODES_VERSION), num_samples=np.array(int(n)),
        sample_rate=np.array(int(sample_rate)), hop_length=np.array(int(hop_length)),
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_codes(path: str | Path) -> tuple[Encoded, int]:
    """Read a codes .npz written by ``save_codes`` -> (Encoded with batch 1, sample_rate)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npz codes file ({e})") from e
    missing = [k for k in (*FACTORS, "timbre", "format", "version", "num_samples", "sample_rate") if k not in z]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; write codes with `ns3 codec encode`")
    if str(z["format"]) != CODES_FORMAT or int(z["version"]) != CODES_VERSION:
        raise ValueError(f"{path}: format {z['format']} v{z['version']}, expected {CODES_FORMAT} v{CODES_VERSION}")
    codes = FactorCodes(*(torch.from_numpy(z[name].astype(np.int64))[None] for name in FACTORS))
    enc = Encoded(codes, torch.from_numpy(z["timbre"])[None], torch.tensor([int(z["num_samples"])]))
    return enc, int(z["sample_rate"])
