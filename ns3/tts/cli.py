"""``ns3 tts`` and ``ns3 vc``: the trained models' front door (defaults: this project's stage outputs).

``ns3 tts "text" --prompt p.wav [--prompt-text "..."]`` writes one wav; ``--duration-prompt``, ``--prosody-prompt``,
``--content-prompt``, ``--detail-prompt`` and ``--timbre-prompt`` take each attribute from another utterance
(default: the main prompt). A prompt without a transcript has its phones recognised by the align stage's
recogniser, and the command says so. ``ns3 tts --list lists/librispeech.jsonl --out-dir DIR`` synthesizes a
published test list (the synthesize stage's own code path). ``--one-step`` is the 15-NFE mode.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

ROLE_OPTIONS = ("duration", "prosody", "content", "detail")


def _engine(params, codec: Optional[str], diffusion: Optional[str], align_dir: Optional[Path]):
    from ns3.model_registry import ALIGN, CODEC, DIFFUSION, is_model_uri, resolve_checkpoint
    from ns3.tts.engine import TTSEngine
    from pipelines.codec_flows import codec_path
    from pipelines.common import data_dir
    from pipelines.tts_flows import diffusion_path

    # A registered TTS model carries the codec it was trained on and the aligner: they are its defaults.
    bundle = diffusion if is_model_uri(diffusion) else None
    codec_file = resolve_checkpoint(codec or bundle, CODEC) if (codec or bundle) else codec_path(params)
    diffusion_file = resolve_checkpoint(diffusion, DIFFUSION) if diffusion else diffusion_path(params)
    align = align_dir or (resolve_checkpoint(bundle, ALIGN) if bundle else data_dir(params, "align"))
    return TTSEngine.load(codec_file, diffusion_file, align, params.align.voice)


def _config(params, one_step: bool):
    from ns3.builders import generation_config

    cfg = generation_config(params.diffusion.sample)
    return cfg.one_step() if one_step else cfg


def tts(
    text: Optional[str] = typer.Argument(None, help="what to say (omit with --list)"),
    prompt: Optional[Path] = typer.Option(None, help="speech prompt wav (any rate; resampled to 16 kHz)"),
    prompt_text: Optional[str] = typer.Option(None, help="the prompt's transcript (default: recognised)"),
    duration_prompt: Optional[Path] = typer.Option(None, help="wav whose durations to follow"),
    prosody_prompt: Optional[Path] = typer.Option(None, help="wav whose prosody to follow"),
    content_prompt: Optional[Path] = typer.Option(None, help="wav for the content codes' prompt"),
    detail_prompt: Optional[Path] = typer.Option(None, help="wav for the acoustic-detail codes' prompt"),
    timbre_prompt: Optional[Path] = typer.Option(None, help="wav whose timbre (voice) to use"),
    out: Path = typer.Option(Path("tts.wav"), help="output wav (single text)"),
    list_file: Optional[Path] = typer.Option(None, "--list", help="a test list (JSON lines) to synthesize"),
    out_dir: Path = typer.Option(Path("tts_out"), help="output folder for --list"),
    one_step: bool = typer.Option(False, help="one iteration per process (15 NFE)"),
    seed: int = typer.Option(0),
    codec: Optional[str] = typer.Option(None, help="codec checkpoint or models:/<name>@<alias> (default: "
                                        "data/codec/codec.pt, or the --diffusion model's own codec)"),
    diffusion: Optional[str] = typer.Option(None, help="diffusion checkpoint, or a registered TTS model "
                                            "models:/<name>@<alias> | models:/<name>/<version> (default: "
                                            "data/diffusion/diffusion.pt)"),
    align_dir: Optional[Path] = typer.Option(None, help="align stage folder with aligner.pt (default: data/align, "
                                             "or the --diffusion model's aligner)"),
) -> None:
    """Zero-shot TTS: text + a speech prompt -> wav (60 NFE, or 15 with --one-step)."""
    from ns3.audio import load_audio, write_audio
    from ns3.cli import params as load_params
    from ns3.tts.engine import TTSRequest

    p = load_params()
    engine = _engine(p, codec, diffusion, align_dir)
    config = _config(p, one_step)
    if list_file is not None:
        _synthesize_list(p, engine, list_file, out_dir, config, seed)
        return
    if not text or prompt is None:
        raise typer.BadParameter("give a text and --prompt (or --list FILE)")
    main = engine.prompts([load_audio(prompt)], texts=[prompt_text])[0]
    say = {"prompt": {"file": str(prompt), "phones": main.phones_source}}
    roles = {}
    for role, path in zip(ROLE_OPTIONS, (duration_prompt, prosody_prompt, content_prompt, detail_prompt)):
        if path is not None:
            roles[role] = engine.prompts([load_audio(path)])[0]
            say[f"{role}_prompt"] = {"file": str(path), "phones": roles[role].phones_source}
    timbre = engine.prompts([load_audio(timbre_prompt)])[0] if timbre_prompt else None
    if timbre_prompt:
        say["timbre_prompt"] = {"file": str(timbre_prompt)}
    if main.phones_source == "recognised":
        typer.secho("no --prompt-text: the prompt's phones were recognised by the aligner's phone loop "
                    f"({' '.join(main.phones)})", fg="yellow", err=True)
    s = engine.synthesize([TTSRequest(main, text=text, attribute_prompts=roles, timbre_prompt=timbre)], config, seed)[0]
    write_audio(out, s.wav)
    typer.echo(json.dumps({"out": str(out), "seconds_audio": round(len(s.wav) / engine.codec.hp.sample_rate, 3),
                           "nfe": s.nfe, "rtf": round(s.rtf, 4), **say}, indent=1))


def _synthesize_list(p, engine, list_file: Path, out_dir: Path, config, seed: int) -> None:
    from ns3.recipes.synthesize import synthesize_lists
    from ns3.tts.protocols import read_list
    from pipelines.tts_flows import test_lists

    items = read_list(list_file)
    if not items:
        raise typer.BadParameter(f"{list_file}: an empty test list")
    protocol = items[0].protocol
    stores = {k: store for k, (_, store) in test_lists(p).items()}
    if protocol not in stores:
        raise typer.BadParameter(f"{list_file}: protocol {protocol!r} has no audio source in these params "
                                 f"(known: {sorted(stores)})")
    res = synthesize_lists(engine, {protocol: items}, {protocol: stores[protocol]}, out_dir, config,
                           one_step=False, seed=seed, batch_size=p.synthesize.batch_size)
    typer.echo(json.dumps({"out_dir": str(out_dir), "synthesized": res.synthesized, "skipped": len(res.skipped),
                           **res.metrics}, indent=1))


def vc(
    source: Path = typer.Argument(..., help="wav whose words and prosody to keep"),
    prompt: Path = typer.Argument(..., help="wav whose voice to use"),
    out: Path = typer.Option(Path("vc.wav"), help="output wav"),
    keep_detail: bool = typer.Option(False, help="keep the source's detail codes"),
    codec: Optional[str] = typer.Option(None, help="codec checkpoint, or models:/<name>@<alias> | "
                                        "models:/<name>/<version> (default: data/codec/codec.pt)"),
) -> None:
    """Zero-shot voice conversion with the codec: source codes decoded with the prompt's timbre."""
    from ns3.cli import params as load_params
    from ns3.codec.api import convert_voice_file
    from ns3.model_registry import CODEC, resolve_checkpoint
    from pipelines.codec_flows import codec_path

    ckpt = resolve_checkpoint(codec, CODEC) if codec else codec_path(load_params())
    convert_voice_file(ckpt, source, prompt, out, keep_detail=keep_detail)
    typer.echo(f"{source} in the voice of {prompt} -> {out}")
