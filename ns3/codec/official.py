"""Load the public FACodec checkpoints (Amphion ``ns3_codec``: encoder, decoder, optional re-decoder;
V1 or V2) into ``FACodec``, and write ours back out in that layout.

The released files are plain ``state_dict``s of the release's modules, with legacy weight-norm
``weight_g``/``weight_v`` pairs, which our layers store under the same names; the mapping is a short
list of prefix renames. Sizes are read off the tensors, so any configuration in that layout loads.
What the import reproduces: outputs equal the reference at batch size 1 (see ``hparams.positional``);
V1 framing without input padding; V2 with the input padded to a multiple of the hop.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from ns3.codec.hparams import FACodecHParams
from ns3.codec.model import FACodec
from ns3.codec.quantizer import RUN_STATISTICS
from ns3.codec.transformer import sinusoid

# (published prefix, our prefix) per file; the first match wins.
ENCODER_RULES = [("block.", "encoder.block."), ("mel_transform.", "mel.")]
DECODER_RULES = [
    ("quantizer.0.", "quantizer.prosody."),
    ("quantizer.1.", "quantizer.content."),
    ("quantizer.2.", "quantizer.detail."),
    ("model.", "decoder.model."),
    ("timbre_encoder.", "timbre_encoder."),
    ("timbre_linear.", "decoder_cln.linear."),
    ("melspec_linear.", "prosody_encoder.linear."),
    ("melspec_encoder.", "prosody_encoder.encoder."),
    ("f0_predictor.", "heads.f0."),
    ("phone_predictor.", "heads.phone."),
    ("res_f0_predictor.1.", "heads.grl_detail_f0."),
    ("res_phone_predictor.1.", "heads.grl_detail_phone."),
    ("x_timbre_predictor.1.", "heads.grl_speaker."),
    ("content_f0_predictor.1.", "heads.grl_content_f0."),
    ("prosody_phone_predictor.1.", "heads.grl_prosody_phone."),
]
REDECODER_RULES = [
    ("prosody_embs.", "redecoder.prosody_embs."),
    ("content_embs.", "redecoder.content_embs."),
    ("residual_embs.", "redecoder.detail_embs."),
    ("model.", "redecoder.generator.model."),
    ("timbre_linear.", "redecoder.cln.linear."),
    ("timbre_cond_prosody_enc.", "redecoder.prosody_restyler."),
]
HEAD_PREFIXES = ("f0_predictor.", "phone_predictor.", "res_f0_predictor.", "res_phone_predictor.",
                 "x_timbre_predictor.", "content_f0_predictor.", "prosody_phone_predictor.")
_POSITION_TABLE = re.compile(r"(^|\.)position_emb\.pe$")
_CODEBOOK = re.compile(r"\._codebook\.weight$")


class OfficialCheckpointError(ValueError):
    """A file that does not match the published FACodec layout; the message lists the offending keys."""


@dataclass
class ImportReport:
    """What ``import_official`` did: keys loaded per file, keys skipped (and why), modules left fresh."""

    loaded: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    fresh_modules: list[str] = field(default_factory=list)
    variant: str = "v1"


def _rename(key: str, rules: list[tuple[str, str]]) -> str | None:
    for pub, ours in rules:
        if key.startswith(pub):
            return _CODEBOOK.sub(".codebook.weight", ours + key[len(pub):])
    return None


def _unrename(key: str, rules: list[tuple[str, str]]) -> str | None:
    for pub, ours in rules:
        if key.startswith(ours):
            return pub + re.sub(r"\.codebook\.weight$", "._codebook.weight", key[len(ours):])
    return None


def read_state_dict(path: str | Path, sections: tuple[str, ...]) -> dict[str, Tensor]:
    """Load a released ``.bin`` as a state_dict (weights_only). A key prefix naming the file
    ("encoder.block.0..." as in the published key listing) is accepted and stripped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{sections[0]} checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickled nn.Module (an old release revision) or a non-torch file
        raise OfficialCheckpointError(
            f"{path}: cannot load as a weights-only state_dict ({e.__class__.__name__}). If this is a pickled "
            f"module from an old release, re-save it with torch.save(module.state_dict(), path)."
        ) from e
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise OfficialCheckpointError(f"{path}: expected a state_dict (name -> tensor), got {type(obj).__name__}")
    return strip_section(obj, sections)


def strip_section(sd: dict[str, Tensor], sections: tuple[str, ...]) -> dict[str, Tensor]:
    for section in sections:
        pre = section + "."
        if sd and all(k.startswith(pre) for k in sd):
            return {k[len(pre):]: v for k, v in sd.items()}
    return dict(sd)


def _count(sd: dict[str, Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.match(k))})


def infer_hparams(enc: dict[str, Tensor], dec: dict[str, Tensor], red: dict[str, Tensor] | None, **overrides) -> FACodecHParams:
    """Read sizes off published-layout tensors (attention heads cannot be; the release uses 4)."""
    if overrides.get("decoder", "dac") != "dac":
        raise OfficialCheckpointError(f"decoder={overrides['decoder']!r}: the released decoder weights are the "
                                      "DAC-style sample-rate generator; import them with decoder='dac'")
    if overrides.get("factorized", True) is False:
        raise OfficialCheckpointError("factorized=False: the release is the factorized codec; the -factorization "
                                      "codec has no published weights (train it with codec.model.factorized: false)")
    try:
        n_blocks = _count(enc, r"block\.(\d+)\.block\.4\.weight_v")
        strides = tuple(int(enc[f"block.{i + 1}.block.4.weight_v"].shape[-1]) // 2 for i in range(n_blocks))
        cb = dec["quantizer.0.layers.0._codebook.weight"]
        kw = dict(
            strides=strides,
            encoder_channels=int(enc["block.0.weight_v"].shape[0]),
            latent_dim=int(enc[f"block.{n_blocks + 2}.weight_v"].shape[0]),
            decoder_channels=int(dec["model.0.weight_v"].shape[0]),
            n_prosody=_count(dec, r"quantizer\.0\.layers\.(\d+)\."),
            n_content=_count(dec, r"quantizer\.1\.layers\.(\d+)\."),
            n_detail=max(1, _count(dec, r"quantizer\.2\.layers\.(\d+)\.")),
            use_detail=_count(dec, r"quantizer\.2\.layers\.(\d+)\.") > 0,
            codebook_size=int(cb.shape[0]),
            codebook_dim=int(cb.shape[1]),
            information_bottleneck="quantizer.0.layers.0.in_proj.weight_v" in dec,
            timbre_layers=_count(dec, r"timbre_encoder\.layers\.(\d+)\."),
            ffn_channels=int(dec["timbre_encoder.layers.0.ffn.ffn_1.weight"].shape[0]),
            ffn_kernel=int(dec["timbre_encoder.layers.0.ffn.ffn_1.weight"].shape[-1]),
        )
    except KeyError as e:
        raise OfficialCheckpointError(f"not the published FACodec layout: key {e} missing") from e
    if "melspec_linear.weight" in dec:
        kw.update(
            prosody_input="v2", pad_input=True,
            prosody_mel_bins=int(dec["melspec_linear.weight"].shape[1]),
            prosody_encoder_layers=_count(dec, r"melspec_encoder\.layers\.(\d+)\."),
        )
        if "mel_transform.mel_basis" in enc:
            kw["n_mels"] = int(enc["mel_transform.mel_basis"].shape[0])
            kw["n_fft"] = (int(enc["mel_transform.mel_basis"].shape[1]) - 1) * 2
            kw["win_length"] = int(enc["mel_transform.hann_window"].shape[0])
    else:
        kw.update(prosody_input="v1", pad_input=False)
    if "phone_predictor.heads.0.weight" in dec:
        kw["num_phones"] = int(dec["phone_predictor.heads.0.weight"].shape[0])
    if "x_timbre_predictor.1.heads.0.weight" in dec:
        kw["num_speakers"] = int(dec["x_timbre_predictor.1.heads.0.weight"].shape[0])
    kw.update(
        grl_detail_f0="res_f0_predictor.1.heads.0.weight" in dec,
        grl_detail_phone="res_phone_predictor.1.heads.0.weight" in dec,
        grl_speaker="x_timbre_predictor.1.heads.0.weight" in dec,
        grl_content_f0="content_f0_predictor.1.heads.0.weight" in dec,
        grl_prosody_phone="prosody_phone_predictor.1.heads.0.weight" in dec,
        positional="constant", detach_prosody_content=True, detail_dropout=0.75, grl_coefficient=1.0,
    )
    if red is not None:
        kw.update(redecoder=True, redecoder_channels=int(red["model.0.weight_v"].shape[0]))
    kw.update(overrides)
    return FACodecHParams(**kw)


def import_official(
    encoder_ckpt: str | Path,
    decoder_ckpt: str | Path,
    redecoder_ckpt: str | Path | None = None,
    variant: Literal["v1", "v2"] = "v1",
    heads: Literal["none", "load", "fresh"] = "none",
    num_phones: int | None = None,
    num_speakers: int | None = None,
    attention_heads: int = 4,
) -> FACodec:
    """Build a ``FACodec`` from the released files.

    heads: "none" drops the training-only heads (73.5 M parameters in the release); "load" loads them
    (release label spaces: 5003 phones, 245,200 speakers); "fresh" builds new, randomly initialised
    heads sized ``num_phones``/``num_speakers`` for fine-tuning on your own labels.
    The returned model carries ``model.import_report`` (an ``ImportReport``).
    """
    enc = read_state_dict(encoder_ckpt, ("encoder", "encoder_v2"))
    dec = read_state_dict(decoder_ckpt, ("decoder", "decoder_v2"))
    red = read_state_dict(redecoder_ckpt, ("redecoder",)) if redecoder_ckpt else None
    return import_state_dicts(enc, dec, red, variant, heads, num_phones, num_speakers, attention_heads)


def import_state_dicts(
    enc: dict[str, Tensor], dec: dict[str, Tensor], red: dict[str, Tensor] | None = None,
    variant: str = "v1", heads: str = "none", num_phones: int | None = None, num_speakers: int | None = None,
    attention_heads: int = 4,
) -> FACodec:
    """``import_official`` on in-memory published-layout state_dicts (see there)."""
    if variant not in ("v1", "v2"):
        raise ValueError(f"variant={variant!r}: use 'v1' or 'v2'")
    if heads not in ("none", "load", "fresh"):
        raise ValueError(f"heads={heads!r}: use 'none', 'load' or 'fresh'")
    is_v2 = "melspec_linear.weight" in dec
    if is_v2 != (variant == "v2"):
        raise OfficialCheckpointError(
            f"variant={variant!r} but the decoder checkpoint is a {'V2' if is_v2 else 'V1'} decoder "
            f"({'has' if is_v2 else 'lacks'} melspec_linear.*); pass variant={'v2' if is_v2 else 'v1'!r}"
        )
    if variant == "v2" and "mel_transform.mel_basis" not in enc:
        raise OfficialCheckpointError("variant='v2' needs the V2 encoder (mel_transform.mel_basis / hann_window missing)")
    report = ImportReport(variant=variant)
    has_heads = any(k.startswith(HEAD_PREFIXES) for k in dec)
    over: dict = {"attention_heads": attention_heads}
    if heads == "none":
        over["heads"] = False
    elif heads == "load":
        if not has_heads:
            raise OfficialCheckpointError("heads='load' but the decoder checkpoint has no predictor heads")
    else:
        if num_phones is None or num_speakers is None:
            raise ValueError("heads='fresh' needs num_phones and num_speakers (your label spaces)")
        over.update(heads=True, num_phones=num_phones, num_speakers=num_speakers)
    hp = infer_hparams(enc, dec, red, **over)
    model = FACodec(hp)
    target = model.state_dict()

    mapped: dict[str, Tensor] = {}
    unknown: list[str] = []
    for fname, sd, rules in (("encoder", enc, ENCODER_RULES), ("decoder", dec, DECODER_RULES), ("redecoder", red or {}, REDECODER_RULES)):
        for k, v in sd.items():
            if _POSITION_TABLE.search(k):
                report.skipped[f"{fname}:{k}"] = "positional table is recomputed (row 0 for every frame)"
                continue
            if heads != "load" and k.startswith(HEAD_PREFIXES) and fname == "decoder":
                report.skipped[f"{fname}:{k}"] = f"training-only head (heads={heads!r})"
                continue
            ours = _rename(k, rules)
            if ours is None or ours not in target:
                unknown.append(f"{fname}:{k}")
                continue
            mapped[ours] = v
    if unknown:
        raise OfficialCheckpointError(f"{len(unknown)} unexpected key(s) for the published layout: {_listing(unknown)}")
    for k in target:  # training statistics start fresh (the release has none)
        if k.endswith(RUN_STATISTICS) and k not in mapped:
            mapped[k] = torch.zeros_like(target[k])
    missing = [k for k in target if k not in mapped and not (heads == "fresh" and k.startswith("heads."))]
    if missing:
        raise OfficialCheckpointError(f"{len(missing)} key(s) missing from the checkpoints: {_listing(missing)}")
    bad = [f"{k}: file {tuple(v.shape)} vs model {tuple(target[k].shape)}" for k, v in mapped.items() if v.shape != target[k].shape]
    if bad:
        raise OfficialCheckpointError(f"shape mismatch for {len(bad)} key(s): {_listing(bad)}")
    model.load_state_dict(mapped, strict=heads != "fresh")
    if heads == "fresh":
        report.fresh_modules.append("heads")
    report.loaded = len(mapped)
    model.import_report = report  # type: ignore[attr-defined]
    return model.eval()


def _listing(keys: list[str], limit: int = 20) -> str:
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def export_official(model: FACodec) -> dict[str, dict[str, Tensor]]:
    """Our weights in the published layout: {"encoder": sd, "decoder": sd[, "redecoder": sd]}.

    Positional tables are written out as the release stores them ((5000, 1, D) sinusoids).
    """
    if model.hp.positional != "constant":
        raise ValueError("only codecs with positional='constant' behave like the release after export")
    if model.hp.decoder != "dac":
        raise ValueError(f"a codec with decoder={model.hp.decoder!r} has no published layout: the release's decoder "
                         "is the DAC-style generator")
    if not model.hp.factorized:
        raise ValueError("the -factorization codec (factorized=False) has no published layout: the release is factorized")
    out: dict[str, dict[str, Tensor]] = {"encoder": {}, "decoder": {}}
    if model.redecoder is not None:
        out["redecoder"] = {}
    for k, v in model.state_dict().items():
        if k.endswith(RUN_STATISTICS):
            continue
        if k.startswith("redecoder."):
            out["redecoder"][_unrename(k, REDECODER_RULES)] = v
        elif k.startswith(("encoder.", "mel.")):
            out["encoder"][_unrename(k, ENCODER_RULES)] = v
        else:
            pub = _unrename(k, DECODER_RULES)
            if pub is None:
                raise ValueError(f"no published name for {k}")
            out["decoder"][pub] = v
    table = sinusoid(torch.arange(5000), model.hp.latent_dim).unsqueeze(1)
    out["decoder"]["timbre_encoder.position_emb.pe"] = table
    if model.hp.prosody_input == "v2":
        out["decoder"]["melspec_encoder.position_emb.pe"] = table
    if model.redecoder is not None:
        out["redecoder"]["timbre_cond_prosody_enc.position_emb.pe"] = table
    return out

