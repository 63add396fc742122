"""CodecSolver: FACodec training (paper §3.2 / B.1): reconstruction + GAN + VQ + supervision + GRL losses.

Per step: the discriminator update (LSGAN on real vs detached reconstruction), then one generator update
on ``weighted_sum(losses, loss_weights)``. Loss names are the metric names and the loss-weight keys.
Adversarial terms can start after ``adv_start_step`` steps, which lets short CPU runs learn a rough
reconstruction before the discriminator pushes back; ``None`` leaves them off (the discriminator is kept,
untrained, so checkpoints have one layout).

In bf16 (``precision``, see ns3/solvers/precision.py) the generator and discriminator forwards run under
autocast, every loss in fp32, and the layers `keep_fp32_layers` lists stay fp32 inside the generator.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ns3 import tracking
from ns3.audio import log_mel
from ns3.codec.discriminators import DiscriminatorOutput
from ns3.data.batch import CodecBatch
from ns3.losses import (
    MultiResolutionSTFTLoss,
    MultiScaleMelLoss,
    classification_loss,
    feature_matching_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    masked_bce_with_logits,
    masked_cross_entropy,
    masked_l1,
    weighted_sum,
)
from ns3.solvers.base import BaseSolver
from ns3.solvers.distributed import init_distributed
from ns3.solvers.precision import run_in_fp32


GENERATOR, DISCRIMINATOR = "generator", "discriminator"
ADVERSARIAL_KEYS = ("codec/adv", "codec/feat")

# Paper B.1 weights. codec/uv and codec/grl_uv are not in the paper: voicing is part of the F0 target
# there, so they take the F0 weights [inferred]. The paper's timbre speaker-ID loss has no stated weight;
# codec/speaker takes the speaker-GRL's 1.0 [inferred]. codec/register (the timbre's pitch register, for the
# pitch-excited decoder, ns3/codec/excitation.py) is ours, weighted like the F0 supervision it completes.
# codec/stft (multi-resolution STFT loss, ns3/losses/stft.py) is ours too, for the iSTFT decoder only.
PAPER_LOSS_WEIGHTS: dict[str, float] = {
    "codec/rec": 10.0, "codec/adv": 2.0, "codec/feat": 2.0, "codec/codebook": 1.0, "codec/commit": 0.25,
    "codec/f0": 5.0, "codec/uv": 5.0, "codec/phone": 5.0,
    "codec/grl_f0": 5.0, "codec/grl_uv": 5.0, "codec/grl_phone": 5.0, "codec/grl_speaker": 1.0,
    "codec/speaker": 1.0, "codec/register": 5.0, "codec/stft": 5.0,
}


def available_loss_keys(hp: Any) -> set[str]:
    """The generator loss keys a FACodec with hyper-parameters ``hp`` produces (see FACodecHParams)."""
    keys = {"codec/rec", "codec/codebook", "codec/commit", *ADVERSARIAL_KEYS}
    if hp.heads:
        keys |= {"codec/f0", "codec/uv", "codec/phone"}
        if (hp.use_detail and hp.grl_detail_f0) or hp.grl_content_f0:
            keys |= {"codec/grl_f0", "codec/grl_uv"}
        if (hp.use_detail and hp.grl_detail_phone) or hp.grl_prosody_phone:
            keys.add("codec/grl_phone")
        if hp.grl_speaker:
            keys.add("codec/grl_speaker")
        if hp.timbre_speaker:
            keys.add("codec/speaker")
    if hp.excitation:
        keys.add("codec/register")
    if hp.decoder == "istft":
        keys.add("codec/stft")
    return keys


def paper_loss_weights(hp: Any) -> dict[str, float]:
    """PAPER_LOSS_WEIGHTS restricted to the losses this configuration has (ablations switch heads off)."""
    keys = available_loss_keys(hp)
    return {k: w for k, w in PAPER_LOSS_WEIGHTS.items() if k in keys}


def make_codec_optimizers(
    generator: nn.Module, discriminator: nn.Module, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.9),
    fused: bool = False,
) -> dict[str, torch.optim.Optimizer]:
    """The paper's two Adam optimisers (lr 2e-4, betas (0.5, 0.9)).

    ``fused``: one kernel per step for all parameters instead of a few per tensor; meant for CUDA, where
    the solver turns it on (the models may still be on the CPU when this is called: the solver moves them).
    """
    extra = {"fused": True} if fused else {}
    return {
        GENERATOR: torch.optim.Adam(generator.parameters(), lr=lr, betas=betas, **extra),
        DISCRIMINATOR: torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas, **extra),
    }


def keep_fp32_layers(generator: nn.Module) -> list[str]:
    """Apply `run_in_fp32` to the generator layers that must not run in bf16; returns their qualified names.

    Which layers, and why:
    - FactorizedVQ (every codebook): the nearest-code search is a cosine-similarity matmul and an argmax
      over 1024 entries; in bf16 (8-bit mantissa) close neighbours tie or swap, so the codes would depend
      on the precision. The straight-through estimate, the codebook/commitment MSEs and the dead-code
      restart (encoder vectors written into the fp32 codebook) run in it too. Its projections are
      256 -> 8 -> 256 per frame: negligible cost.
    - MelFrontEnd (the V2 prosody input): its filterbank matmul is its only op autocast would lower; kept
      fp32, the feature the prosody codebook sees in training is the fp32 one it sees at inference.
    - ISTFTGenerator.head: the linear layer whose outputs are the log-magnitude (exponentiated: bf16
      spacing at 4 is 0.03, a 3 % magnitude error) and the phase (an unbounded angle fed to cos/sin: bf16
      spacing at 50 rad is 0.25 rad). The head already casts to fp32 before exp and the iSTFT; this makes
      the values it casts fp32 as well. One linear per frame.
    - WaveGenerator's output convolution (C -> 1 channel, before the tanh): a bf16 waveform carries
      rounding noise about 50 dB under the signal at every sample, which the multi-scale mel loss reads
      as hiss in the quiet bands. One output channel: negligible cost.
    Already fp32 without help: the iSTFT, the STFTs of the discriminator and of the losses (inputs cast
    with .float(); autocast does not lower (i)stft), the harmonic excitation (float64 phase), layer norms
    (on CUDA autocast keeps them fp32), and every loss (`BaseSolver.amp_forward` hands outputs back in fp32).
    """
    from ns3.codec.decoder import WaveGenerator
    from ns3.codec.istft import ISTFTGenerator
    from ns3.codec.layers import WNConv1d
    from ns3.codec.mel import MelFrontEnd
    from ns3.codec.quantizer import FactorizedVQ

    kept = []
    for name, module in generator.named_modules():
        target, where = None, name
        if isinstance(module, (FactorizedVQ, MelFrontEnd)):
            target = module
        elif isinstance(module, ISTFTGenerator):
            target, where = module.head, f"{name}.head"
        elif isinstance(module, WaveGenerator):
            convs = [i for i, m in enumerate(module.model) if isinstance(m, WNConv1d)]
            target, where = module.model[convs[-1]], f"{name}.model.{convs[-1]}"
        if target is not None:
            run_in_fp32(target)
            kept.append(where)
    return kept


def supervision_losses(out: Any, batch: CodecBatch) -> dict[str, torch.Tensor]:
    """Supervision and gradient-reversal head losses of a CodecOutput against a CodecBatch's labels.

    The reversal itself happens inside the model, so here every head simply minimises its loss.
    GRL losses of the same target from several factors (F0 from detail and content; phones from detail
    and prosody) are summed under one key, matching the paper's single λ per target.
    """
    mask, voiced = batch.frame_mask, batch.frame_mask & (batch.uv > 0.5)
    losses: dict[str, torch.Tensor] = {}

    def add(key: str, value: torch.Tensor) -> None:
        losses[key] = losses[key] + value if key in losses else value

    if out.phone_logits is not None:
        add("codec/phone", masked_cross_entropy(out.phone_logits, batch.phone_ids, mask))
    if out.f0_pred is not None:
        add("codec/f0", masked_l1(out.f0_pred, batch.f0, voiced))
    if out.uv_logits is not None:
        add("codec/uv", masked_bce_with_logits(out.uv_logits, batch.uv, mask))
    for name in ("grl_phone_logits", "grl_prosody_phone_logits"):
        if getattr(out, name, None) is not None:
            add("codec/grl_phone", masked_cross_entropy(getattr(out, name), batch.phone_ids, mask))
    for name in ("grl_f0_pred", "grl_content_f0_pred"):
        if getattr(out, name, None) is not None:
            add("codec/grl_f0", masked_l1(getattr(out, name), batch.f0, voiced))
    for name in ("grl_uv_logits", "grl_content_uv_logits"):
        if getattr(out, name, None) is not None:
            add("codec/grl_uv", masked_bce_with_logits(getattr(out, name), batch.uv, mask))
    if out.grl_speaker_logits is not None:
        add("codec/grl_speaker", classification_loss(out.grl_speaker_logits, batch.speaker_ids))
    if out.speaker_logits is not None:
        add("codec/speaker", classification_loss(out.speaker_logits, batch.speaker_ids))
    if out.register is not None:
        add("codec/register", (out.register - batch.f0_stats).abs().mean())
    return losses


class CodecSolver(BaseSolver):
    """FACodec + discriminator training. Other keyword arguments go to BaseSolver.

    ``loss_weights`` keys must be generator loss names (``codec/...``); unknown keys fail at construction
    when the generator exposes its hyper-parameters (``generator.hp``), otherwise at the first step.
    ``sample_wavs`` [N, T]: fixed clips for periodic audio/spectrogram logging (default: the first
    training batch's first two clips).
    """

    def __init__(
        self,
        *,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
        mel_loss: MultiScaleMelLoss | None = None,
        loss_weights: Mapping[str, float] | None = None,
        adv_start_step: int | None = 0,
        sample_wavs: torch.Tensor | None = None,
        num_samples: int = 2,
        **kwargs: Any,
    ) -> None:
        if optimizers is None:
            device = init_distributed(kwargs.get("device")).device  # where the solver will put the models
            optimizers = make_codec_optimizers(generator, discriminator, fused=device.type == "cuda")
        optimizers = dict(optimizers)
        if set(optimizers) != {GENERATOR, DISCRIMINATOR}:
            raise ValueError(f"CodecSolver needs optimizers {{'{GENERATOR}', '{DISCRIMINATOR}'}}, got {sorted(optimizers)}")
        hp = getattr(generator, "hp", None)
        weights = dict(loss_weights) if loss_weights is not None else (
            paper_loss_weights(hp) if hp is not None else dict(PAPER_LOSS_WEIGHTS))
        if hp is not None:
            unknown = sorted(set(weights) - available_loss_keys(hp))
            if unknown:
                raise ValueError(f"loss weights {unknown} name losses this FACodec configuration does not compute; "
                                 f"it computes {sorted(available_loss_keys(hp))}")
        if adv_start_step is not None and adv_start_step < 0:
            raise ValueError(f"adv_start_step must be >= 0, got {adv_start_step}")
        self.loss_weights = weights
        self.adv_start_step = adv_start_step
        self.num_samples = num_samples
        self.sample_wavs = sample_wavs.detach().cpu() if sample_wavs is not None else None
        super().__init__(models={GENERATOR: generator, DISCRIMINATOR: discriminator}, optimizers=optimizers, **kwargs)
        # Before the first forward, which is also when torch.compile traces (it is lazy).
        self.fp32_layers = keep_fp32_layers(self.unwrapped(GENERATOR)) if self.amp_dtype is not None else []
        self.mel_loss = (mel_loss or MultiScaleMelLoss()).to(self.device)
        # computed only when weighted: it costs three STFTs of both signals per step
        self.stft_loss = MultiResolutionSTFTLoss().to(self.device) if weights.get("codec/stft") else None

    # ------------------------------------------------------------------ training
    def adversarial_active(self) -> bool:
        return self.adv_start_step is not None and self.step >= self.adv_start_step

    def train_step(self, batch: CodecBatch) -> dict[str, float | torch.Tensor]:
        batch = batch.to(self.device, non_blocking=True)
        if self.sample_wavs is None:
            self.sample_wavs = batch.wav[: self.num_samples].detach().cpu()
        gen, disc = self.models[GENERATOR], self.models[DISCRIMINATOR]
        lengths = None
        if not bool(batch.frame_mask.all()):  # padded short utterances: let the model mask pooling/attention
            lengths = batch.frame_mask.sum(1) * (batch.wav.shape[1] // batch.num_frames)
        # A pitch-excited decoder is driven by the true F0 in training (teacher forcing); others ignore it.
        out = self.amp_forward(gen, batch.wav, phone_ids=batch.phone_ids, lengths=lengths, f0=batch.f0_hz)
        wav, wav_hat = batch.wav, out.wav_hat
        metrics: dict[str, float | torch.Tensor] = {}
        adversarial = self.adversarial_active()

        if adversarial:
            d = self.amp_forward(disc, torch.cat([wav, wav_hat.detach()])).split([len(wav), len(wav)])
            disc_loss = lsgan_discriminator_loss(d[0].logits, d[1].logits)
            metrics["disc/grad_norm"] = self.optimize(DISCRIMINATOR, disc_loss, {"disc/loss": disc_loss})
            metrics["disc/loss"] = disc_loss.detach()

        losses: dict[str, torch.Tensor] = {
            "codec/rec": self.mel_loss(wav_hat, wav),
            "codec/codebook": out.codebook_loss,
            "codec/commit": out.commitment_loss,
            **supervision_losses(out, batch),
        }
        if self.stft_loss is not None:
            losses["codec/stft"] = self.stft_loss(wav_hat, wav)
        weights = self.loss_weights
        if adversarial:
            with torch.no_grad():
                real: DiscriminatorOutput = self.amp_forward(self.unwrapped(DISCRIMINATOR), wav)
            fake: DiscriminatorOutput = self.amp_forward(disc, wav_hat)
            losses["codec/adv"] = lsgan_generator_loss(fake.logits)
            losses["codec/feat"] = feature_matching_loss(real.features, fake.features)
        else:
            weights = {k: w for k, w in weights.items() if k not in ADVERSARIAL_KEYS}
        total = weighted_sum(losses, weights)
        metrics["codec/grad_norm"] = self.optimize(GENERATOR, total, losses)
        metrics.update({k: v.detach() for k, v in losses.items()})
        metrics["codec/total"] = total.detach()
        metrics["codec/detail_kept"] = out.detail_kept.float().mean().detach()
        return metrics

    # ------------------------------------------------------------------ samples
    def evaluate(self, step: int) -> dict[str, float]:
        """Reconstruct the sample clips: log audio + spectrogram picture, return ``eval/codec_rec``."""
        metrics = dict(super().evaluate(step))
        if self.sample_wavs is None:
            return metrics
        gen = self.unwrapped(GENERATOR)
        was_training = gen.training
        gen.eval()
        try:
            with torch.no_grad():
                wav = self.sample_wavs.to(self.device)
                wav_hat = gen(wav).wav_hat
                metrics["eval/codec_rec"] = float(self.mel_loss(wav_hat, wav))
        finally:
            gen.train(was_training)
        if tracking.active():
            ref, rec = wav.cpu().numpy(), wav_hat.float().cpu().numpy()
            for i in range(len(ref)):
                tracking.log_audio(ref[i], f"samples/step_{step:07d}/{i}_original.wav")
                tracking.log_audio(rec[i], f"samples/step_{step:07d}/{i}_reconstructed.wav")
            tracking.log_figure(spectrogram_figure(ref, rec, step), f"samples/step_{step:07d}/spectrograms.png")
        return metrics

    # ------------------------------------------------------------------ export
    def export(self, path: str | Path) -> Path:
        """Save the trained generator (unwrapped) as a codec checkpoint (``ns3.codec.save_codec`` format,
        loadable with ``ns3.codec.load_codec``). Rank 0 only under DDP."""
        from ns3.codec.checkpoint import save_codec

        path = Path(path)
        if self.dist.is_main:
            save_codec(path, self.unwrapped(GENERATOR))
        return path


def spectrogram_figure(original: np.ndarray, reconstructed: np.ndarray, step: int):
    """original/reconstructed [N, T] -> matplotlib figure: one row per clip, original | reconstruction."""
    import matplotlib.pyplot as plt

    n = len(original)
    fig, axes = plt.subplots(n, 2, figsize=(10, 2.6 * n), squeeze=False, constrained_layout=True)
    for i in range(n):
        for j, (title, w) in enumerate((("original", original[i]), ("reconstruction", reconstructed[i]))):
            ax = axes[i][j]
            ax.imshow(log_mel(np.asarray(w, np.float32)), origin="lower", aspect="auto", cmap="magma")
            ax.set_title(f"clip {i} {title} (step {step})", fontsize=9)
            ax.set_xlabel("frame (80/s)")
            ax.set_ylabel("mel bin")
    return fig
