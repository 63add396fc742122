"""File-level front doors: encode a wav to codes, decode codes to a wav, convert a voice."""
from __future__ import annotations

from pathlib import Path

import torch

from ns3.audio import load_audio, write_audio
from ns3.codec.checkpoint import load_codec
from ns3.codec.codes import Encoded, load_codes, save_codes
from ns3.codec.model import FACodec

CodecLike = FACodec | str | Path


def _codec(ckpt: CodecLike) -> FACodec:
    return ckpt.eval() if isinstance(ckpt, FACodec) else load_codec(ckpt)


def _wav(path: str | Path, model: FACodec) -> torch.Tensor:
    return torch.from_numpy(load_audio(path, model.hp.sample_rate))[None]


def encode_file(ckpt: CodecLike, wav_path: str | Path, out_npz: str | Path | None = None) -> Encoded:
    """Audio file (any libsndfile format, resampled to the codec rate) -> Encoded (batch 1); optionally saved as .npz."""
    model = _codec(ckpt)
    enc = model.encode(_wav(wav_path, model))
    if out_npz is not None:
        save_codes(out_npz, enc, model.hp.sample_rate, model.hp.hop_length)
    return enc


def decode_to_file(ckpt: CodecLike, codes_npz: str | Path, out_wav: str | Path, use_detail: bool = True) -> Path:
    """Codes .npz (from ``encode_file``) -> wav file trimmed to the original length."""
    model = _codec(ckpt)
    enc, sr = load_codes(codes_npz)
    if sr != model.hp.sample_rate:
        raise ValueError(f"{codes_npz}: codes made at {sr} Hz, this codec runs at {model.hp.sample_rate} Hz")
    if enc.timbre.shape[-1] != model.hp.latent_dim:
        raise ValueError(f"{codes_npz}: timbre has {enc.timbre.shape[-1]} dims, this codec expects {model.hp.latent_dim}")
    wav = model.decode(enc.codes, enc.timbre, use_detail=use_detail)[0, : int(enc.num_samples[0])]
    write_audio(out_wav, wav.numpy(), model.hp.sample_rate)
    return Path(out_wav)


def convert_voice_file(
    ckpt: CodecLike, source: str | Path, prompt: str | Path, out: str | Path, keep_detail: bool = False
) -> Path:
    """Say ``source``'s words with ``prompt``'s voice (source codes + prompt timbre) -> ``out`` wav."""
    model = _codec(ckpt)
    wav = model.convert_voice(_wav(source, model), _wav(prompt, model), keep_detail=keep_detail)
    write_audio(out, wav[0].numpy(), model.hp.sample_rate)
    return Path(out)
