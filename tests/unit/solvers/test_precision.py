"""Device numerics of the solvers: bf16 autocast with fp32 master weights and fp32 islands, the fp32 path kept
as it was, fused optimizers across a resume, torch.compile without `_orig_mod.` keys, FLOP counting and MFU."""
from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ns3.codec import FACodec, FACodecHParams
from ns3.codec.discriminators import CodecDiscriminator
from ns3.codec.quantizer import FactorizedVQ
from ns3.data.batch import CodecBatch
from ns3.losses import MelScale, MultiScaleMelLoss
from ns3.solvers.base import LAST, BaseSolver, replay_epochs
from ns3.solvers.checkpoint import load_checkpoint
from ns3.solvers.codec import CodecSolver, make_codec_optimizers
from ns3.solvers.precision import resolve_precision, run_in_fp32, runs_in_fp32, to_fp32
from ns3.solvers.throughput import count_flops, mfu, peak_bf16_tflops
from solver_fixtures import TinyNet, TinySolver, tiny_batches


def _tiny_hp(**overrides) -> FACodecHParams:
    return FACodecHParams.mini(encoder_channels=4, latent_dim=16, decoder_channels=32, ffn_channels=32,
                               timbre_layers=1, attention_heads=2, codebook_size=32, num_phones=10, num_speakers=4,
                               **overrides)


def _codec_batch(b: int = 2, frames: int = 8, seed: int = 0) -> CodecBatch:
    g = torch.Generator().manual_seed(seed)
    return CodecBatch(wav=0.1 * torch.randn(b, frames * 200, generator=g),
                      phone_ids=torch.randint(0, 10, (b, frames), generator=g), f0=torch.randn(b, frames, generator=g),
                      uv=torch.ones(b, frames), speaker_ids=torch.arange(b) % 4,
                      frame_mask=torch.ones(b, frames, dtype=torch.bool), f0_stats=torch.tensor([[4.6, 0.1]] * b))


def _codec_solver(tmp_path: Path, precision: str, batch: CodecBatch, **kwargs) -> CodecSolver:
    torch.manual_seed(0)
    disc = CodecDiscriminator(periods=(2, 3), n_ffts=(128,), mpd_channels=4, mpd_max_channels=8, mpd_layers=2,
                              stft_channels=4, stft_max_channels=8)
    return CodecSolver(generator=FACodec(_tiny_hp(**kwargs.pop("hp", {}))), discriminator=disc,
                       batches=replay_epochs(lambda epoch: [batch]), mel_loss=MultiScaleMelLoss([MelScale(256, 64, 32)]),
                       adv_start_step=0, out_dir=tmp_path, max_steps=1, progress=False, device="cpu",
                       precision=precision, **kwargs)


def _code_batch(hp, b: int, phones: int, frames_per_phone: int):
    from ns3.data.code_batch import CodeBatch

    g = torch.Generator().manual_seed(0)
    t = phones * frames_per_phone
    return CodeBatch(codes=torch.randint(0, hp.codebook_size, (b, hp.num_levels, t), generator=g),
                     frame_mask=torch.ones(b, t, dtype=torch.bool), phone_ids=torch.randint(1, hp.num_phones, (b, phones), generator=g),
                     durations=torch.full((b, phones), frames_per_phone),
                     phone_prosody=torch.randint(0, hp.codebook_size, (b, phones), generator=g),
                     phone_mask=torch.ones(b, phones, dtype=torch.bool), timbre=torch.zeros(b, 8),
                     keys=[str(i) for i in range(b)], speakers=["s"] * b)


def _finite_metrics(metrics) -> dict[str, float]:
    values = {k: float(v) for k, v in metrics.items()}
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    assert not bad, f"non-finite metrics {bad}"
    return values


# ------------------------------------------------------------------------------------------ precision choice
def test_precision_resolves_to_fp32_on_the_cpu_unless_bf16_is_asked_for():
    assert resolve_precision("fp32", "cpu") is None
    assert resolve_precision("auto", "cpu") is None  # the default: CPU runs stay fp32
    assert resolve_precision("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


# ------------------------------------------------------------------------------------------ bf16 codec step
def test_bf16_codec_step_is_finite_autocasts_the_convolutions_and_keeps_fp32_weights_and_islands(tmp_path):
    batch = _codec_batch()
    solver = _codec_solver(tmp_path, "bf16", batch)
    gen = solver.unwrapped("generator")
    seen: dict[str, torch.dtype] = {}

    def record(name, dtype_of):
        def hook(module, inputs, output) -> None:
            seen.setdefault(name, dtype_of(output))
        return hook

    gen.encoder.register_forward_hook(record("encoder", lambda o: o.dtype))
    gen.quantizer.content.layers[0].register_forward_hook(record("vq", lambda o: o.quantized.dtype))
    metrics = _finite_metrics(solver.train_step(batch))
    assert {"codec/rec", "codec/adv", "disc/loss", "codec/grad_norm"} <= set(metrics)
    assert seen == {"encoder": torch.bfloat16, "vq": torch.float32}  # autocast ran; the quantizer stayed fp32
    assert solver.precision == "bf16" and any(n.startswith("quantizer.") for n in solver.fp32_layers)
    for name in ("generator", "discriminator"):
        params = list(solver.unwrapped(name).parameters())
        assert all(p.dtype == torch.float32 for p in params), f"{name} weights left fp32"
        state = solver.optimizers[name].state_dict()["state"]
        assert state and all(v.dtype == torch.float32 for s in state.values() for k, v in s.items() if k != "step")


def test_fp32_and_the_default_auto_are_the_same_step_on_the_cpu(tmp_path):
    batch = _codec_batch()
    runs = {}
    for precision in ("fp32", "auto"):
        solver = _codec_solver(tmp_path / precision, precision, batch)
        assert solver.amp_dtype is None and solver.fp32_layers == []
        assert not any(runs_in_fp32(m) for m in solver.unwrapped("generator").modules())  # nothing patched
        metrics = solver.train_step(batch)
        runs[precision] = ({k: float(v) for k, v in metrics.items()},
                           {k: v.clone() for k, v in solver.unwrapped("generator").state_dict().items()})
    assert runs["fp32"][0] == runs["auto"][0]
    assert all(torch.equal(v, runs["auto"][1][k]) for k, v in runs["fp32"][1].items())
    bf16 = _codec_solver(tmp_path / "bf16", "bf16", batch).train_step(batch)
    assert float(bf16["codec/rec"]) != runs["fp32"][0]["codec/rec"]  # bf16 really computes something else


def test_amp_forward_returns_fp32_outputs_only_when_autocasting(tmp_path):
    fp32 = TinySolver(out_dir=tmp_path / "a", max_steps=1, precision="fp32")
    bf16 = TinySolver(out_dir=tmp_path / "b", max_steps=1, precision="bf16")
    x = torch.randn(3, 4)
    out = {}
    for name, s in (("fp32", fp32), ("bf16", bf16)):
        with s.autocast():
            raw = s.models["net"](x)
        out[name] = (raw.dtype, s.amp_forward(s.models["net"], x).dtype)
    assert out == {"fp32": (torch.float32, torch.float32), "bf16": (torch.bfloat16, torch.float32)}


def test_bf16_diffusion_step_is_finite_with_fp32_weights(tmp_path):
    from ns3.diffusion.hparams import DiffusionHParams
    from ns3.diffusion.model import FactorizedDiffusion
    from ns3.solvers.diffusion import DiffusionSolver

    hp = DiffusionHParams.mini(num_phones=20, codebook_size=32, max_duration=16, encoder_layers=1, encoder_dim=32,
                               encoder_heads=2, encoder_hidden=64, encoder_kernel=3, phone_layers=1, phone_dim=32,
                               frame_layers=1, frame_dim=32, heads=2, hidden=64)
    batch = _code_batch(hp, b=2, phones=5, frames_per_phone=8)
    torch.manual_seed(0)
    solver = DiffusionSolver(model=FactorizedDiffusion(hp), batches=lambda e, s: iter([batch]), out_dir=tmp_path,
                             max_steps=1, progress=False, device="cpu", warmup_steps=1, precision="bf16")
    metrics = _finite_metrics(solver.train_step(batch))
    assert metrics["diffusion/total"] > 0
    assert all(p.dtype == torch.float32 for p in solver.unwrapped("diffusion").parameters())
    assert solver.optimizers["diffusion"].param_groups[0]["fused"] in (None, False)  # CPU: the plain AdamW


# ------------------------------------------------------------------------------------------ fp32 islands
def test_an_fp32_island_computes_exactly_what_fp32_does_inside_autocast():
    torch.manual_seed(0)
    vq = FactorizedVQ(16, 32, 8, normalized=True).eval()
    x = torch.randn(2, 16, 12)
    ref = vq(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lowered = vq(x)
    assert lowered.quantized.dtype == torch.bfloat16  # without the island autocast reaches the projections
    keys = list(vq.state_dict())
    run_in_fp32(run_in_fp32(vq))  # idempotent
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kept = vq(x)
    assert kept.quantized.dtype == torch.float32
    assert torch.equal(kept.quantized, ref.quantized) and torch.equal(kept.codes, ref.codes)
    assert list(vq.state_dict()) == keys
    twin = copy.deepcopy(vq)  # an EMA copy keeps the island, bound to itself
    assert runs_in_fp32(twin) and twin.forward.__self__ is twin


def test_keep_fp32_layers_finds_the_quantizers_mel_and_decoder_outputs(tmp_path):
    from ns3.solvers.codec import keep_fp32_layers

    dac = keep_fp32_layers(FACodec(_tiny_hp()))
    assert len([n for n in dac if n.startswith("quantizer.")]) == 6 and dac[-1].startswith("decoder.model.")
    istft = keep_fp32_layers(FACodec(_tiny_hp(decoder="istft", istft_channels=16, istft_layers=1,
                                              prosody_input="v2", prosody_encoder_layers=1)))
    assert {"mel", "decoder.head"} <= set(istft)


def test_to_fp32_casts_floating_tensors_through_dataclasses_and_containers():
    @dataclasses.dataclass
    class Out:
        x: torch.Tensor
        codes: torch.Tensor
        feats: list
        extra: dict

    out = to_fp32(Out(torch.ones(2, dtype=torch.bfloat16), torch.ones(2, dtype=torch.long),
                      [[torch.ones(1, dtype=torch.bfloat16)]], {"a": torch.ones(1, dtype=torch.float16), "b": 3}))
    assert out.x.dtype == torch.float32 and out.codes.dtype == torch.long
    assert out.feats[0][0].dtype == torch.float32 and out.extra["a"].dtype == torch.float32 and out.extra["b"] == 3


# ------------------------------------------------------------------------------------------ fused optimizers
class _AdamTiny(BaseSolver):
    def __init__(self, *, fused: bool, **kwargs) -> None:
        torch.manual_seed(0)
        model = TinyNet()
        opt = torch.optim.Adam(model.parameters(), lr=0.01, **({"fused": True} if fused else {}))
        super().__init__(models={"net": model}, optimizers={"net": opt}, batches=tiny_batches(), progress=False,
                         **kwargs)

    def train_step(self, batch):
        x, y = batch
        loss = ((self.models["net"](x) - y) ** 2).mean()
        return {"tiny/mse": loss.detach(), "tiny/grad_norm": self.optimize("net", loss)}


def test_a_resume_keeps_this_process_optimizer_implementation_not_the_checkpoint_one(tmp_path):
    _AdamTiny(fused=False, out_dir=tmp_path, max_steps=2).run()  # e.g. saved by a CPU run
    resumed = _AdamTiny(fused=True, out_dir=tmp_path, max_steps=3)  # resumed where fused is on
    assert resumed.step == 2 and resumed.optimizers["net"].param_groups[0]["fused"] is True
    assert resumed.run().steps == 3
    again = _AdamTiny(fused=False, out_dir=tmp_path, max_steps=4)
    assert again.step == 3 and not again.optimizers["net"].param_groups[0]["fused"]


def test_codec_optimizers_are_fused_on_request_and_plain_by_default_on_the_cpu(tmp_path):
    gen, disc = nn.Linear(2, 2), nn.Linear(2, 2)
    assert all(o.param_groups[0]["fused"] for o in make_codec_optimizers(gen, disc, fused=True).values())
    solver = _codec_solver(tmp_path, "fp32", _codec_batch())
    assert not any(o.param_groups[0]["fused"] for o in solver.optimizers.values())


# ------------------------------------------------------------------------------------------ torch.compile
def _check_plain_keys(out_dir: Path) -> None:
    state = load_checkpoint(out_dir / LAST)["models"]["net"]
    assert state and not any(k.startswith(("_orig_mod.", "module.")) for k in state), list(state)
    TinyNet().load_state_dict(state, strict=True)


def test_compile_wraps_the_trained_model_and_checkpoints_keep_plain_keys(tmp_path, monkeypatch):
    # dynamo + AOTAutograd without inductor's C++ build: the wiring in seconds (the inductor run is below)
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: real_compile(m, backend="aot_eager", **kw))
    torch._dynamo.reset()
    solver = TinySolver(out_dir=tmp_path, max_steps=2, compile=True)
    assert type(solver.models["net"]).__name__ == "OptimizedModule" and solver.unwrapped("net") is not solver.models["net"]
    assert list(solver.models["net"].state_dict())[0].startswith("_orig_mod.")  # what a naive save would write
    assert solver.run().steps == 2
    _check_plain_keys(tmp_path)
    resumed = TinySolver(out_dir=tmp_path, max_steps=3, compile=True)  # loads into the bare module, then compiles
    assert resumed.step == 2 and resumed.run().steps == 3


@pytest.mark.slow  # ~2 min: dynamo traces the whole FACodec step, graph breaks and all, even without inductor
def test_compiled_bf16_codec_step_traces_through_the_fp32_islands(tmp_path, monkeypatch):
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda m, **kw: real_compile(m, backend="aot_eager", **kw))
    torch._dynamo.reset()
    batch = _codec_batch()
    solver = _codec_solver(tmp_path, "bf16", batch, compile=True)
    _finite_metrics(solver.train_step(batch))
    state = solver.unwrapped("generator").state_dict()
    assert not any(k.startswith("_orig_mod.") for k in state)


@pytest.mark.slow  # inductor builds C++ kernels: ~15 s with a warm cache, ~50 s cold on 2 busy cores
def test_compile_with_inductor_runs_a_step_and_saves_plain_keys(tmp_path):
    torch._dynamo.reset()
    solver = TinySolver(out_dir=tmp_path, max_steps=1, compile=True)
    result = solver.run()
    assert result.steps == 1 and math.isfinite(result.final_metrics["tiny/mse"])
    _check_plain_keys(tmp_path)


# ------------------------------------------------------------------------------------------ FLOPs and MFU
def test_the_flop_count_of_a_training_step_is_positive_and_scales_with_the_batch(tmp_path):
    counts = {}
    for b in (2, 4):
        batch = _codec_batch(b)
        solver = _codec_solver(tmp_path / str(b), "fp32", batch)
        counts[b] = count_flops(lambda: solver.train_step(batch))
    assert counts[2] > 0
    assert 1.9 < counts[4] / counts[2] < 2.1  # every matmul and convolution is per clip


def test_mfu_is_flops_per_second_over_the_peak():
    assert mfu(2e12, 0.5, 8.0) == pytest.approx(0.5)  # 4 TFLOP/s of 8
    assert mfu(989e12, 1.0, 989.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        mfu(1e12, 0.0, 100.0)
    with pytest.raises(ValueError):
        mfu(1e12, 1.0, 0.0)


@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.0),
    ("NVIDIA GeForce RTX 4090", 165.0), ("NVIDIA A10G", None), ("Tesla V100-SXM2-16GB", None),
])
def test_peak_table_matches_device_names(name, tflops):
    found = peak_bf16_tflops(name)
    assert (found[0] if found else None) == tflops


# ------------------------------------------------------------------------------------------ recipe wiring
def test_precision_settings_reach_the_spec_and_stay_out_of_the_run_identity():
    from ns3.builders import codec_train_spec
    from ns3.config import load_params
    from ns3.recipes.codec import CodecTrainingData

    data = CodecTrainingData(train_shards=("train-000000.tar",), valid_shards=(), label_dir=Path("align"),
                             speakers={"a": 0, "b": 1}, num_phones=40, labelled_utterances=100, missing_labels=0)
    root = Path(__file__).resolve().parents[3]
    base = codec_train_spec(load_params(root / "params.yaml"), data)
    changed = codec_train_spec(load_params(root / "params.yaml", overrides={
        "codec.train.precision": "bf16", "codec.train.compile": True, "codec.train.tf32": False}), data)
    assert (base.precision, base.compile, base.tf32) == ("auto", False, True)
    assert (changed.precision, changed.compile, changed.tf32) == ("bf16", True, False)
    assert changed.fingerprint()["hash"] == base.fingerprint()["hash"]  # a CPU run may resume on a GPU

