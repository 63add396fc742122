"""Classic codecs as reconstruction baselines, run through their real command-line tools.

Opus at 6 kb/s (opusenc/opusdec, hard CBR, or ffmpeg's libopus) and Codec2 at 3.2 kb/s (c2enc/c2dec, which
work on 8 kHz raw PCM). A codec whose binaries are missing reports why, and the evaluation stage records the
skip instead of a number.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ns3.audio import SAMPLE_RATE, resample, to_int16


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    """Codecs add delay padding or drop a partial frame: compare on the original length."""
    out = np.zeros(n, np.float32)
    out[: min(n, len(audio))] = audio[:n]
    return out


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed ({res.returncode}): {res.stderr.strip()[:300]}")


@dataclass(frozen=True)
class ClassicCodec:
    """name: the system name used in metrics and tables; bitrate_kbps: nominal payload rate."""

    name: str
    bitrate_kbps: float
    tools: tuple[str, ...]

    def unavailable_reason(self) -> str | None:
        missing = [t for t in self.tools if shutil.which(t) is None]
        if missing:
            return f"{', '.join(missing)} not found on PATH (Debian: apt-get install {self._package()})"
        return None

    def _package(self) -> str:
        return {"opusenc": "opus-tools", "ffmpeg": "ffmpeg", "c2enc": "codec2"}.get(self.tools[0], self.tools[0])

    def roundtrip(self, audio: np.ndarray) -> np.ndarray:
        """[T] float32 at 16 kHz -> encoded and decoded [T] float32 at 16 kHz."""
        with tempfile.TemporaryDirectory() as d:
            return _fit(self._roundtrip(audio, Path(d)), len(audio))

    def _roundtrip(self, audio: np.ndarray, d: Path) -> np.ndarray:
        wav_in = d / "in.wav"
        if self.tools[0] == "c2enc":
            # Codec2 is narrow-band: 8 kHz raw signed 16-bit in and out.
            pcm8 = to_int16(resample(audio, SAMPLE_RATE, 8000))
            (d / "in.raw").write_bytes(pcm8.tobytes())
            mode = str(int(self.bitrate_kbps * 1000))
            _run(["c2enc", mode, str(d / "in.raw"), str(d / "out.c2")])
            _run(["c2dec", mode, str(d / "out.c2"), str(d / "out.raw")])
            dec = np.frombuffer((d / "out.raw").read_bytes(), np.int16).astype(np.float32) / 32768.0
            return resample(dec, 8000, SAMPLE_RATE)
        sf.write(str(wav_in), to_int16(audio), SAMPLE_RATE, subtype="PCM_16")
        if self.tools[0] == "opusenc":
            _run(["opusenc", "--quiet", "--bitrate", f"{self.bitrate_kbps:g}", "--hard-cbr", str(wav_in), str(d / "out.opus")])
            _run(["opusdec", "--quiet", "--rate", str(SAMPLE_RATE), str(d / "out.opus"), str(d / "out.wav")])
        else:
            _run(["ffmpeg", "-v", "error", "-y", "-i", str(wav_in), "-c:a", "libopus", "-b:a", f"{self.bitrate_kbps:g}k",
                  "-application", "voip", str(d / "out.ogg")])
            _run(["ffmpeg", "-v", "error", "-y", "-i", str(d / "out.ogg"), "-ar", str(SAMPLE_RATE), "-ac", "1", str(d / "out.wav")])
        dec, sr = sf.read(str(d / "out.wav"), dtype="float32")
        return resample(dec if dec.ndim == 1 else dec.mean(1), sr, SAMPLE_RATE)


OPUS = ClassicCodec("opus-6k", 6.0, ("opusenc", "opusdec"))
OPUS_FFMPEG = ClassicCodec("opus-6k", 6.0, ("ffmpeg",))
CODEC2 = ClassicCodec("codec2-3.2k", 3.2, ("c2enc", "c2dec"))


def classic_codecs() -> list[ClassicCodec]:
    """Opus (opus-tools, else ffmpeg) and Codec2; each may be unavailable (see ``unavailable_reason``)."""
    opus = OPUS if OPUS.unavailable_reason() is None or OPUS_FFMPEG.unavailable_reason() is not None else OPUS_FFMPEG
    return [opus, CODEC2]
