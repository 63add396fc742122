"""FACodec training-step cost on this machine, as a ratio against the forward pass of the same codec.

Builds the ``mini`` FACodec and the mini discriminator with random weights, then times on a batch of
``--batch`` × ``--seconds`` s of synthetic speech-like audio:
  - forward only (codec forward under no_grad: the reference),
  - a warm-up step (generator losses only, no discriminator: ``adv_start_step`` not reached),
  - a full CodecSolver step (discriminator update + generator update with every loss).
The ratios (step / forward) compare across machines; absolute times do not. Nothing is asserted.

    python benchmarks/codec_train_step.py [--batch 8] [--seconds 1] [--repeats 3] [--threads 2] [--mel dac|mini]
                                          [--excitation] [--contend]
                                          [--decoder dac istft]
"""
from __future__ import annotations

import argparse
import tempfile

import ns3  # noqa: F401  (first: sets the OpenMP wait policy before torch loads, as every ns3 command does)
import torch

from ns3.audio import HOP_LENGTH, SAMPLE_RATE
from ns3.codec import FACodec, FACodecHParams
from ns3.codec.discriminators import CodecDiscriminator
from ns3.data.batch import CodecBatch
from ns3.losses import DAC_SCALES, MINI_SCALES, MultiScaleMelLoss
from ns3.solvers.base import replay_epochs
from ns3.solvers.codec import CodecSolver
from timing import contending_process, timed  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)


def synthetic_batch(batch: int, seconds: float, hp: FACodecHParams, seed: int = 0) -> CodecBatch:
    g = torch.Generator().manual_seed(seed)
    frames = int(seconds * SAMPLE_RATE) // HOP_LENGTH
    t = torch.arange(frames * HOP_LENGTH) / SAMPLE_RATE
    f0 = 100 + 150 * torch.rand(batch, 1, generator=g)
    wav = sum(0.3 / k * torch.sin(2 * torch.pi * k * f0 * t) for k in range(1, 6)) + 0.01 * torch.randn(batch, t.numel(), generator=g)
    return CodecBatch(
        wav=wav.float(), phone_ids=torch.randint(0, hp.num_phones, (batch, frames), generator=g),
        f0=torch.randn(batch, frames, generator=g), uv=(torch.rand(batch, frames, generator=g) > 0.3).float(),
        speaker_ids=torch.randint(0, hp.num_speakers, (batch,), generator=g),
        frame_mask=torch.ones(batch, frames, dtype=torch.bool),
        f0_stats=torch.cat([torch.log(f0), torch.full_like(f0, 0.1)], dim=1),  # (mean, std) of log-F0
    )



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: leave the default)")
    ap.add_argument("--mel", choices=("dac", "mini"), default="dac", help="mel-loss resolutions (dac = 7 scales)")
    ap.add_argument("--excitation", action="store_true", help="the pitch-excited decoder (codec.model.excitation)")
    ap.add_argument("--decoder", nargs="+", choices=("dac", "istft"), default=["dac"],
                    help="decoders to time side by side (codec.model.decoder)")
    ap.add_argument("--size", choices=("mini", "paper"), default="mini",
                    help="codec and discriminator size preset (paper: the release's sizes)")
    ap.add_argument("--contend", action="store_true",
                    help="time the steps again beside one other CPU-bound process and print the slowdown")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = [measure(decoder, args) for decoder in args.decoder]
    audio_s = args.batch * args.seconds
    print(f"device {rows[0]['device']}, threads {torch.get_num_threads()}, batch {args.batch} x {args.seconds:g} s, "
          f"mel scales {args.mel}, excitation {args.excitation}; {args.size} sizes, discriminator "
          f"{rows[0]['disc_m']:.2f} M params")
    print(f"{'measurement':<52}{'seconds':>10}{'x forward':>11}{'audio s / s':>13}")
    ref = rows[0]["forward"]  # the first decoder's forward: every row compares against the same reference
    for r in rows:
        tag = f"[{r['decoder']}, {r['gen_m']:.2f} M]"
        for name, key in (("codec forward, no_grad", "forward"), ("warm-up step (generator losses only)", "warm"),
                          ("full step (discriminator + generator)", "full")):
            t = r[key]
            print(f"{name + ' ' + tag:<52}{t:>10.3f}{t / ref:>11.2f}{audio_s / t:>13.2f}")
    if args.contend:
        import os

        policy = os.environ.get("OMP_WAIT_POLICY", "unset")
        for r in rows:
            print(f"{r['decoder']} beside one busy process (OMP_WAIT_POLICY={policy}): warm-up step {r['c_warm']:.3f} s "
                  f"= {r['c_warm'] / r['warm']:.2f}x alone, full step {r['c_full']:.3f} s = {r['c_full'] / r['full']:.2f}x "
                  "alone (fair share of 2 cores: 1.5x)")


def measure(decoder: str, args: argparse.Namespace) -> dict:
    """Forward / warm-up step / full step seconds of the ``args.size`` codec with ``decoder``."""
    torch.manual_seed(0)
    preset = FACodecHParams.paper if args.size == "paper" else FACodecHParams.mini
    hp = preset(excitation=args.excitation, decoder=decoder)
    gen = FACodec(hp)
    disc = CodecDiscriminator.paper() if args.size == "paper" else CodecDiscriminator.mini()
    batch = synthetic_batch(args.batch, args.seconds, hp)
    with tempfile.TemporaryDirectory() as out_dir:
        solver = CodecSolver(  # default weights: the paper's, plus codec/stft for the iSTFT decoder
            generator=gen, discriminator=disc, batches=replay_epochs(lambda epoch: [batch]), out_dir=out_dir,
            max_steps=1, progress=False, device=args.device,
            mel_loss=MultiScaleMelLoss(DAC_SCALES if args.mel == "dac" else MINI_SCALES),
        )
        dev_batch = batch.to(solver.device)
        sync = torch.cuda.synchronize if solver.device.type == "cuda" else (lambda: None)

        def forward() -> None:
            with torch.no_grad():
                gen(dev_batch.wav)
            sync()

        def step(adversarial: bool) -> None:
            solver.adv_start_step = 0 if adversarial else 10**9
            solver.train_step(dev_batch)
            sync()

        r = {"decoder": decoder, "device": solver.device, "forward": timed(forward, args.repeats),
             "warm": timed(lambda: step(False), args.repeats), "full": timed(lambda: step(True), args.repeats),
             "gen_m": sum(p.numel() for p in gen.parameters()) / 1e6,
             "disc_m": sum(p.numel() for p in disc.parameters()) / 1e6}
        if args.contend:
            with contending_process():
                r["c_warm"] = timed(lambda: step(False), args.repeats)
                r["c_full"] = timed(lambda: step(True), args.repeats)
    return r


if __name__ == "__main__":
    main()
