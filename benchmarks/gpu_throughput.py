"""Training throughput on a GPU: samples/s and MFU of the codec and diffusion steps, fp32 vs TF32 vs bf16 vs compile.

    python benchmarks/gpu_throughput.py [--profile paper] [--models codec diffusion]
                                        [--variants fp32 tf32 bf16 bf16+compile] [--warmup 3] [--steps 10]
                                        [--peak-tflops T] [--utt-seconds 10] [--json out.json]
    python benchmarks/gpu_throughput.py --cpu   # the same measurement on the CPU at tiny sizes (exercises the code)

Each model is built at the profile's sizes (``codec.model`` / ``diffusion.model`` of params.yaml + the profile
overlay) and trained by its solver, as the recipes do, on one synthetic batch of the profile's training shape:
codec ``train.batch_size`` clips of ``train.crop_seconds`` (adversarial terms as ``train.adv_start_step`` says);
diffusion ``train.batch_frames`` latent frames in utterances of ``--utt-seconds``. Per variant: ``--warmup``
untimed steps (the first one, which includes any compilation, is reported on its own), then the median of
``--steps`` timed steps (benchmarks/timing.py). Variants: fp32 (the reference: TF32 off, eager), tf32,
bf16 (autocast, TF32 on for what stays fp32), and any of them with ``+compile``; every ratio is against the
fp32 row measured in the same run.

FLOPs per step are counted once, on the fp32 model, with FlopCounterMode over one whole training step (forward
+ backward; the codec's step includes the discriminator's update); MFU = FLOPs / step time / the device's dense
bf16 peak (ns3/solvers/throughput.py has the table; ``--peak-tflops`` overrides it, and is the only peak on a
CPU). Every row uses the same bf16 peak, so MFU compares the variants on one scale. Nothing is asserted.
Without a CUDA device (and without --cpu) it prints why it skipped and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import ns3  # noqa: F401  (first: sets the OpenMP wait policy before torch loads, as every ns3 command does)
import torch

from ns3.solvers.throughput import count_flops, mfu, peak_bf16_tflops
from timing import timed  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)

FRAMES_PER_S, FRAMES_PER_PHONE = 80, 8  # codec frame rate; ~10 phones/s of read speech
VARIANTS = {  # name -> (precision, tf32, compile)
    "fp32": ("fp32", False, False), "tf32": ("fp32", True, False), "bf16": ("bf16", True, False),
    "fp32+compile": ("fp32", False, True), "tf32+compile": ("fp32", True, True), "bf16+compile": ("bf16", True, True),
}
REFERENCE = "fp32"


@dataclass
class Workload:
    """One model's benchmark: ``make_solver(precision, tf32, compile)`` -> a solver with ``train_step``."""

    name: str
    description: str
    make_solver: Callable[[str, bool, bool], Any]
    batch: Any
    samples: int  # clips / utterances per step
    units: float  # audio seconds (codec) or latent frames (diffusion) per step
    unit_name: str


def no_cuda_reason() -> str:
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return f"torch {torch.__version__} is a CPU-only build"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f"CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else "no GPU or driver visible"
    return f"torch.cuda.is_available() is False ({where}; torch {torch.__version__}, CUDA {torch.version.cuda})"


# ---------------------------------------------------------------------------------------------- workloads
def codec_workload(params, args, device: torch.device) -> Workload:
    from codec_train_step import synthetic_batch  # benchmarks/codec_train_step.py
    from ns3.builders import codec_hparams, codec_loss_weights
    from ns3.codec import FACodec, FACodecHParams
    from ns3.codec.discriminators import CodecDiscriminator
    from ns3.losses import DAC_SCALES, MINI_SCALES, MelScale, MultiScaleMelLoss
    from ns3.solvers.base import replay_epochs
    from ns3.solvers.codec import CodecSolver, make_codec_optimizers

    t, m = params.codec.train, params.codec.model
    if args.cpu:  # the profile's switches at sizes that take a fraction of a second per step
        hp = FACodecHParams.mini(encoder_channels=4, latent_dim=16, decoder_channels=16, ffn_channels=32,
                                 timbre_layers=1, prosody_encoder_layers=1, attention_heads=2, codebook_size=32,
                                 num_phones=10, num_speakers=4, decoder=m.decoder, istft_channels=16, istft_layers=1,
                                 anti_alias=False)

        def make_disc() -> CodecDiscriminator:
            return CodecDiscriminator(periods=(2, 3), n_ffts=(128,), mpd_channels=4, mpd_max_channels=8,
                                      mpd_layers=2, stft_channels=4, stft_max_channels=8)

        scales, batch_size, seconds = [MelScale(256, 64, 32)], 2, 0.25
    else:
        hp = codec_hparams(m, num_phones=args.phones, num_speakers=args.speakers)

        def make_disc() -> CodecDiscriminator:
            return CodecDiscriminator.mini() if t.discriminator == "mini" else CodecDiscriminator.paper()

        scales = MINI_SCALES if t.mel_scales == "mini" else DAC_SCALES
        batch_size, seconds = args.codec_batch or t.batch_size, t.crop_seconds
    weights = codec_loss_weights(t.loss_weights, hp)
    batch = synthetic_batch(batch_size, seconds, hp)

    def make_solver(precision: str, tf32: bool, compile: bool) -> CodecSolver:
        torch.manual_seed(0)
        gen, disc = FACodec(hp), make_disc()
        return CodecSolver(
            generator=gen, discriminator=disc, mel_loss=MultiScaleMelLoss(scales), loss_weights=weights,
            optimizers=make_codec_optimizers(gen, disc, lr=t.lr, betas=tuple(t.betas), fused=device.type == "cuda"),
            adv_start_step=t.adv_start_step, batches=replay_epochs(lambda epoch: [batch]),
            out_dir=tempfile.mkdtemp(dir=args.tmp), max_steps=10**9, progress=False, device=device,
            precision=precision, tf32=tf32, compile=compile)

    gen_m = sum(p.numel() for p in FACodec(hp).parameters()) / 1e6
    disc_m = sum(p.numel() for p in make_disc().parameters()) / 1e6
    adversarial = "on" if t.adv_start_step is not None else "off (adv_start_step null)"
    return Workload("codec", f"generator {gen_m:.2f} M + discriminator {disc_m:.2f} M parameters, {hp.decoder} "
                    f"decoder, batch {batch_size} x {seconds:g} s, adversarial {adversarial}",
                    make_solver, batch, batch_size, batch_size * seconds, "audio s")


def synthetic_code_batch(hp, utterances: int, frames: int, seed: int = 0):
    """A CodeBatch of ``utterances`` x ``frames`` latent frames, phones of FRAMES_PER_PHONE frames each."""
    from ns3.data.code_batch import CodeBatch

    g = torch.Generator().manual_seed(seed)
    p = max(1, frames // FRAMES_PER_PHONE)
    f = p * FRAMES_PER_PHONE
    b = utterances
    return CodeBatch(codes=torch.randint(0, hp.codebook_size, (b, hp.num_levels, f), generator=g),
                     frame_mask=torch.ones(b, f, dtype=torch.bool),
                     phone_ids=torch.randint(1, hp.num_phones, (b, p), generator=g),
                     durations=torch.full((b, p), FRAMES_PER_PHONE),
                     phone_prosody=torch.randint(0, hp.codebook_size, (b, p), generator=g),
                     phone_mask=torch.ones(b, p, dtype=torch.bool), timbre=torch.randn(b, 256, generator=g),
                     keys=[f"u{i}" for i in range(b)], speakers=["s"] * b)


def diffusion_workload(params, args, device: torch.device) -> Workload:
    from ns3.builders import diffusion_hparams, diffusion_levels
    from ns3.diffusion.hparams import DiffusionHParams
    from ns3.diffusion.model import FactorizedDiffusion
    from ns3.solvers.diffusion import DiffusionSolver

    t = params.diffusion.train
    levels = diffusion_levels(6, True)
    if args.cpu:
        hp = DiffusionHParams.mini(num_phones=20, codebook_size=32, levels=levels, max_duration=16, encoder_layers=1,
                                   encoder_dim=32, encoder_heads=2, encoder_hidden=64, encoder_kernel=3, phone_layers=1,
                                   phone_dim=32, frame_layers=1, frame_dim=32, heads=2, hidden=64)
        frames, utterances = 40, 2
    else:
        hp = diffusion_hparams(params.diffusion.model, args.phones, params.codec.model.codebook_size, levels,
                               args.max_duration)
        frames = int(args.utt_seconds * FRAMES_PER_S) // FRAMES_PER_PHONE * FRAMES_PER_PHONE
        utterances = max(1, (args.diffusion_frames or t.batch_frames) // frames)
    batch = synthetic_code_batch(hp, utterances, frames)

    def make_solver(precision: str, tf32: bool, compile: bool) -> DiffusionSolver:
        torch.manual_seed(0)
        return DiffusionSolver(
            model=FactorizedDiffusion(hp), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay,
            warmup_steps=t.warmup_steps, loss_weights=dict(t.loss_weights), prompt_drop=t.prompt_drop,
            batches=lambda epoch, start: iter([batch]), out_dir=tempfile.mkdtemp(dir=args.tmp),
            max_steps=10**9, progress=False, device=device, precision=precision, tf32=tf32, compile=compile)

    params_m = FactorizedDiffusion(hp).num_parameters() / 1e6
    return Workload("diffusion", f"{params_m:.1f} M parameters, batch {utterances} x {frames} frames "
                    f"({frames / FRAMES_PER_S:g} s utterances, {hp.num_levels} code levels)",
                    make_solver, batch, utterances, utterances * frames, "frames")


# ---------------------------------------------------------------------------------------------- measurement
def measure(work: Workload, variant: str, args, device: torch.device) -> dict:
    precision, tf32, compile = VARIANTS[variant]
    if compile:
        torch._dynamo.reset()  # each compiled variant pays (and reports) its own compilation
    solver = work.make_solver(precision, tf32, compile)
    batch = work.batch.to(device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step() -> None:
        solver.train_step(batch)
        sync()

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(max(0, args.warmup - 2)):  # timed() adds one more untimed call
        step()
    row = {"model": work.name, "variant": variant, "precision": solver.precision, "tf32": tf32 and cuda,
           "compile": compile, "first_step_s": first, "step_s": timed(step, args.steps)}
    if cuda:
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    if variant == REFERENCE:
        row["flops_per_step"] = count_flops(step)
    return row


def summarize(work: Workload, rows: list[dict], flops: int | None, peak: float | None) -> None:
    """Add the derived figures to each measured row: samples/s, units/s, TFLOP/s, MFU, speed-up over fp32."""
    ref = next((r for r in rows if r["variant"] == REFERENCE and "step_s" in r), None)
    for r in rows:
        if "step_s" not in r:
            continue
        s = r["step_s"]
        r.update(samples_per_s=work.samples / s, units_per_s=work.units / s, unit=work.unit_name,
                 tflops_per_s=flops / s / 1e12 if flops else None,
                 mfu=mfu(flops, s, peak) if flops and peak else None,
                 speedup_vs_fp32=ref["step_s"] / s if ref else None)


def print_table(work: Workload, rows: list[dict], flops: int | None) -> None:
    def fmt(v: float | None, spec: str, scale: float = 1.0, suffix: str = "") -> str:
        return "n/a" if v is None else f"{v * scale:{spec}}{suffix}"

    tf = f"{flops / 1e12:.3g} TFLOP" if flops else "n/a"
    print(f"\n{work.name}: {work.description}; {tf} per step (forward + backward, FlopCounterMode)")
    print(f"{'variant':<14}{'first s':>9}{'step ms':>10}{'samples/s':>11}{work.unit_name + '/s':>12}"
          f"{'TFLOP/s':>9}{'MFU':>8}{'x fp32':>8}{'peak GiB':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['variant']:<14}failed: {r['error']}")
            continue
        print(f"{r['variant']:<14}{r['first_step_s']:>9.2f}{r['step_s'] * 1e3:>10.1f}{r['samples_per_s']:>11.1f}"
              f"{r['units_per_s']:>12.1f}{fmt(r['tflops_per_s'], '.3g'):>9}{fmt(r['mfu'], '.1f', 100, '%'):>8}"
              f"{fmt(r['speedup_vs_fp32'], '.2f'):>8}{fmt(r.get('peak_mem_gib'), '.2f'):>10}")


def run_model(work: Workload, variants: list[str], args, device: torch.device, name: str,
              peak: float | None) -> list[dict]:
    rows = []
    for v in variants:
        try:
            rows.append(measure(work, v, args, device))
        except Exception as e:  # one failing variant (e.g. a compiler error) must not hide the others
            rows.append({"model": work.name, "variant": v, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
        if device.type == "cuda":
            torch.cuda.empty_cache()
    flops = next((r.get("flops_per_step") for r in rows if r["variant"] == REFERENCE), None)
    summarize(work, rows, flops, peak)
    print_table(work, rows, flops)
    return [{**r, "device": name, "peak_tflops": peak, "flops_per_step": flops} for r in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="paper", help="params profile whose sizes and batch shapes are measured")
    ap.add_argument("--models", nargs="+", choices=("codec", "diffusion"), default=["codec", "diffusion"])
    ap.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=None,
                    help="default: fp32 tf32 bf16 bf16+compile on CUDA, fp32 bf16 on the CPU; fp32 is always "
                    "measured (the reference)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per variant (at least 2)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant (median)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: the bf16 table)")
    ap.add_argument("--utt-seconds", type=float, default=10.0, help="diffusion utterance length")
    ap.add_argument("--codec-batch", type=int, default=None, help="codec clips per step (default: the profile's)")
    ap.add_argument("--diffusion-frames", type=int, default=None, help="diffusion frames per step (default: the profile's)")
    ap.add_argument("--phones", type=int, default=100, help="phone inventory size of the heads and the encoder")
    ap.add_argument("--speakers", type=int, default=1000, help="speaker classes of the codec's speaker heads")
    ap.add_argument("--max-duration", type=int, default=40, help="duration classes of the diffusion")
    ap.add_argument("--cpu", action="store_true", help="run on the CPU at tiny sizes (checks the code path)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    args.warmup = max(2, args.warmup)

    if not args.cpu and not torch.cuda.is_available():
        print(f"skipped: no CUDA device ({no_cuda_reason()}); --cpu runs the same measurement at tiny sizes")
        return 0
    from ns3.config import load_params

    params = load_params(profile=args.profile)
    device = torch.device("cpu") if args.cpu else torch.device("cuda", torch.cuda.current_device())
    variants = args.variants or (["fp32", "bf16"] if args.cpu else ["fp32", "tf32", "bf16", "bf16+compile"])
    variants = [REFERENCE] + [v for v in dict.fromkeys(variants) if v != REFERENCE]
    if args.cpu:
        variants = [v for v in variants if not v.startswith("tf32")]  # TF32 is a CUDA tensor-core mode
        name, peak = f"CPU ({torch.get_num_threads()} threads)", args.peak_tflops
        source = "--peak-tflops" if peak else "none given: MFU n/a"
    else:
        name = torch.cuda.get_device_name(device)
        found = peak_bf16_tflops(name)
        peak = args.peak_tflops or (found[0] if found else None)
        source = ("--peak-tflops" if args.peak_tflops else f"table: {found[1]}" if found
                  else "not in the table: pass --peak-tflops for MFU")
    peak_text = f"{peak:g} TFLOP/s" if peak else "n/a"
    print(f"device {name}, torch {torch.__version__}, profile {args.profile}{' (tiny CPU sizes)' if args.cpu else ''}; "
          f"peak bf16 dense {peak_text} ({source}); warm-up {args.warmup}, median of {args.steps} steps")
    builders = {"codec": codec_workload, "diffusion": diffusion_workload}
    out = []
    with tempfile.TemporaryDirectory(prefix="ns3-bench-") as tmp:
        args.tmp = tmp  # the solvers' out_dir (nothing is written there: no step reaches a checkpoint)
        for model in args.models:
            out += run_model(builders[model](params, args, device), variants, args, device, name, peak)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 1 if any("error" in r for r in out) else 0


if __name__ == "__main__":
    sys.exit(main())
