"""The stage registry: the one place a pipeline stage is named.

The ``ns3`` subcommands, the ``ns3 run`` order, the per-stage Prefect flows and the task runner a stage
maps its shards on all derive from ``STAGES``; ``tests/unit/test_stage_registry.py`` holds ``dvc.yaml``
to it (``render_dvc_yaml`` prints the stages as dvc.yaml spells them). Adding a stage means one entry
here, one flow, and one ``dvc.yaml`` stage.

What DVC keeps (the README says the same):
- Every stage depends on its profile's overlay (``configs/${profile}.yaml``) and on ``profile``: DVC can
  only track keys that exist in a file, and overlays set different keys, so the whole overlay file is a
  dependency of every stage (editing it re-runs that profile's stages; shards and training state are kept).
- ``shard`` outputs are ``persist``: DVC leaves the shards and their ``.done`` sidecars in place before
  re-running, so only shards whose inputs changed are rewritten.
- Training state (checkpoints with optimizer, RNG and stream position; state of replaced recipes) lives
  under ``<data>/state/<stage>``, outside every DVC out: ``dvc repro`` never deletes it and the DVC cache
  never stores it. Only the exported model and its summary are outs.

This module is imported by ``ns3 --help``: it holds data only; flows are imported when run.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

DATA = "${paths.data}"
METRICS = "${paths.metrics}"
REPORTS = "${paths.reports}"
# What every stage reads: the typed schema, the config -> kwargs bridge, the profile overlay.
COMMON_DEPS = ("ns3/config.py", "ns3/builders.py", "configs/${profile}.yaml")
COMMON_PARAMS = ("profile", "seed")


@dataclass(frozen=True)
class Stage:
    name: str  # DVC stage, MLflow `ns3.stage` tag, metrics file stem
    flow: str  # "module:function" of its Prefect flow (imported lazily)
    help: str  # the CLI subcommand's help
    deps: tuple[str, ...]  # besides COMMON_DEPS; `${paths.*}` templates as dvc.yaml writes them
    params: tuple[str, ...]  # besides COMMON_PARAMS; only knobs that change results
    outs: tuple[str, ...]
    metrics: tuple[str, ...] = ()
    persist: tuple[str, ...] = ()  # outs DVC must not delete before re-running the stage
    uncached: tuple[str, ...] = ()  # outs kept out of the DVC cache (small, rebuilt cheaply)
    state: str | None = None  # resumable state folder under <data>/state/, never a DVC out
    maps_shards: bool = False  # maps per-shard work on the `shard.task_runner`

    @property
    def command(self) -> str:
        """The CLI subcommand: ``train_codec`` -> ``train-codec``."""
        return self.name.replace("_", "-")

    def load_flow(self) -> Callable:
        module, _, attr = self.flow.partition(":")
        return getattr(importlib.import_module(module), attr)


STAGES: tuple[Stage, ...] = (
    Stage(
        "corpus", "pipelines.data_flows:corpus_flow",
        "Synthesize the embedded corpus (espeak-ng), or record the real corpus named by corpus.source/root.",
        deps=("ns3/corpus/synth.py", "ns3/corpus/textgen.py", "ns3/text/espeak.py", "ns3/audio.py",
              "pipelines/data_flows.py"),
        params=("corpus",),
        outs=(f"{DATA}/raw",),
    ),
    Stage(
        "shard", "pipelines.data_flows:shard_flow",
        "Resample to 16 kHz and write speaker-disjoint WebDataset shards + manifest + statistics.",
        deps=(f"{DATA}/raw", "ns3/corpus/readers", "ns3/corpus/types.py", "ns3/corpus/vad.py", "ns3/data/shards.py",
              "ns3/data/sharding.py", "ns3/audio.py", "pipelines/data_flows.py"),
        params=("shard.utts_per_shard", "shard.splits", "corpus.min_duration", "corpus.max_duration", "corpus.vad"),
        outs=(f"{DATA}/shards",),
        metrics=(f"{METRICS}/shard.json",),
        persist=(f"{DATA}/shards",),
        maps_shards=True,
    ),
    Stage(
        "align", "pipelines.align_flow:align_flow",
        "G2P + forced alignment (built-in aligner, or MFA) -> phone labels, durations, F0/UV per utterance.",
        deps=(f"{DATA}/raw", f"{DATA}/shards", "ns3/align", "ns3/text", "ns3/data/pitch.py", "ns3/data/shards.py",
              "ns3/audio.py", "pipelines/align_flow.py"),
        params=("align",),
        outs=(f"{DATA}/align",),
        metrics=(f"{METRICS}/align.json",),
        maps_shards=True,
    ),
    Stage(
        "train_codec", "pipelines.codec_flows:train_codec_flow",
        "Train FACodec on the train split (resumes from its last checkpoint), or import official weights.",
        deps=(f"{DATA}/shards", f"{DATA}/align", "ns3/codec", "ns3/losses", "ns3/solvers", "ns3/recipes",
              "ns3/data/batch.py", "ns3/data/codec_data.py", "ns3/data/codec_stream.py", "ns3/data/pitch.py",
              "ns3/data/shards.py", "ns3/data/storage.py", "ns3/text/inventory.py", "ns3/audio.py",
              "pipelines/codec_flows.py"),
        params=("codec",),
        outs=(f"{DATA}/codec",),
        metrics=(f"{METRICS}/train_codec.json",),
        state="train_codec",
    ),
    Stage(
        "extract_codes", "pipelines.extract_flow:extract_codes_flow",
        "Encode the shards with the trained codec -> code shards (codes, timbre, durations, phone-level prosody codes).",
        deps=(f"{DATA}/shards", f"{DATA}/align", f"{DATA}/codec", "ns3/recipes/extract.py", "ns3/data/code_shards.py",
              "ns3/codec", "ns3/data/shards.py", "ns3/audio.py", "pipelines/extract_flow.py"),
        params=("extract.splits",),  # extract.batch_size does not change the codes (a test holds it to that)
        outs=(f"{DATA}/codes",),
        metrics=(f"{METRICS}/extract_codes.json",),
        persist=(f"{DATA}/codes",),  # shards done for the same codec and inputs are kept (their .done sidecars)
        maps_shards=True,
    ),
    Stage(
        "train_diffusion", "pipelines.diffusion_flows:train_diffusion_flow",
        "Train the factorized diffusion on the code shards (resumes); then synthesize test pairs (PER, SIM-O).",
        deps=(f"{DATA}/codes", f"{DATA}/codec", f"{DATA}/shards", f"{DATA}/align", "ns3/diffusion", "ns3/losses",
              "ns3/solvers", "ns3/recipes/diffusion.py", "ns3/data/code_batch.py", "ns3/data/code_shards.py",
              "ns3/data/rank_stream.py", "ns3/data/storage.py", "evaluation/generation_check.py",
              "pipelines/diffusion_flows.py"),
        params=("diffusion",),
        outs=(f"{DATA}/diffusion",),
        metrics=(f"{METRICS}/train_diffusion.json",),
        state="train_diffusion",
    ),
    Stage(
        "evaluate_codec", "pipelines.codec_flows:evaluate_codec_flow",
        "Reconstruction metrics (ours, Opus, Codec2) and zero-shot VC on the held-out test speakers.",
        deps=(f"{DATA}/shards", f"{DATA}/align", f"{DATA}/codec", "evaluation/codec_eval.py",
              "evaluation/disentanglement.py", "evaluation/metrics", "evaluation/baselines.py", "ns3/data/codec_data.py",
              "ns3/data/pitch.py", "ns3/data/shards.py", "ns3/audio.py", "pipelines/codec_flows.py"),
        params=("variant", "evaluate"),
        outs=(f"{DATA}/eval_codec",),
        metrics=(f"{METRICS}/eval_codec.json",),
    ),
    Stage(
        "synthesize", "pipelines.tts_flows:synthesize_flow",
        "Zero-shot TTS of the paper's test lists (LibriSpeech 3 s prompts, VALL-E 4-10 s, RAVDESS emotions).",
        deps=(f"{DATA}/codec", f"{DATA}/diffusion", f"{DATA}/align", f"{DATA}/shards", f"{DATA}/raw", "ns3/tts",
              "ns3/recipes/synthesize.py", "ns3/diffusion", "ns3/codec", "ns3/recipes/extract.py", "ns3/text",
              "ns3/corpus/readers", "pipelines/tts_flows.py"),
        params=("synthesize", "diffusion.sample"),
        outs=(f"{DATA}/tts",),
        metrics=(f"{METRICS}/synthesize.json",),
    ),
    Stage(
        "evaluate_tts", "pipelines.tts_flows:evaluate_tts_flow",
        "TTS metrics: SIM-O/SIM-R, PER with its ground-truth row, WER/MOS when configured, MCD/MCD-Acc, RTF/NFE.",
        deps=(f"{DATA}/tts", f"{DATA}/align", "evaluation/tts_eval.py", "evaluation/metrics", "pipelines/tts_flows.py"),
        params=("variant", "evaluate"),
        outs=(f"{DATA}/eval_tts",),
        metrics=(f"{METRICS}/evaluate_tts.json",),
    ),
    Stage(
        "report", "pipelines.report_flow:report_flow",
        "Paper-format tables (codec, VC, TTS, ablations) as Markdown/HTML/CSV under reports/.",
        deps=(f"{DATA}/eval_codec", f"{DATA}/eval_tts", "evaluation/report", "pipelines/report_flow.py"),
        params=("variant", "report"),
        outs=(f"{REPORTS}/codec", f"{REPORTS}/tts"),
        uncached=(f"{REPORTS}/codec", f"{REPORTS}/tts"),
    ),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    """The registry entry of ``name`` (a stage name or its CLI spelling)."""
    for s in STAGES:
        if name in (s.name, s.command):
            return s
    raise KeyError(f"unknown stage {name!r}; stages are {list(STAGE_NAMES)}")


def dvc_stage(s: Stage) -> dict:
    """The ``dvc.yaml`` entry this registry implies for ``s``."""
    entry: dict[str, Any] = {"cmd": f"ns3 {s.command}", "deps": list(s.deps) + list(COMMON_DEPS),
                             "params": list(COMMON_PARAMS) + list(s.params)}
    outs: list[Any] = []
    for o in s.outs:
        flags = {**({"persist": True} if o in s.persist else {}), **({"cache": False} if o in s.uncached else {})}
        outs.append({o: flags} if flags else o)
    entry["outs"] = outs
    if s.metrics:
        entry["metrics"] = [{m: {"cache": False}} for m in s.metrics]
    return entry


def render_dvc_yaml() -> str:
    """dvc.yaml as the registry implies it (``python -m pipelines.stages > dvc.yaml`` rewrites the file)."""
    import yaml

    head = ("# Generated from pipelines/stages.py (python -m pipelines.stages > dvc.yaml); a test keeps the two equal.\n"
            "# Each stage calls its `ns3 <stage>` command (a Prefect flow logging to MLflow). `dvc repro` runs what\n"
            "# changed; `dvc exp run -S key=value` runs a parameter variant (ablation). Training state lives under\n"
            "# ${paths.data}/state/, outside the outs, so re-running a stage resumes it (see pipelines/stages.py).\n")
    body = yaml.safe_dump({"stages": {s.name: dvc_stage(s) for s in STAGES}}, sort_keys=False, width=120)
    return head + body


if __name__ == "__main__":
    print(render_dvc_yaml(), end="")
