"""Zero-shot TTS on a micro corpus with tiny random-weight models: prompts, synthesis, the stage, its scores, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ns3.codec import FACodec, FACodecHParams
from ns3.codec.checkpoint import save_codec
from ns3.data.code_shards import file_sha256, iter_code_shard
from ns3.data.shards import iter_shard, list_shards
from ns3.diffusion.generate import GenerationConfig

HP = FACodecHParams.mini(
    encoder_channels=4, latent_dim=32, decoder_channels=32, codebook_size=64, codebook_dim=4, ffn_channels=32,
    timbre_layers=1, heads=False, anti_alias=False, decoder="istft", istft_channels=16, istft_layers=1,
    normalized_codes=True,
)


@pytest.fixture(scope="module")
def models(micro_corpus, tmp_path_factory):
    """Shards + alignments + codes of the micro corpus, a tiny codec and an untrained tiny diffusion on its codes,
    and a one-actor RAVDESS-layout style set."""
    from ns3.align.model import AlignerConfig
    from ns3.align.stage import align_shards
    from ns3.align.train import TrainSchedule
    from ns3.corpus.readers import read_librispeech
    from ns3.corpus.synth import synthesize_corpus
    from ns3.data.sharding import shard_corpus
    from ns3.diffusion.checkpoint import save_diffusion
    from ns3.diffusion.hparams import DiffusionHParams
    from ns3.diffusion.model import FactorizedDiffusion
    from ns3.recipes.extract import extract_codes
    from ns3.text.inventory import PhoneInventory

    root = tmp_path_factory.mktemp("tts")
    read = read_librispeech(micro_corpus, min_duration=0.5, max_duration=30)
    shard_corpus(read, root / "shards", utts_per_shard=4, valid_speakers=1, test_speakers=2, seed=5)
    shards = [p for s in ("train", "valid", "test") for p in list_shards(root / "shards", s)]
    align_shards(shards, root / "align", config=AlignerConfig(channels=16, kernel_size=3, dilations=(1,)),
                 schedule=TrainSchedule(rounds=1, flat_epochs=1, epochs_per_round=1))
    torch.manual_seed(0)
    save_codec(root / "codec.pt", FACodec(HP))
    extract_codes(root / "codec.pt", shards, root / "align", root / "codes")
    inventory = PhoneInventory.load(root / "align" / "inventory.json")
    dhp = DiffusionHParams(num_phones=len(inventory), codebook_size=HP.codebook_size, max_duration=8, encoder_layers=1,
                           encoder_dim=16, encoder_heads=2, encoder_hidden=32, encoder_kernel=3, phone_layers=1,
                           phone_dim=16, frame_layers=1, frame_dim=24, heads=2, hidden=32, dropout=0.0)
    save_diffusion(root / "diffusion.pt", FactorizedDiffusion(dhp), file_sha256(root / "codec.pt"), {})
    synthesize_corpus(root / "style_corpus", num_speakers=1, utts_per_speaker=1, min_words=3, max_words=4,
                      style_dir=root / "style", style_actors=1, style_repetitions=1, seed=3, workers=1)
    return root


@pytest.fixture(scope="module")
def engine(models):
    from ns3.tts.engine import TTSEngine

    return TTSEngine.load(models / "codec.pt", models / "diffusion.pt", models / "align")


def test_a_prompt_from_audio_and_transcript_equals_its_code_shard_entry(models, engine):
    shard = list_shards(models / "shards", "test")[0]
    sample = next(iter_shard(shard))
    coded = {u.key: u for u in iter_code_shard(models / "codes" / shard.name)}[sample.key]
    p = engine.prompts([sample.audio], texts=[sample.text])[0]
    assert p.phones_source == "transcript"
    np.testing.assert_array_equal(p.phone_ids, coded.phone_ids)
    np.testing.assert_array_equal(p.durations, coded.durations)
    np.testing.assert_array_equal(p.codes, coded.codes)
    np.testing.assert_array_equal(p.phone_prosody, coded.phone_prosody)
    np.testing.assert_allclose(p.timbre, coded.timbre, atol=1e-6)
    recognised = engine.prompts([sample.audio])[0]  # no transcript: the aligner's phone loop, and it says so
    assert recognised.phones_source == "recognised" and recognised.durations.sum() == coded.durations.sum()


def test_clip_snaps_to_phone_boundaries(models, engine):
    from ns3.tts.prompt import clip_prompt

    sample = next(iter_shard(list_shards(models / "shards", "test")[0]))
    full = engine.prompts([sample.audio], texts=[sample.text])[0]
    hp = engine.codec.hp
    clip = clip_prompt(full, 0.3, 1.0, hp.hop_length, hp.frame_rate)
    assert 1 <= len(clip.durations) < len(full.durations) and clip.durations.sum() <= hp.frame_rate * 1.0
    assert clip.codes.shape[1] == clip.durations.sum() and len(clip.audio) == clip.durations.sum() * hp.hop_length
    bounds = np.concatenate(([0], np.cumsum(full.durations)))
    k0 = int(np.flatnonzero(bounds <= 0.3 * hp.frame_rate)[-1])  # the boundary at or before the start
    np.testing.assert_array_equal(clip.codes, full.codes[:, bounds[k0]: bounds[k0] + clip.codes.shape[1]])


def test_synthesis_lengths_nfe_and_attribute_prompts(models, engine):
    from ns3.tts.engine import TTSRequest

    samples = list(iter_shard(list_shards(models / "shards", "test")[0]))[:2]
    a, b = engine.prompts([s.audio for s in samples], texts=[s.text for s in samples])
    base = TTSRequest(a, text="a short test sentence")
    out = engine.synthesize([base], GenerationConfig(), seed=1)[0]
    assert out.nfe == 60 and len(out.wav) == out.codes.shape[1] * engine.codec.hp.hop_length
    assert int(out.durations.sum()) == out.codes.shape[1] and out.rtf > 0
    assert engine.synthesize([base], GenerationConfig(steps=1), seed=1)[0].nfe == 15
    again = engine.synthesize([base], GenerationConfig(), seed=1)[0]
    np.testing.assert_array_equal(again.codes, out.codes)  # seeded per item
    # Each attribute's prompt reaches its own process: another timbre prompt changes the decoded audio only,
    # another prosody prompt changes the generated codes.
    timbre = engine.synthesize([TTSRequest(a, text="a short test sentence", timbre_prompt=b)], seed=1)[0]
    np.testing.assert_array_equal(timbre.codes, out.codes)
    assert not np.allclose(timbre.wav, out.wav)
    prosody = engine.synthesize([TTSRequest(a, text="a short test sentence", attribute_prompts={"prosody": b})], seed=1)[0]
    assert prosody.codes.shape != out.codes.shape or not np.array_equal(prosody.codes, out.codes)


def test_the_stage_synthesizes_the_lists_skips_a_bad_item_and_its_scores_have_reference_rows(models, engine, tmp_path):
    from dataclasses import replace

    from evaluation.codec_eval import phone_recognizer
    from evaluation.tts_eval import Scorers, evaluate_tts, flat_metrics
    from ns3.recipes.synthesize import AudioStore, ravdess_pool, synthesize_lists
    from ns3.tts import protocols as P

    pool = P.manifest_pool(models / "shards" / "manifest.jsonl", "test")
    items = P.librispeech_protocol(pool, seed=0, prompt_seconds=1.0)
    assert len(items) == 2
    bad = replace(items[0], id="librispeech-missing", prompt_key="no-such-utterance")
    rpool = ravdess_pool(models / "style")
    ravdess = P.ravdess_protocol(rpool, seed=0)
    assert len(ravdess) == 8
    out = tmp_path / "tts"
    res = synthesize_lists(engine, {P.LIBRISPEECH: [*items, bad], P.RAVDESS: ravdess[:3]},
                           {P.LIBRISPEECH: AudioStore(pool, models / "shards"), P.RAVDESS: AudioStore(rpool, None)},
                           out, GenerationConfig(), seed=0)
    assert res.listed == {P.LIBRISPEECH: 3, P.RAVDESS: 3} and res.synthesized == {P.LIBRISPEECH: 2, P.RAVDESS: 3}
    assert [s["id"] for s in res.skipped] == ["librispeech-missing"] and "no-such-utterance" in res.skipped[0]["detail"]
    assert P.read_list(out / "lists" / "librispeech.jsonl") == [*items, bad]  # the published list, as listed
    rows = [json.loads(x) for x in (out / "librispeech" / "items.jsonl").read_text().splitlines()]
    assert {r["systems"]["generated"]["nfe"] for r in rows} == {60} and {r["systems"]["generated_one_step"]["nfe"]
                                                                        for r in rows} == {15}
    assert all(r["prompt_clip_seconds"] <= 1.0 for r in rows)
    assert not (out / "ravdess" / "generated_one_step").exists()  # one-step: the LibriSpeech list only

    scorers = Scorers(phone_recognizer(models / "align"))
    result = evaluate_tts(out, tmp_path / "eval", scorers, variant="baseline", profile="test", overrides={},
                          hparams={"sample": {"steps": 4}})
    ls = result["protocols"][P.LIBRISPEECH]["systems"]
    assert set(ls) == {"generated", "generated_one_step", "resynthesis", "ground_truth"}
    reasons = result["protocols"][P.LIBRISPEECH]["reasons"]
    assert ls["ground_truth"]["sim_o"] is not None and ls["ground_truth"]["per"] is not None
    for system, row in ls.items():  # random weights may give no speech: then the reason, never a zero
        for key in ("per", "sim_o", "sim_r"):
            assert row[key] is not None or reasons[f"{system}/{key}"]
        assert row["wer"] is None  # no ASR configured: unavailable
    assert "no Whisper checkpoint" in reasons["generated/wer"]
    assert ls["generated"]["nfe"] == 60 and ls["generated_one_step"]["nfe"] == 15
    rv = result["protocols"][P.RAVDESS]["systems"]
    assert rv["ground_truth"]["mcd_acc"] == 1.0 and rv["ground_truth"]["mcd"] == 0.0  # its own recording
    assert rv["generated"]["mcd"] > 0 and 0 <= rv["generated"]["mcd_acc"] <= 1
    flat = flat_metrics(result)
    assert flat["tts/librispeech/generated/nfe"] == 60 and "tts/librispeech/generated/wer" not in flat
    assert (tmp_path / "eval" / result["samples"][0]["generated"]).exists()


def test_cli_tts_and_vc(models, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ns3.audio import write_audio
    from ns3.cli import app

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file://{tmp_path / 'mlruns'}")
    sample = next(iter_shard(list_shards(models / "shards", "test")[0]))
    write_audio(tmp_path / "prompt.wav", sample.audio)
    paths = ["--codec", str(models / "codec.pt"), "--diffusion", str(models / "diffusion.pt"),
             "--align-dir", str(models / "align")]
    r = CliRunner().invoke(app, ["tts", "hello there", "--prompt", str(tmp_path / "prompt.wav"), "--out",
                                 str(tmp_path / "out.wav"), "--one-step", *paths])
    assert r.exit_code == 0, r.output
    assert '"nfe": 15' in r.output and "recognised" in r.output and (tmp_path / "out.wav").stat().st_size > 1000
    r = CliRunner().invoke(app, ["vc", str(tmp_path / "out.wav"), str(tmp_path / "prompt.wav"), "--out",
                                 str(tmp_path / "vc.wav"), "--codec", str(models / "codec.pt")])
    assert r.exit_code == 0, r.output and (tmp_path / "vc.wav").exists()
