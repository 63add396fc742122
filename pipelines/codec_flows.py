"""Prefect flows of the codec stages: ``train_codec`` and ``evaluate_codec`` (thin shells over ns3.recipes)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params
from ns3.recipes.codec import CODEC_FILE, SUMMARY_FILE
from ns3.recipes.state import is_main_process
from pipelines import model_registry
from pipelines.common import data_dir, log_stage_metrics, training_shards, write_metrics


def _variant_tags(params: Params) -> dict:
    return {"ns3.variant": params.variant, "ns3.profile": params.profile}


def codec_path(params: Params) -> Path:
    return data_dir(params, "codec", CODEC_FILE)


def _import_official(params: Params) -> dict:
    """Released FACodec weights -> our checkpoint format, in place of training."""
    from ns3.codec.checkpoint import save_codec
    from ns3.codec.official import import_official

    o = params.codec.official
    model = import_official(o.encoder, o.decoder, o.redecoder, variant=o.variant)
    path = codec_path(params)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_codec(path, model)
    return {"imported": 1.0}


def run_train_codec(params: Params) -> dict:
    """The train_codec stage on this process: in the Prefect flow, or on each rank under torchrun.

    Rank 0 alone opens the MLflow run (tagged with the variant), writes the metrics file and logs; the
    other ranks train and stay silent.
    """
    from ns3.builders import codec_train_spec
    from ns3.recipes.codec import codec_training_data, train_codec

    main = is_main_process()
    run_params = {"codec": params.codec.model_dump(), "seed": params.seed}
    run = (tracking.stage_run("train_codec", params=run_params, tags=_variant_tags(params), root=params.root,
                              experiment=params.tracking.experiment)
           if main else contextlib.nullcontext())
    with run:
        if params.codec.official.encoder:
            summary = _import_official(params) if main else {}
        else:
            data = codec_training_data(training_shards(params, "shards"), data_dir(params, "align"))
            out = train_codec(codec_train_spec(params, data), data)
            summary = out.summary
            if main:
                tracking.log_artifact(out.checkpoint.parent / SUMMARY_FILE)
        if main:
            write_metrics(params, "train_codec", summary)
            log_stage_metrics("train_codec", summary)
            model_registry.register_codec(params, codec_path(params), official=bool(params.codec.official.encoder))
    return summary


@flow(name="train_codec", retries=0)
def train_codec_flow(params: Params) -> dict:
    """Train FACodec on the train split (resuming from the last checkpoint), or import the official weights."""
    summary = run_train_codec(params)
    if "steps" in summary:
        get_run_logger().info("codec: %d steps (resumed from %d) in %.1f min (%s)", summary["steps"],
                              summary["resumed_from"], summary["minutes"], summary["stopped_reason"])
    return summary


@flow(name="evaluate_codec", retries=1, retry_delay_seconds=5)
def evaluate_codec_flow(params: Params) -> dict:
    """Reconstruction (ours + classic codecs) and zero-shot VC metrics on the held-out test speakers."""
    from evaluation.codec_eval import evaluate_codec, flat_metrics
    from ns3.data.shards import list_shards

    log = get_run_logger()
    e = params.evaluate
    out_dir = params.resolve("data") / "eval_codec"
    with tracking.stage_run("evaluate_codec", params={"evaluate": e.model_dump(), "codec": params.codec.model_dump()},
                            tags=_variant_tags(params), root=params.root, experiment=params.tracking.experiment):
        result = evaluate_codec(
            codec_path(params), list_shards(data_dir(params, "shards"), "test"), out_dir,
            max_utterances=e.max_utterances, vc_pairs=e.vc_pairs, classic=e.classic_codecs, samples=e.samples,
            aligner_dir=data_dir(params, "align"), whisper_checkpoint=e.whisper_checkpoint, wavlm_checkpoint=e.wavlm_checkpoint,
            utmos_checkpoint=e.utmos_checkpoint, variant=params.variant, overrides={}, seed=params.seed,
            probe_train_shards=list_shards(data_dir(params, "shards"), "train"), probe_utterances=e.probe_utterances,
        )
        write_metrics(params, "eval_codec", result)
        tracking.log_metrics(flat_metrics(result))
        tracking.log_dict(result, "eval_codec.json")
        model_registry.promote_codec(params, codec_path(params), flat_metrics(result))
        for sub in ("samples", "figures"):
            if (out_dir / sub).exists():
                tracking.log_artifact(out_dir / sub)
        log.info("codec eval: %s", json.dumps(result.get("reconstruction", {}), default=str)[:500])
    return result
