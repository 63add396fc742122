"""The codec evaluation end to end on a tiny random codec: explicit length alignment and UTMOS when configured."""
import math

import numpy as np
import pytest
import torch
from test_utmos import TINY, randomized

from evaluation.codec_eval import OURS, evaluate_codec, flat_metrics, match_length


def test_match_length_trims_or_pads_within_one_hop_and_refuses_beyond():
    wav = np.arange(1, 1021, dtype=np.float32)
    assert np.array_equal(match_length(wav, 1000, 200, "u"), wav[:1000])  # whole-frame padding cut off
    padded = match_length(wav[:900], 1000, 200, "u")  # the release's framing: up to a hop short
    assert len(padded) == 1000 and np.array_equal(padded[:900], wav[:900]) and not padded[900:].any()
    assert np.array_equal(match_length(wav, 1020, 200, "u"), wav)
    with pytest.raises(ValueError, match=r"u: 1020 samples decoded for 700 input samples.*\(200\)"):
        match_length(wav, 700, 200, "u")


@pytest.fixture(scope="module")
def codec_and_shards(micro_corpus, tmp_path_factory):
    from ns3.codec import FACodec
    from ns3.codec.checkpoint import save_codec
    from ns3.codec.hparams import FACodecHParams
    from ns3.corpus.readers import read_librispeech
    from ns3.data.shards import list_shards
    from ns3.data.sharding import shard_corpus

    root = tmp_path_factory.mktemp("codec_eval")
    torch.manual_seed(0)
    save_codec(root / "codec.pt", FACodec(FACodecHParams.mini(anti_alias=False, heads=False)))
    read = read_librispeech(micro_corpus, min_duration=0.5, max_duration=30)
    shard_corpus(read, root / "shards", utts_per_shard=4, valid_speakers=1, test_speakers=2, seed=5)
    return root / "codec.pt", list_shards(root / "shards", "test"), root


def test_evaluation_reports_utmos_with_a_checkpoint(codec_and_shards):
    codec, shards, root = codec_and_shards
    utmos_ckpt = root / "utmos_tiny.pt"
    torch.save(randomized(TINY).state_dict(), utmos_ckpt)
    result = evaluate_codec(
        codec, shards, root / "out", max_utterances=2, vc_pairs=1, classic=False, samples=0, aligner_dir=None,
        whisper_checkpoint=None, wavlm_checkpoint=None, utmos_checkpoint=str(utmos_ckpt), variant="baseline",
        overrides={}, seed=0,
    )
    recon, vc = result["reconstruction"][OURS], result["vc"][OURS]
    assert isinstance(recon["utmos"], float) and math.isfinite(recon["utmos"])
    assert isinstance(vc["utmos"], float) and math.isfinite(vc["utmos"])
    assert "utmos" not in result["metric_notes"]
    flat = flat_metrics(result)  # the same name in MLflow as in the JSON the report reads
    assert flat[f"eval/{OURS}/utmos"] == recon["utmos"] and flat["eval/vc/utmos"] == vc["utmos"]
    # Without a checkpoint: no number, and the note says why (the report footnotes it).
    bare = evaluate_codec(
        codec, shards, root / "bare", max_utterances=2, vc_pairs=1, classic=False, samples=0, aligner_dir=None,
        whisper_checkpoint=None, wavlm_checkpoint=None, utmos_checkpoint=None, variant="baseline",
        overrides={}, seed=0,
    )
    assert bare["reconstruction"][OURS]["utmos"] is None and bare["vc"][OURS]["utmos"] is None
    assert "no UTMOS checkpoint" in bare["metric_notes"]["utmos"]
    assert bare["reconstruction"][OURS]["stoi"] == result["reconstruction"][OURS]["stoi"]


def test_timbre_effect_is_zero_for_identical_outputs_and_grows_with_the_change():
    from evaluation.codec_eval import timbre_effect

    rng = np.random.default_rng(0)
    a = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    assert timbre_effect([a], [a.copy()]) == 0.0
    louder, much_louder = timbre_effect([2 * a], [a]), timbre_effect([8 * a], [a])
    assert 0 < louder < much_louder
    assert timbre_effect([], []) is None


def test_vc_reports_what_the_prompt_timbre_changed(codec_and_shards):
    codec, shards, root = codec_and_shards
    result = evaluate_codec(
        codec, shards, root / "vc", max_utterances=2, vc_pairs=1, classic=False, samples=0, aligner_dir=None,
        whisper_checkpoint=None, wavlm_checkpoint=None, utmos_checkpoint=None, variant="baseline",
        overrides={}, seed=0,
    )
    assert result["vc"][OURS]["timbre_effect"] > 0  # even a random decoder uses its timbre input
