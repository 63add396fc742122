"""Official-checkpoint import: published key layout, equality with an independent reference forward."""
from __future__ import annotations

import pytest
import torch

from facodec_reference import (
    Layout, published_shapes, random_published, ref_analyze, ref_encode, ref_generate, ref_mel20,
    ref_redecoder_vq2emb, ref_vq2emb,
)
from ns3.codec import FACodec, FACodecHParams, load_codec, save_codec
from ns3.codec.official import OfficialCheckpointError, export_official, import_official, import_state_dicts

SMALL = Layout(ngf=4, dim=32, dec_ch=64, redec_ch=32, cb_size=64, cb_dim=4, layers=2, ffn=48, kernel=5,
               phones=11, speakers=7, n_mels=40)


def test_layout_matches_published_release_counts_and_shapes():
    """Known answers from the published listing for the released configuration."""
    v1, v2 = published_shapes(Layout()), published_shapes(Layout(), v2=True)
    assert (len(v1["encoder"]), len(v1["decoder"]), len(v1["redecoder"])) == (206, 545, 265)
    assert (len(v2["encoder"]), len(v2["decoder"])) == (208, 598)
    assert v1["encoder"]["block.4.block.4.weight_v"] == (512, 256, 10)
    assert v1["decoder"]["model.1.block.1.weight_g"] == (1024, 1, 1)
    assert v1["decoder"]["model.3.block.1.weight_v"] == (256, 128, 8)
    assert v1["decoder"]["x_timbre_predictor.1.heads.0.weight"] == (245200, 256)
    assert v1["redecoder"]["model.6.weight_v"] == (1, 80, 7)
    params = sum(torch.Size(s).numel() for k, s in v1["encoder"].items() if not k.endswith("filter"))
    assert params == 4_210_528


@pytest.mark.parametrize("v2", [False, True])
def test_paper_model_exports_exactly_the_published_keys(v2):
    hp = FACodecHParams.paper(prosody_input="v2" if v2 else "v1", redecoder=not v2)
    with torch.device("meta"):
        model = FACodec(hp)
    ours = {f: {k: tuple(t.shape) for k, t in sd.items()} for f, sd in export_official(model).items()}
    want = published_shapes(Layout(), v2=v2)
    if v2:
        want.pop("redecoder")
    assert ours == want


@pytest.fixture(scope="module")
def small_v1():
    sds = random_published(SMALL, seed=1)
    model = import_state_dicts(sds["encoder"], sds["decoder"], sds["redecoder"], variant="v1", heads="none")
    return sds, model


@pytest.mark.parametrize("n", [3000, 16180])
def test_v1_import_matches_reference_at_batch_one(small_v1, n):
    sds, model = small_v1
    wav = 0.3 * torch.randn(1, n, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        x = ref_encode(sds["encoder"], SMALL, wav)
        emb, codes, spk = ref_analyze(sds["decoder"], SMALL, x)
        ref_wav = ref_generate(sds["decoder"], SMALL, emb, spk)[:, 0]
        enc = model.encode(wav)
        out = model(wav)
    assert enc.codes.num_frames == x.shape[-1] == model.hp.frames_for(n)  # 16180 -> 81 frames, as released
    assert torch.equal(enc.codes.stacked()[0], codes[:, 0])
    torch.testing.assert_close(enc.timbre, spk, atol=1e-4, rtol=1e-4)
    m = min(n, ref_wav.shape[-1])
    torch.testing.assert_close(out.wav_hat[:, :m], ref_wav[:, :m], atol=2e-4, rtol=1e-3)
    dec = model.decode(enc.codes, enc.timbre)
    torch.testing.assert_close(dec, ref_generate(sds["decoder"], SMALL, ref_vq2emb(sds["decoder"], SMALL, codes), spk)[:, 0], atol=2e-4, rtol=1e-3)


def test_redecoder_vc_matches_reference(small_v1):
    sds, model = small_v1
    g = torch.Generator().manual_seed(5)
    src, prompt = 0.3 * torch.randn(1, 4000, generator=g), 0.3 * torch.randn(1, 6000, generator=g)
    with torch.no_grad():
        _, codes_a, _ = ref_analyze(sds["decoder"], SMALL, ref_encode(sds["encoder"], SMALL, src))
        _, _, spk_b = ref_analyze(sds["decoder"], SMALL, ref_encode(sds["encoder"], SMALL, prompt))
        emb = ref_redecoder_vq2emb(sds["redecoder"], SMALL, codes_a, spk_b, use_residual=False)
        ref = ref_generate(sds["redecoder"], SMALL, emb, spk_b)[:, 0]
        ours = model.convert_voice(src, prompt)
    torch.testing.assert_close(ours, ref[:, : ours.shape[-1]], atol=2e-4, rtol=1e-3)


def test_v2_import_matches_reference(tmp_path):
    sds = random_published(SMALL, v2=True, seed=2)
    for name, sd in sds.items():
        torch.save(sd, tmp_path / f"{name}.bin")
    model = import_official(tmp_path / "encoder.bin", tmp_path / "decoder.bin", variant="v2", heads="load")
    assert model.hp.prosody_input == "v2" and model.heads is not None
    wav = 0.3 * torch.randn(1, 3200, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        x = ref_encode(sds["encoder"], SMALL, wav)
        emb, codes, spk = ref_analyze(sds["decoder"], SMALL, x, ref_mel20(sds["encoder"], wav))
        enc = model.encode(wav)
    assert torch.equal(enc.codes.stacked()[0], codes[:, 0])
    torch.testing.assert_close(enc.timbre, spk, atol=1e-4, rtol=1e-4)


def test_import_then_own_checkpoint_round_trip(small_v1, tmp_path):
    _, model = small_v1
    save_codec(tmp_path / "codec.pt", model)
    again = load_codec(tmp_path / "codec.pt")
    wav = 0.3 * torch.randn(2, 2600, generator=torch.Generator().manual_seed(4))
    a, b = model.encode(wav), again.encode(wav)
    assert torch.equal(a.codes.stacked(), b.codes.stacked())
    assert torch.equal(model.decode(a.codes, a.timbre), again.decode(b.codes, b.timbre))


def test_released_batch_quirk_is_not_reproduced_across_items(small_v1):
    """Item 1 of a batch gets the same timbre as alone (the release would add a different table row)."""
    _, model = small_v1
    wav = 0.3 * torch.randn(2, 3000, generator=torch.Generator().manual_seed(6))
    both = model.encode(wav).timbre
    torch.testing.assert_close(both[1:], model.encode(wav[1:]).timbre, atol=1e-5, rtol=1e-5)


def test_bad_keys_give_a_clear_error():
    sds = random_published(SMALL, seed=1)
    enc, dec = dict(sds["encoder"]), dict(sds["decoder"])
    dec["timbre_linear.wieght"] = dec.pop("timbre_linear.weight")
    with pytest.raises(OfficialCheckpointError, match=r"timbre_linear\.wieght"):
        import_state_dicts(enc, dec)
    dec = dict(sds["decoder"])
    del dec["quantizer.1.layers.0.out_proj.weight_v"]
    with pytest.raises(OfficialCheckpointError, match=r"quantizer\.content\.layers\.0\.out_proj\.weight_v"):
        import_state_dicts(enc, dec)
    with pytest.raises(OfficialCheckpointError, match="variant='v1'"):
        import_state_dicts(enc, random_published(SMALL, v2=True)["decoder"], variant="v1")


def test_heads_fresh_and_published_prefixes(tmp_path):
    sds = random_published(SMALL, seed=1)
    torch.save({f"encoder.{k}": v for k, v in sds["encoder"].items()}, tmp_path / "enc.bin")
    torch.save(sds["decoder"], tmp_path / "dec.bin")
    model = import_official(tmp_path / "enc.bin", tmp_path / "dec.bin", heads="fresh", num_phones=9, num_speakers=3)
    assert model.import_report.fresh_modules == ["heads"]
    assert model.heads.phone.heads[0].out_features == 9
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.bin")  # a pickled module, not a state_dict
    with pytest.raises(OfficialCheckpointError, match="state_dict"):
        import_official(tmp_path / "module.bin", tmp_path / "dec.bin")
