"""``ns3 ablations``: every TTS ablation of the paper (evaluation/report/tts_ablations.py) as a parameter variant.

Each variant re-runs only the stages its overrides reach, as ``dvc repro`` would: a ``codec.*`` override retrains
the codec and everything after it, ``diffusion.model.*`` the diffusion onwards, ``diffusion.sample.*`` only
synthesis and its evaluation. The stages before that are shared with the queue's baseline by linking its outputs
into the variant's own data folder (``<data>/ablations/<experiment>/<variant>``), so variants never overwrite one
another or the main run. ``budget`` overrides (e.g. smaller step counts) apply to the baseline and every variant
alike; the baseline is then retrained on them too, and everything is logged to its own MLflow experiment so the
report pairs runs of one budget only. ``--dvc`` prints the same variants as ``dvc exp run --queue`` commands.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from prefect import flow, get_run_logger

from ns3.config import Params, load_params
from pipelines.stages import DATA, STAGE_NAMES, STAGES

# dotted key prefix -> the first stage whose output it changes (longest prefix wins)
FIRST_STAGE = {"corpus.": "corpus", "shard.": "shard", "align.": "align", "codec.": "train_codec",
               "extract.": "extract_codes", "diffusion.model.": "train_diffusion", "diffusion.train.": "train_diffusion",
               "diffusion.sample.": "synthesize", "synthesize.": "synthesize", "evaluate.": "evaluate_tts"}
# Not the registry's Stage.params: train_diffusion depends on diffusion.sample only through its generation check,
# which an ablation does not need, so a sampler setting re-runs synthesis and scoring only.
TTS_STAGES = ("train_codec", "extract_codes", "train_diffusion", "synthesize", "evaluate_tts")


def first_stage(overrides: Mapping[str, Any]) -> str | None:
    """The earliest stage any of ``overrides`` changes (None: nothing to re-run; ``variant`` changes no output)."""
    hits = []
    for key in overrides:
        prefixes = [p for p in FIRST_STAGE if key.startswith(p)]
        if prefixes:
            hits.append(FIRST_STAGE[max(prefixes, key=len)])
    return min(hits, key=STAGE_NAMES.index) if hits else None


def stages_from(first: str) -> list[str]:
    """The TTS chain from ``first`` on (the codec evaluation is not part of the TTS tables)."""
    return [s for s in TTS_STAGES if STAGE_NAMES.index(s) >= STAGE_NAMES.index(first)]


def link_upstream(src: Path, dst: Path, first: str) -> None:
    """Link ``src``'s data outputs (the registry's outs) of every stage before ``first`` into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for s in STAGES[: STAGE_NAMES.index(first)]:
        for name in (o.removeprefix(f"{DATA}/") for o in s.outs if o.startswith(f"{DATA}/")):
            target, link = src / name, dst / name
            if link.is_symlink():
                link.unlink()
            if target.exists() and not link.exists():
                os.symlink(target.resolve(), link)


@flow(name="ns3-ablations")
def ablations_flow(params_file: str | None, profile: str | None, experiment: str, budget: Mapping[str, Any],
                   only: Sequence[str] = ()) -> dict:
    from evaluation.report.tts_ablations import TTS_ABLATIONS
    from pipelines.pipeline import pipeline_flow

    log = get_run_logger()
    common = {**budget, "tracking.experiment": experiment}
    main = load_params(params_file, profile)
    root = main.resolve("data") / "ablations" / experiment
    done: dict[str, list[str]] = {}

    def run(variant: str, overrides: Mapping[str, Any], upstream: Path) -> Params:
        # the budget is already in the upstream baseline: a variant re-runs what its own overrides change
        first = first_stage(overrides) or "synthesize"
        data = root / variant
        link_upstream(upstream, data, first)
        p = load_params(params_file, profile, {**common, **overrides, "variant": variant, "paths.data": str(data)})
        log.info("ablation %s: stages %s (upstream from %s)", variant, stages_from(first), upstream)
        pipeline_flow(p, stages=stages_from(first), use_dvc=False)
        done[variant] = stages_from(first)
        return p

    base = run("baseline", budget, main.resolve("data")) if budget else main
    upstream = base.resolve("data")
    if not budget:  # the main run is the baseline: log its evaluation into this experiment too
        pipeline_flow(load_params(params_file, profile, {"tracking.experiment": experiment}),
                      stages=["evaluate_tts"], use_dvc=False)
        done["baseline"] = ["evaluate_tts"]
    for spec in TTS_ABLATIONS:
        if not only or spec.variant in only:
            run(spec.variant, spec.settings, upstream)
    from pipelines.report_flow import tts_report

    report = load_params(params_file, profile, {**common, "paths.data": str(upstream),
                                                "paths.reports": str(root / "reports")})
    return {"experiment": experiment, "ran": done, **tts_report(report)}
