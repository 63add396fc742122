"""`ns3 codec ...`: import the released checkpoints, encode, decode, voice conversion."""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="FACodec: import official weights, encode/decode audio, zero-shot voice conversion.", no_args_is_help=True)
# A registered version works wherever a checkpoint file does (ns3.model_registry.resolve).
CKPT_HELP = "codec checkpoint, or a registered model: models:/<name>@<alias> | models:/<name>/<version>"


def _ckpt(ref: str) -> Path:
    from ns3.model_registry import CODEC, resolve_checkpoint

    return resolve_checkpoint(ref, CODEC)


@app.command("import-official")
def import_official_cmd(
    encoder: Path = typer.Option(..., help="ns3_facodec_encoder.bin (or _v2)"),
    decoder: Path = typer.Option(..., help="ns3_facodec_decoder.bin (or _v2)"),
    out: Path = typer.Option(..., help="where to write the ns3.facodec checkpoint"),
    redecoder: Path | None = typer.Option(None, help="ns3_facodec_redecoder.bin (VC helper), optional"),
    variant: str = typer.Option("v1", help="v1 or v2 (must match the files)"),
    heads: str = typer.Option("none", help="none | load | fresh (training-only heads)"),
    num_phones: int | None = typer.Option(None, help="phone classes for heads=fresh"),
    num_speakers: int | None = typer.Option(None, help="speaker classes for heads=fresh"),
) -> None:
    """Convert the released Amphion FACodec files into one ns3 codec checkpoint."""
    from ns3.codec.checkpoint import save_codec
    from ns3.codec.official import import_official

    model = import_official(encoder, decoder, redecoder, variant=variant, heads=heads,  # type: ignore[arg-type]
                            num_phones=num_phones, num_speakers=num_speakers)
    save_codec(out, model)
    rep = model.import_report  # type: ignore[attr-defined]
    typer.echo(f"imported {rep.loaded} tensors ({variant}), skipped {len(rep.skipped)}; "
               f"{model.num_parameters() / 1e6:.2f} M params -> {out}")


@app.command()
def encode(ckpt: str = typer.Argument(..., help=CKPT_HELP), wav: Path = typer.Argument(...),
           out: Path = typer.Option(..., help="codes .npz")) -> None:
    """Audio -> prosody/content/detail codes + timbre (.npz)."""
    from ns3.codec.api import encode_file

    enc = encode_file(_ckpt(ckpt), wav, out)
    typer.echo(f"{wav}: {enc.codes.num_frames} frames -> {out}")


@app.command()
def decode(
    ckpt: str = typer.Argument(..., help=CKPT_HELP), codes: Path = typer.Argument(...),
    out: Path = typer.Option(..., help="output wav"),
    no_detail: bool = typer.Option(False, help="decode without the detail codes"),
) -> None:
    """Codes .npz -> audio."""
    from ns3.codec.api import decode_to_file

    decode_to_file(_ckpt(ckpt), codes, out, use_detail=not no_detail)
    typer.echo(f"{codes} -> {out}")


@app.command()
def vc(
    ckpt: str = typer.Argument(..., help=CKPT_HELP), source: Path = typer.Argument(...),
    prompt: Path = typer.Argument(...), out: Path = typer.Option(..., help="output wav"),
    keep_detail: bool = typer.Option(False, help="keep the source's detail codes"),
) -> None:
    """Zero-shot voice conversion: source words and prosody, prompt timbre."""
    from ns3.codec.api import convert_voice_file

    convert_voice_file(_ckpt(ckpt), source, prompt, out, keep_detail=keep_detail)
    typer.echo(f"{source} in the voice of {prompt} -> {out}")


if __name__ == "__main__":
    app()
