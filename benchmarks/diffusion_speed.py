"""Factorized diffusion cost on this machine, as ratios against references measured in the same run.

    python benchmarks/diffusion_speed.py [--seconds 10] [--repeats 2] [--device cpu|cuda] [--sizes paper mini]
                                         [--contend]

For each size (random weights): the parameter count per network; the forward cost of one NFE of the
frame-level model on a ``--seconds`` target (plus a 3 s prompt) and of the phone-level model; the wall time
of a whole generation in the default mode (60 NFE) and the one-step mode (15 NFE) and their ratio (durations
pinned so that the generated target is ``--seconds`` long); and
the mini model's training step time on a batch of ``--batch-frames`` frames. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import time

import ns3  # noqa: F401  (first: sets the OpenMP wait policy before torch loads, as every ns3 command does)
import torch

from ns3.data.code_batch import CodeBatch
from ns3.diffusion.generate import GenerationConfig, PromptUtterance, generate
from ns3.diffusion.hparams import DiffusionHParams
from ns3.diffusion.model import FactorizedDiffusion
from ns3.diffusion.networks import TASK_PROSODY
from ns3.solvers.diffusion import DiffusionSolver
from timing import contending_process, timed  # benchmarks/timing.py

FRAMES_PER_S, FRAMES_PER_PHONE = 80, 8  # codec frame rate; ~10 phones/s of read speech


def _prompt(hp: DiffusionHParams, seconds: float, g: torch.Generator) -> PromptUtterance:
    p = max(1, int(seconds * FRAMES_PER_S / FRAMES_PER_PHONE))
    return PromptUtterance(torch.randint(1, hp.num_phones, (p,), generator=g), torch.full((p,), FRAMES_PER_PHONE),
                           torch.randint(0, hp.codebook_size, (p,), generator=g),
                           torch.randint(0, hp.codebook_size, (hp.num_levels, p * FRAMES_PER_PHONE), generator=g))


def _batch(hp: DiffusionHParams, b: int, frames: int, g: torch.Generator) -> CodeBatch:
    p = frames // FRAMES_PER_PHONE
    return CodeBatch(torch.randint(0, hp.codebook_size, (b, hp.num_levels, p * FRAMES_PER_PHONE), generator=g),
                     torch.ones(b, p * FRAMES_PER_PHONE, dtype=torch.bool), torch.randint(1, hp.num_phones, (b, p), generator=g),
                     torch.full((b, p), FRAMES_PER_PHONE), torch.randint(0, hp.codebook_size, (b, p), generator=g),
                     torch.ones(b, p, dtype=torch.bool), torch.randn(b, 8), [str(i) for i in range(b)], ["s"] * b)


def measure(size: str, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    hp = (DiffusionHParams.paper if size == "paper" else DiffusionHParams.mini)(num_phones=100)
    model = FactorizedDiffusion(hp).to(args.device).eval()
    # Random weights would draw durations anywhere in 1..max_duration and make the target ~2.5x longer than
    # --seconds (attention is quadratic): the duration head is set to answer FRAMES_PER_PHONE for every phone.
    with torch.no_grad():
        model.phone_model.duration_head.weight.zero_()
        model.phone_model.duration_head.bias.fill_(-1e4)[FRAMES_PER_PHONE] = 1e4
    params = {k: sum(p.numel() for p in getattr(model, k).parameters()) / 1e6 for k in ("encoder", "phone_model", "frame_model")}
    prompt = _prompt(hp, 3.0, g)
    target_phones = torch.randint(1, hp.num_phones, (int(args.seconds * FRAMES_PER_S / FRAMES_PER_PHONE),), generator=g)
    n = prompt.codes.shape[1] + len(target_phones) * FRAMES_PER_PHONE
    tokens = torch.randint(0, hp.codebook_size, (1, hp.num_levels, n), generator=g).to(args.device)
    cond = torch.randn(1, n, hp.encoder_dim, generator=g).to(args.device)
    mask = torch.ones(1, n, dtype=torch.bool, device=args.device)
    lev, t = torch.zeros(1, dtype=torch.long, device=args.device), torch.ones(1, device=args.device)
    p_all = len(prompt.phone_ids) + len(target_phones)
    ptok = torch.randint(0, hp.codebook_size, (1, p_all), generator=g).to(args.device)
    pstate = torch.randn(1, p_all, hp.encoder_dim, generator=g).to(args.device)
    pmask = torch.ones(1, p_all, dtype=torch.bool, device=args.device)
    with torch.inference_mode():
        frame_nfe = timed(lambda: model.frame_model(tokens, lev, cond, t, mask), args.repeats)
        phone_nfe = timed(lambda: model.phone_model(TASK_PROSODY, ptok, pstate, t, pmask), args.repeats)
    row = {"size": size, "params": params, "frame_nfe": frame_nfe, "phone_nfe": phone_nfe}
    for mode, steps in (("default", 4), ("one_step", 1)):
        cfg = GenerationConfig(steps=steps)
        t0 = time.perf_counter()
        out = generate(model, [target_phones], [{"prosody": prompt}], cfg)
        row[mode] = (time.perf_counter() - t0, out.nfe)
        assert out.codes[0].shape[-1] == len(target_phones) * FRAMES_PER_PHONE  # the timed target is --seconds long
    if size == "mini":
        import tempfile

        batch = _batch(hp, max(1, args.batch_frames // 400), 400, g)
        with tempfile.TemporaryDirectory() as d:
            solver = DiffusionSolver(model=FactorizedDiffusion(hp), batches=lambda e, s: iter([batch]), out_dir=d,
                                     max_steps=1, progress=False, device=args.device, warmup_steps=1)
            row["train_step"] = timed(lambda: solver.train_step(batch), args.repeats)
            if args.contend:  # a busy laptop: one other CPU-bound process beside the training
                with contending_process():
                    row["train_step_contended"] = timed(lambda: solver.train_step(batch), args.repeats)
            row["train_frames"] = batch.codes.shape[0] * batch.codes.shape[-1]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-frames", type=int, default=4000)
    ap.add_argument("--sizes", nargs="+", default=["paper", "mini"], choices=("paper", "mini"))
    ap.add_argument("--contend", action="store_true", help="also time the mini training step beside one busy process")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    rows = [measure(s, args) for s in args.sizes]
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, target {args.seconds:g} s + 3 s prompt")
    ref = rows[0]
    for r in rows:
        total = sum(r["params"].values())
        parts = ", ".join(f"{k} {v:.1f} M" for k, v in r["params"].items())
        print(f"[{r['size']}] parameters {total:.1f} M ({parts})")
        print(f"[{r['size']}] one NFE: frame-level {r['frame_nfe'] * 1e3:.1f} ms, phone-level {r['phone_nfe'] * 1e3:.1f} ms "
              f"(frame NFE = {r['frame_nfe'] / ref['frame_nfe']:.3f}x {ref['size']}'s)")
        (d_s, d_n), (o_s, o_n) = r["default"], r["one_step"]
        print(f"[{r['size']}] generation: {d_n} NFE {d_s:.2f} s (RTF {d_s / args.seconds:.3f}), {o_n} NFE {o_s:.2f} s "
              f"(RTF {o_s / args.seconds:.3f}); {d_n}-NFE / {o_n}-NFE wall time = {d_s / o_s:.2f}x")
        if "train_step" in r:
            print(f"[{r['size']}] training step on {r['train_frames']} frames: {r['train_step']:.3f} s "
                  f"({r['train_frames'] / r['train_step']:.0f} frames/s)")
        if "train_step_contended" in r:
            print(f"[{r['size']}] beside one busy process: {r['train_step_contended']:.3f} s "
                  f"({r['train_step_contended'] / r['train_step']:.2f}x; fair sharing of 2 cores: 1.5x)")


if __name__ == "__main__":
    main()
