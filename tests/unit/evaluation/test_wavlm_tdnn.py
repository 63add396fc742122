"""The paper's WavLM-TDNN speaker-similarity model (``sim_wavlm_tdnn``) and its TTS-evaluation columns.

The checkpoints here are written key by key from the layout of UniSpeech's ``ECAPA_TDNN_SMALL`` with s3prl's WavLM
(``unispeech_state`` below), not from our module's ``state_dict()``, so loading them checks our layout against
that one instead of against itself.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evaluation.metrics import build_metric
from evaluation.metrics.ecapa_tdnn import AttentiveStatsPool, EcapaDims
from evaluation.metrics.sim_wavlm_tdnn import WavLMTDNN, WavLMTDNNDims, build_wavlm_tdnn, infer_dims, load_wavlm_tdnn
from evaluation.metrics.wavlm_encoder import WavLMDims

KERNELS = (10, 3, 3, 3, 3, 2, 2)
TINY = dict(conv=8, hidden=16, layers=2, heads=2, ffn=32, pos_kernel=8, pos_groups=2, buckets=32, channels=16,
            scale=8, se=4, pooled=24, attention=4, emb=8)
# the real checkpoint's sizes (ECAPA_TDNN_SMALL(feat_dim=1024, feat_type='wavlm_large'))
LARGE = dict(conv=512, hidden=1024, layers=24, heads=16, ffn=4096, pos_kernel=128, pos_groups=16, buckets=320,
             channels=512, scale=8, se=128, pooled=1536, attention=128, emb=256)


def unispeech_shapes(conv, hidden, layers, heads, ffn, pos_kernel, pos_groups, buckets, channels, scale, se, pooled,
                     attention, emb, speakers=5) -> dict[str, tuple[int, ...]]:
    """Key -> shape of ``wavlm_large_finetune.pth``'s ``model`` entry, spelled out from the original classes."""
    s: dict[str, tuple[int, ...]] = {}
    up = "feature_extract.model."
    c_in = 1
    for i, k in enumerate(KERNELS):  # Conv1d(bias=False), Dropout, Sequential(TransposeLast, LayerNorm, ...), GELU
        fe = f"{up}feature_extractor.conv_layers.{i}."
        s[f"{fe}0.weight"] = (conv, c_in, k)
        s[f"{fe}2.1.weight"] = s[f"{fe}2.1.bias"] = (conv,)
        c_in = conv
    s[f"{up}layer_norm.weight"] = s[f"{up}layer_norm.bias"] = (conv,)
    s[f"{up}post_extract_proj.weight"], s[f"{up}post_extract_proj.bias"] = (hidden, conv), (hidden,)
    s[f"{up}mask_emb"] = (hidden,)
    s[f"{up}encoder.pos_conv.0.bias"] = (hidden,)
    s[f"{up}encoder.pos_conv.0.weight_g"] = (1, 1, pos_kernel)
    s[f"{up}encoder.pos_conv.0.weight_v"] = (hidden, hidden // pos_groups, pos_kernel)
    for n in range(layers):
        p = f"{up}encoder.layers.{n}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            s[f"{p}self_attn.{proj}.weight"], s[f"{p}self_attn.{proj}.bias"] = (hidden, hidden), (hidden,)
        if n == 0:
            s[f"{p}self_attn.relative_attention_bias.weight"] = (buckets, heads)
        s[f"{p}self_attn.grep_linear.weight"], s[f"{p}self_attn.grep_linear.bias"] = (8, hidden // heads), (8,)
        s[f"{p}self_attn.grep_a"] = (1, heads, 1, 1)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            s[f"{p}{ln}.weight"] = s[f"{p}{ln}.bias"] = (hidden,)
        s[f"{p}fc1.weight"], s[f"{p}fc1.bias"] = (ffn, hidden), (ffn,)
        s[f"{p}fc2.weight"], s[f"{p}fc2.bias"] = (hidden, ffn), (hidden,)
    s[f"{up}encoder.layer_norm.weight"] = s[f"{up}encoder.layer_norm.bias"] = (hidden,)
    s["feature_weight"] = (layers + 1,)

    def conv_bn(prefix: str, c_out: int, c_in_: int, k: int) -> None:
        s[f"{prefix}.conv.weight"], s[f"{prefix}.conv.bias"] = (c_out, c_in_, k), (c_out,)
        bn(f"{prefix}.bn", c_out)

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            s[f"{prefix}.{name}"] = (c,)
        s[f"{prefix}.num_batches_tracked"] = ()

    conv_bn("layer1", channels, hidden, 5)
    width = channels // scale
    for b in ("layer2", "layer3", "layer4"):
        conv_bn(f"{b}.Conv1dReluBn1", channels, channels, 1)
        for i in range(scale - 1):
            s[f"{b}.Res2Conv1dReluBn.convs.{i}.weight"] = (width, width, 3)
            s[f"{b}.Res2Conv1dReluBn.convs.{i}.bias"] = (width,)
            bn(f"{b}.Res2Conv1dReluBn.bns.{i}", width)
        conv_bn(f"{b}.Conv1dReluBn2", channels, channels, 1)
        s[f"{b}.SE_Connect.linear1.weight"], s[f"{b}.SE_Connect.linear1.bias"] = (se, channels), (se,)
        s[f"{b}.SE_Connect.linear2.weight"], s[f"{b}.SE_Connect.linear2.bias"] = (channels, se), (channels,)
    s["conv.weight"], s["conv.bias"] = (pooled, 3 * channels, 1), (pooled,)
    s["pooling.linear1.weight"], s["pooling.linear1.bias"] = (attention, pooled, 1), (attention,)
    s["pooling.linear2.weight"], s["pooling.linear2.bias"] = (pooled, attention, 1), (pooled,)
    bn("bn", 2 * pooled)
    s["linear.weight"], s["linear.bias"] = (emb, 2 * pooled), (emb,)
    s["loss_calculator.projection.weight"] = (speakers, emb)  # AAM-softmax classes of fine-tuning
    return s


def unispeech_state(seed: int = 0, **sizes) -> dict[str, torch.Tensor]:
    """Random tensors in that layout, scaled so that activations stay O(1) through the tiny model."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in unispeech_shapes(**{**TINY, **sizes}).items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7)
        elif key.endswith("running_var") or key.endswith("weight_g"):
            out[key] = 0.5 + torch.rand(shape, generator=g)
        elif re.search(r"(norm|\.bn|bns\.\d+)\.weight$", key) or key.endswith("grep_a"):
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 16
            out[key] = torch.randn(shape, generator=g) / np.sqrt(fan_in)
    return out


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("wavlm_tdnn") / "wavlm_large_finetune.pth"
    torch.save({"model": unispeech_state(), "epoch": 3}, path)
    return path


def _wav(seed: int, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * (120 + 40 * seed) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def test_the_real_checkpoints_layout_gives_wavlm_large_and_ecapa_tdnn_small():
    """Every key of the paper's file, and only those, with the WavLM-Large / ECAPA_TDNN_SMALL sizes (on meta)."""
    state = {k: torch.empty(shape, device="meta") for k, shape in unispeech_shapes(**LARGE).items()}
    dims = infer_dims(state)
    assert dims == WavLMTDNNDims(WavLMDims(), EcapaDims())
    # what the file cannot say, as WavLM-Large's s3prl config has it
    assert dims.wavlm.conv_strides == (5, 2, 2, 2, 2, 2, 2) and dims.wavlm.max_distance == 800
    assert dims.wavlm.normalize_waveform and not dims.wavlm.conv_bias
    with torch.device("meta"):
        model = WavLMTDNN(dims)
    assert set(model.state_dict()) == set(state) - {"loss_calculator.projection.weight"}
    assert dims.wavlm.min_samples == 400  # 25 ms: one WavLM frame


def test_tiny_checkpoint_loads_strictly_and_embeds(tiny_ckpt):
    loaded = load_wavlm_tdnn(tiny_ckpt)
    assert loaded.dims.wavlm == WavLMDims(conv_channels=(8,) * 7, hidden=16, layers=2, heads=2, ffn=32,
                                          pos_conv_kernel=8, pos_conv_groups=2, num_buckets=32)
    assert loaded.dims.ecapa == EcapaDims(in_dim=16, channels=16, se_dim=4, pooled=24, attention=4, embedding=8)
    assert loaded.set_aside == ("loss_calculator.projection.weight",)
    assert not loaded.model.training
    # every tensor of the file reached the model
    state = unispeech_state()
    for key, value in loaded.model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)

    m = build_metric("sim_wavlm_tdnn", checkpoint=str(tiny_ckpt))
    assert m.unavailable_reason is None
    emb = m.embed(_wav(0))
    assert emb.shape == (8,) and emb.dtype == np.float32 and np.all(np.isfinite(emb))


def test_scores_are_deterministic_symmetric_and_one_for_identical_input(tiny_ckpt):
    a, b = _wav(0), _wav(1, seconds=0.7)
    m1, m2 = (build_metric("sim_wavlm_tdnn", checkpoint=str(tiny_ckpt)) for _ in range(2))
    np.testing.assert_array_equal(m1.embed(a), m2.embed(a))  # two fresh loads, no shared cache
    assert m1.score(a, a).value == pytest.approx(1.0, abs=1e-6)
    ab, ba = m1.score(a, b).value, m2.score(b, a).value
    assert ab == pytest.approx(ba, abs=1e-6) and -1.0 <= ab < 0.9999
    # the embedding depends on the input, not only on the weights
    assert not np.allclose(m1.embed(a), m1.embed(b))


@pytest.mark.parametrize("drop, add, named", [
    ("layer3.SE_Connect.linear2.bias", None, "layer3.SE_Connect.linear2.bias"),
    ("feature_extract.model.encoder.layers.1.self_attn.grep_a", None, "layers.1.self_attn.grep_a"),
    ("feature_weight", None, "feature_weight"),
    ("feature_extract.model.encoder.layers.0.self_attn.relative_attention_bias.weight", None,
     "relative_attention_bias"),
    (None, "feature_extract.model.encoder.layers.1.self_attn.relative_attention_bias.weight",
     "layers.1.self_attn.relative_attention_bias"),
    (None, "pooling.linear3.weight", "pooling.linear3.weight"),
    ("feature_extract.model.post_extract_proj.weight", None, "post_extract_proj.weight"),
])
def test_a_missing_or_extra_key_fails_naming_it(drop, add, named):
    state = unispeech_state()
    if drop:
        del state[drop]
    if add:
        state[add] = torch.zeros(3)
    with pytest.raises(ValueError, match=re.escape(named)):
        build_wavlm_tdnn(state)


def test_inconsistent_shapes_and_wrong_containers_are_errors(tmp_path):
    state = unispeech_state()
    state["layer4.Conv1dReluBn2.bn.running_mean"] = torch.zeros(5)
    with pytest.raises(ValueError, match="layer4.Conv1dReluBn2.bn.running_mean"):
        build_wavlm_tdnn(state)
    bare = tmp_path / "bare.pth"
    torch.save(unispeech_state(), bare)  # a state dict without the {'model': ...} wrapper
    with pytest.raises(ValueError, match="under 'model'"):
        load_wavlm_tdnn(bare)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_wavlm_tdnn(junk)


# --- transformers' WavLMModel as an independent reference for the upstream -------------------------------

HF_RENAMES = [  # UniSpeech / s3prl name -> transformers WavLMModel name (layer-norm extractor, stable layer norm)
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.", r"feature_extractor.conv_layers.\1.conv."),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.", r"feature_extractor.conv_layers.\1.layer_norm."),
    (r"^layer_norm\.", "feature_projection.layer_norm."),
    (r"^post_extract_proj\.", "feature_projection.projection."),
    (r"^mask_emb$", "masked_spec_embed"),
    (r"encoder\.pos_conv\.0\.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"),
    (r"encoder\.pos_conv\.0\.bias", "encoder.pos_conv_embed.conv.bias"),
    (r"\.self_attn\.relative_attention_bias\.", ".attention.rel_attn_embed."),
    (r"\.self_attn\.grep_linear\.", ".attention.gru_rel_pos_linear."),
    (r"\.self_attn\.grep_a$", ".attention.gru_rel_pos_const"),
    (r"\.self_attn\.(k|v|q|out)_proj\.", r".attention.\1_proj."),
    (r"\.self_attn_layer_norm\.", ".layer_norm."),
    (r"\.fc1\.", ".feed_forward.intermediate_dense."),
    (r"\.fc2\.", ".feed_forward.output_dense."),
]


def to_hf(upstream: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in upstream.items():
        new = key
        for pattern, repl in HF_RENAMES:
            new = re.sub(pattern, repl, new)
        assert new not in out, f"two keys map to {new}"
        out[new] = value
    return out


def test_upstream_matches_transformers_wavlm_given_the_same_tensors():
    transformers = pytest.importorskip("transformers", reason="the reference needs the [wavlm] extra")
    WavLMConfig, WavLMModel = transformers.WavLMConfig, transformers.WavLMModel

    loaded = build_wavlm_tdnn(unispeech_state(seed=3))
    wavlm = loaded.model.feature_extract.model
    d = loaded.dims.wavlm
    config = WavLMConfig(hidden_size=d.hidden, num_hidden_layers=d.layers, num_attention_heads=d.heads,
                         intermediate_size=d.ffn, conv_dim=d.conv_channels, conv_kernel=d.conv_kernels,
                         conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_bias=d.conv_bias, feat_extract_norm="layer",
                         do_stable_layer_norm=True, num_conv_pos_embeddings=d.pos_conv_kernel,
                         num_conv_pos_embedding_groups=d.pos_conv_groups, num_buckets=d.num_buckets,
                         max_bucket_distance=800, layer_norm_eps=1e-5)  # WavLM-Large's
    hf = WavLMModel(config).eval()
    upstream = {k.removeprefix("feature_extract.model."): v for k, v in wavlm.state_dict().items()}
    mapped = to_hf(upstream)
    assert set(mapped) == set(hf.state_dict()), sorted(set(mapped) ^ set(hf.state_dict()))
    hf.load_state_dict(mapped, strict=True)

    # inputs of every encoder layer, captured by hooks so the check does not depend on how a transformers
    # version assembles output_hidden_states
    inputs: list[torch.Tensor] = []
    hooks = [layer.register_forward_pre_hook(lambda mod, args, kwargs: inputs.append(
        args[0] if args else kwargs["hidden_states"]), with_kwargs=True) for layer in hf.encoder.layers]
    wav = torch.from_numpy(np.stack([_wav(4, 1.3), _wav(5, 1.3)]))  # a batch of two, 64 frames: log-spaced buckets too
    with torch.inference_mode():
        ours = wavlm.hidden_states(wav)
        theirs = hf(F.layer_norm(wav, wav.shape[-1:])).last_hidden_state  # HF leaves normalisation to its extractor
    for h in hooks:
        h.remove()
    assert len(ours) == d.layers + 1 and ours[0].shape == (2, 64, d.hidden)
    for i, (a, b) in enumerate(zip(ours, [*inputs, theirs])):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=f"hidden state {i}")
    # and the names map back one to one
    back = {v_key: k for k, v_key in zip(upstream, mapped)}
    assert sorted(back.values()) == sorted(upstream)


def test_feature_weight_selects_hidden_states_in_order():
    state = unispeech_state()
    model = build_wavlm_tdnn(state).model
    wav = torch.from_numpy(_wav(2))[None]
    with torch.inference_mode():
        states = model.feature_extract.model.hidden_states(wav)
        for k in (0, len(states) - 1):
            model.feature_weight.copy_(torch.where(torch.arange(len(states)) == k, 60.0, 0.0))  # softmax ~ one-hot
            expected = F.instance_norm(states[k].transpose(1, 2) + 1e-6)
            torch.testing.assert_close(model.features(wav), expected, rtol=1e-4, atol=1e-4)


def reference_head(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """UniSpeech's ECAPA forward written as functions of the file's tensors: ``[B, D, T]`` -> ``[B, E]``."""
    def bn(p, y):
        return F.batch_norm(y, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"])

    def conv_relu_bn(p, y, pad=0):  # conv -> ReLU -> BN, UniSpeech's order
        return bn(f"{p}.bn", F.relu(F.conv1d(y, sd[f"{p}.conv.weight"], sd[f"{p}.conv.bias"], padding=pad)))

    def se_res2(p, y, dilation):
        z = conv_relu_bn(f"{p}.Conv1dReluBn1", y)
        parts = z.split(sd[f"{p}.Res2Conv1dReluBn.convs.0.weight"].shape[0], dim=1)
        outs, sp = [], None
        for i in range(len(parts) - 1):
            sp = parts[i] if sp is None else sp + parts[i]
            sp = F.conv1d(sp, sd[f"{p}.Res2Conv1dReluBn.convs.{i}.weight"], sd[f"{p}.Res2Conv1dReluBn.convs.{i}.bias"],
                          padding=dilation, dilation=dilation)
            sp = bn(f"{p}.Res2Conv1dReluBn.bns.{i}", F.relu(sp))
            outs.append(sp)
        z = conv_relu_bn(f"{p}.Conv1dReluBn2", torch.cat([*outs, parts[-1]], dim=1))
        gate = F.relu(F.linear(z.mean(2), sd[f"{p}.SE_Connect.linear1.weight"], sd[f"{p}.SE_Connect.linear1.bias"]))
        gate = torch.sigmoid(F.linear(gate, sd[f"{p}.SE_Connect.linear2.weight"], sd[f"{p}.SE_Connect.linear2.bias"]))
        return y + z * gate[..., None]

    o1 = conv_relu_bn("layer1", x, pad=2)
    o2 = se_res2("layer2", o1, 2)
    o3 = se_res2("layer3", o2, 3)
    o4 = se_res2("layer4", o3, 4)
    o = F.relu(F.conv1d(torch.cat([o2, o3, o4], dim=1), sd["conv.weight"], sd["conv.bias"]))
    att = torch.tanh(F.conv1d(o, sd["pooling.linear1.weight"], sd["pooling.linear1.bias"]))
    att = torch.softmax(F.conv1d(att, sd["pooling.linear2.weight"], sd["pooling.linear2.bias"]), dim=2)
    mean = (att * o).sum(2)
    std = ((att * o * o).sum(2) - mean ** 2).clamp(min=1e-9).sqrt()
    return F.linear(bn("bn", torch.cat([mean, std], dim=1)), sd["linear.weight"], sd["linear.bias"])


def test_ecapa_head_matches_the_reference_forward_on_the_files_tensors():
    state = unispeech_state(seed=5)
    model = build_wavlm_tdnn(state).model
    feats = torch.randn(2, 16, 40, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(model.head(feats), reference_head(state, feats), rtol=1e-4, atol=1e-5)


def test_attentive_pooling_with_flat_attention_is_mean_and_std():
    pool = AttentiveStatsPool(6, 3)
    torch.nn.init.zeros_(pool.linear2.weight)
    torch.nn.init.zeros_(pool.linear2.bias)  # equal scores: softmax weights 1/T
    x = torch.randn(2, 6, 11)
    with torch.no_grad():
        out = pool(x)
    torch.testing.assert_close(out, torch.cat([x.mean(2), x.std(2, unbiased=False)], dim=1), rtol=1e-4, atol=1e-5)


def test_unconfigured_missing_and_too_short_are_unavailable(tiny_ckpt):
    for ckpt, words in ((None, "no WavLM-TDNN"), ("/definitely/missing.pth", "not found")):
        v = build_metric("sim_wavlm_tdnn", checkpoint=ckpt).score(_wav(0), _wav(0))
        assert not v.available and words in v.reason
    v = build_metric("sim_wavlm_tdnn", checkpoint=str(tiny_ckpt)).score(_wav(0), _wav(0)[:399])
    assert not v.available and "399 samples" in v.reason


def test_params_accept_the_checkpoint_path():
    from ns3.config import load_params
    from tests.helpers import PROJECT

    assert load_params(PROJECT / "params.yaml").evaluate.wavlm_tdnn_checkpoint is None
    path = "/m/wavlm_large_finetune.pth"
    assert load_params(PROJECT / "params.yaml", overrides={"evaluate.wavlm_tdnn_checkpoint": path}
                       ).evaluate.wavlm_tdnn_checkpoint == path


# --- TTS evaluation columns --------------------------------------------------------------------------------


def _synth_dir(root):
    """A one-protocol synthesize output: the generated clips are the prompts themselves, the ground truth is
    another signal, so SIM-O of ``generated`` must be exactly 1 and nothing else is."""
    from ns3.audio import write_audio

    pdir = root / "librispeech"
    items = []
    for i in range(2):
        iid = f"librispeech-{i}"
        prompt, resyn, truth = _wav(10 + i), _wav(20 + i), _wav(30 + i, 1.2)
        for sub, wav in (("prompt", prompt), ("prompt_resynthesis", resyn), ("generated", prompt),
                         ("ground_truth", truth)):
            write_audio(pdir / sub / f"{iid}.wav", wav)
        items.append({"id": iid, "protocol": "librispeech", "speaker": f"s{i}", "target_text": "a short sentence"})
    (pdir / "items.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    return root


def test_tts_eval_fills_the_wavlm_tdnn_columns_when_the_checkpoint_is_set(tiny_ckpt, tmp_path):
    from evaluation.tts_eval import Scorers, evaluate_tts

    synth = _synth_dir(tmp_path / "tts")
    result = evaluate_tts(synth, tmp_path / "eval", Scorers(None, wavlm_tdnn_checkpoint=str(tiny_ckpt)),
                          variant="baseline", profile="test", overrides={}, hparams={}, samples=0)
    block = result["protocols"]["librispeech"]
    rows, reasons = block["systems"], block["reasons"]
    assert set(rows) == {"generated", "ground_truth"}
    assert rows["generated"]["sim_o_wavlm_tdnn"] == 1.0  # generated == prompt
    for system in rows:
        for key in ("sim_o_wavlm_tdnn", "sim_r_wavlm_tdnn"):
            assert f"{system}/{key}" not in reasons
    assert rows["generated"]["sim_r_wavlm_tdnn"] < 1.0 and rows["ground_truth"]["sim_o_wavlm_tdnn"] < 1.0
    assert "ECAPA-TDNN" in result["models"]["sim_wavlm_tdnn"] and str(tiny_ckpt) in result["models"]["sim_wavlm_tdnn"]

    unset = evaluate_tts(synth, tmp_path / "eval_unset", Scorers(None), variant="baseline", profile="test",
                         overrides={}, hparams={}, samples=0)
    block = unset["protocols"]["librispeech"]
    assert block["systems"]["generated"]["sim_o_wavlm_tdnn"] is None
    assert "evaluate.wavlm_tdnn_checkpoint" in block["reasons"]["generated/sim_r_wavlm_tdnn"]
    assert unset["models"]["sim_wavlm_tdnn"] is None
