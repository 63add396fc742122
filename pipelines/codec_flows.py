"""Prefect flows of the codec stages: ``train_codec`` and ``evaluate_codec``."""
from __future__ import annotations

import json

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params
from pipelines.common import log_stage_metrics, write_metrics
from pipelines.codec_train import CODEC_FILE, codec_dir, label_dir, train_codec


def _variant_tags(params: Params) -> dict:
    return {"ns3.variant": params.variant, "ns3.profile": params.profile}


def _import_official(params: Params) -> dict:
    """Released FACodec weights -> our checkpoint format, in place of training."""
    from ns3.codec.checkpoint import save_codec
    from ns3.codec.official import import_official

    o = params.codec.official
    model = import_official(o.encoder, o.decoder, o.redecoder, variant=o.variant)
    path = codec_dir(params) / CODEC_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    save_codec(path, model)
    return {"imported": 1.0}


@flow(name="train_codec", retries=0)
def train_codec_flow(params: Params) -> dict:
    """Train FACodec on the train split (resuming from the last checkpoint), or import the official weights."""
    log = get_run_logger()
    run_params = {"codec": params.codec.model_dump(), "seed": params.seed}
    with tracking.stage_run("train_codec", params=run_params, tags=_variant_tags(params), root=params.root):
        if params.codec.official.encoder:
            summary = _import_official(params)
            log.info("imported the official FACodec checkpoints into %s", codec_dir(params) / CODEC_FILE)
        else:
            out = train_codec(params)
            summary = out.final_metrics
            log.info("codec: %d steps in %.1f min (%s); checkpoint %s", out.steps, out.minutes, out.stopped_reason,
                     out.checkpoint)
            tracking.log_artifact(codec_dir(params) / "train_summary.json")
        write_metrics(params, "train_codec", summary)
        log_stage_metrics("train_codec", summary)
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
                            tags=_variant_tags(params), root=params.root):
        result = evaluate_codec(
            codec_dir(params) / CODEC_FILE, list_shards(params.resolve("data") / "shards", "test"), out_dir,
            max_utterances=e.max_utterances, vc_pairs=e.vc_pairs, classic=e.classic_codecs, samples=e.samples,
            aligner_dir=label_dir(params), whisper_checkpoint=e.whisper_checkpoint, wavlm_checkpoint=e.wavlm_checkpoint,
            utmos_checkpoint=e.utmos_checkpoint, variant=params.variant, overrides={}, seed=params.seed,
        )
        write_metrics(params, "eval_codec", result)
        tracking.log_metrics(flat_metrics(result))
        tracking.log_dict(result, "eval_codec.json")
        for sub in ("samples", "figures"):
            if (out_dir / sub).exists():
                tracking.log_artifact(out_dir / sub)
        log.info("codec eval: %s", json.dumps(result.get("reconstruction", {}), default=str)[:500])
    return result
