"""Own checkpoint format, file-level API and the `codec` CLI."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from ns3.codec import FACodec, FACodecHParams, load_codec, load_codes, save_codec
from ns3.codec.api import convert_voice_file, decode_to_file, encode_file
from ns3.codec.cli import app
from ns3.codec.official import export_official

TINY = FACodecHParams.mini(
    encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4,
    ffn_channels=32, timbre_layers=1, prosody_encoder_layers=1, num_phones=7, num_speakers=5,
)


@pytest.fixture()
def ckpt(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "codec.pt"
    save_codec(path, FACodec(TINY))
    return path


def _wav(path, n, seed, sr=16000):
    sf.write(path, 0.2 * np.random.default_rng(seed).standard_normal(n).astype(np.float32), sr)
    return path


def test_checkpoint_round_trip_is_exact_and_weights_only(ckpt):
    raw = torch.load(ckpt, weights_only=True)
    assert raw["format"] == "ns3.facodec" and raw["version"] == 1
    assert FACodecHParams.from_dict(raw["hparams"]) == TINY
    model = load_codec(ckpt)
    again = FACodec(TINY)
    again.load_state_dict(raw["state_dict"])
    wav = 0.1 * torch.randn(1, 900)
    assert torch.equal(model.eval()(wav).wav_hat, again.eval()(wav).wav_hat)
    assert not list(ckpt.parent.glob(".*tmp"))  # no temp file left behind


def test_load_codec_rejects_other_files(tmp_path):
    torch.save({"format": "something"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not an ns3.facodec checkpoint"):
        load_codec(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError):
        load_codec(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_codec(tmp_path / "junk.pt")


def test_encode_decode_files(ckpt, tmp_path):
    wav = _wav(tmp_path / "a.wav", 3333, 0)
    enc = encode_file(ckpt, wav, tmp_path / "a.npz")
    assert enc.codes.num_frames == 17
    loaded, sr = load_codes(tmp_path / "a.npz")
    assert sr == 16000 and torch.equal(loaded.codes.stacked(), enc.codes.stacked())
    torch.testing.assert_close(loaded.timbre, enc.timbre)
    out = decode_to_file(ckpt, tmp_path / "a.npz", tmp_path / "a_hat.wav")
    audio, sr = sf.read(out)
    assert sr == 16000 and audio.shape == (3333,)


def test_encode_resamples_other_rates(ckpt, tmp_path):
    wav = _wav(tmp_path / "b.wav", 22050, 1, sr=22050)
    assert encode_file(ckpt, wav).codes.num_frames == 80


def test_voice_conversion_file(ckpt, tmp_path):
    out = convert_voice_file(ckpt, _wav(tmp_path / "s.wav", 2000, 2), _wav(tmp_path / "p.wav", 2400, 3), tmp_path / "vc.wav")
    assert sf.read(out)[0].shape == (2000,)


def test_cli_commands(ckpt, tmp_path):
    runner = CliRunner()
    wav = _wav(tmp_path / "c.wav", 1800, 4)
    r = runner.invoke(app, ["encode", str(ckpt), str(wav), "--out", str(tmp_path / "c.npz")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(ckpt), str(tmp_path / "c.npz"), "--out", str(tmp_path / "c_hat.wav"), "--no-detail"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["vc", str(ckpt), str(wav), str(wav), "--out", str(tmp_path / "vc.wav")])
    assert r.exit_code == 0, r.output
    assert sf.read(tmp_path / "c_hat.wav")[0].shape == (1800,)


def test_cli_import_official(tmp_path):
    torch.manual_seed(0)
    src = FACodec(dataclasses.replace(TINY, pad_input=False))
    pub = export_official(src)
    torch.save(pub["encoder"], tmp_path / "enc.bin")
    torch.save(pub["decoder"], tmp_path / "dec.bin")
    r = CliRunner().invoke(app, ["import-official", "--encoder", str(tmp_path / "enc.bin"), "--decoder",
                                 str(tmp_path / "dec.bin"), "--out", str(tmp_path / "imported.pt"), "--heads", "load"])
    assert r.exit_code == 0, r.output
    model = load_codec(tmp_path / "imported.pt")
    wav = 0.1 * torch.randn(1, 1000)
    assert torch.equal(model.encode(wav).codes.stacked(), src.eval().encode(wav).codes.stacked())
