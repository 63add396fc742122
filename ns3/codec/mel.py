"""Log-mel front end and encoder for the V2 prosody input (the first mel bins, not the encoder output)."""
from __future__ import annotations

import librosa
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ns3.codec.transformer import TransformerEncoder


class MelFrontEnd(nn.Module):
    """wav [B, T] -> natural-log magnitude mel [B, n_mels, floor(T / hop)] (T a multiple of hop -> T / hop frames).

    Uncentred STFT after reflect-padding (n_fft - hop) / 2 on both sides, as the released V2 does; the
    filterbank and window are buffers so an imported checkpoint brings its own.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, win_length: int, n_mels: int, fmin: float, fmax: float):
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        self.register_buffer("mel_basis", torch.from_numpy(basis).float())
        self.register_buffer("hann_window", torch.hann_window(win_length))

    def forward(self, wav: Tensor) -> Tensor:
        pad = (self.n_fft - self.hop_length) // 2
        # reflect needs more samples than the pad; very short inputs fall back to zeros
        mode = "reflect" if wav.shape[-1] > pad else "constant"
        x = F.pad(wav.unsqueeze(1), (pad, pad), mode=mode).squeeze(1)
        spec = torch.stft(
            x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length, window=self.hann_window,
            center=False, normalized=False, onesided=True, return_complex=True,
        )
        mag = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        return torch.log(torch.clamp(self.mel_basis @ mag, min=1e-5))


class ProsodyMelEncoder(nn.Module):
    """Low mel bins -> D-dim prosody features. mel [B, bins, F] -> [B, D, F]"""

    def __init__(self, bins: int, dim: int, layers: int, heads: int, hidden: int, kernel: int, dropout: float, positional: str):
        super().__init__()
        self.linear = nn.Linear(bins, dim)
        self.encoder = TransformerEncoder(dim, layers, heads, hidden, kernel, dropout, positional)

    def forward(self, mel: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.encoder(self.linear(mel.transpose(1, 2)), mask).transpose(1, 2)
