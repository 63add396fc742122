"""Audio I/O and the framing every stage shares.

The codec runs at 16 kHz with a hop of 200 samples, so everything frame-level in ns3 (phone labels,
F0, codes, durations) lives on the same 80 frames/s grid. Keep that arithmetic here, in one place.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16_000
HOP_LENGTH = 200
FRAME_RATE = SAMPLE_RATE // HOP_LENGTH  # 80 frames/s


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


class DamagedAudioError(AudioError):
    """The header reads, the stream does not: a truncated or corrupted file (it decodes short, or fails mid-way)."""


def num_frames(num_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Frames on the codec grid for a waveform of ``num_samples`` (ceil: a partial hop is a frame)."""
    return -(-int(num_samples) // hop_length)


def to_mono_float(audio: np.ndarray) -> np.ndarray:
    """[T] or [T, C] any dtype -> [T] float32 in [-1, 1]."""
    a = np.asarray(audio)
    if a.dtype.kind in "iu":
        a = a.astype(np.float32) / float(-np.iinfo(a.dtype).min)  # libsndfile's scaling (2^(bits-1))
    a = a.astype(np.float32, copy=False)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise AudioError(f"expected 1-D or 2-D audio, got shape {a.shape}")
    return a


def resample(audio: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited polyphase resampling (deterministic, no random dither). [T] -> [T']"""
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, verify: bool = True) -> np.ndarray:
    """Read any libsndfile format -> mono float32 at ``sample_rate``. Raises AudioError naming the file.

    ``verify``: the decoded length must equal the header's (``DamagedAudioError`` otherwise). Readers trust
    headers to stay cheap, so this decode is where a truncated stream is caught; it costs one comparison.
    """
    try:
        f = sf.SoundFile(str(path))
    except Exception as e:  # soundfile raises several types; callers want one
        raise AudioError(f"{path}: unreadable audio ({e.__class__.__name__}: {e})") from e
    with f:
        expected, sr = f.frames, f.samplerate
        try:
            audio = f.read(dtype="float32", always_2d=False)
        except Exception as e:  # e.g. "flac decoder lost sync" in a damaged FLAC stream
            raise DamagedAudioError(f"{path}: damaged audio stream after a valid header "
                                    f"({e.__class__.__name__}: {e}); re-copy or re-encode the file") from e
    if verify and len(audio) != expected:
        raise DamagedAudioError(f"{path}: decoded {len(audio)} of the {expected} frames its header states "
                                "(truncated or corrupted); re-copy or re-encode the file")
    if audio.size == 0:
        raise AudioError(f"{path}: no samples")
    return resample(to_mono_float(audio), sr, sample_rate)


def decode_audio_bytes(data: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """FLAC/WAV bytes -> mono float32 at ``sample_rate``."""
    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return resample(to_mono_float(audio), sr, sample_rate)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> int16 (clipped), with libsndfile's 32768 scale so that int16 -> float -> int16 is exact."""
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def encode_flac(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """[T] float or int16 -> FLAC bytes (PCM_16). Deterministic for the same input."""
    pcm = audio if audio.dtype == np.int16 else to_int16(audio)
    buf = io.BytesIO()
    sf.write(buf, pcm, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a wav/flac atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    sf.write(str(tmp), to_int16(audio) if audio.dtype != np.int16 else audio, sample_rate, format=fmt, subtype="PCM_16")
    tmp.replace(path)


def log_mel(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    n_mels: int = 80,
    n_fft: int = 1024,
    hop_length: int = HOP_LENGTH,
    win_length: int = 800,
    fmin: float = 0.0,
    fmax: float | None = 8000.0,
) -> np.ndarray:
    """[T] -> [n_mels, frames] natural-log mel spectrogram on the codec grid (frames = num_frames(T)).

    Centred STFT gives 1 + T // hop frames; we trim to ``num_frames`` so labels and features line up.
    """
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio.astype(np.float32), sr=sample_rate, n_fft=n_fft, hop_length=hop_length,
        win_length=win_length, n_mels=n_mels, fmin=fmin, fmax=fmax, power=1.0, center=True,
    )
    mel = np.log(np.maximum(mel, 1e-5)).astype(np.float32)
    n = num_frames(len(audio), hop_length)
    if mel.shape[1] < n:
        mel = np.pad(mel, ((0, 0), (0, n - mel.shape[1])), mode="edge")
    return mel[:, :n]
