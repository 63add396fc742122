"""Prefect flows of the TTS stages: ``synthesize`` (the paper's test lists) and ``evaluate_tts`` (their metrics).

Thin shells: the lists come from ``ns3.tts.protocols``, synthesis from ``ns3.recipes.synthesize``, scores from
``evaluation.tts_eval``. Both log to MLflow under the variant's tags; the report pairs variants by them.
"""
from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params
from pipelines import model_registry
from pipelines.codec_flows import codec_path
from pipelines.data_flows import read_corpus_pointer
from pipelines.common import data_dir, log_stage_metrics, write_metrics


def _tags(params: Params) -> dict:
    return {"ns3.variant": params.variant, "ns3.profile": params.profile}


def diffusion_path(params: Params) -> Path:
    from ns3.recipes.diffusion import DIFFUSION_FILE

    return data_dir(params, "diffusion", DIFFUSION_FILE)


def style_root(params: Params) -> Path | None:
    """The RAVDESS-layout set the corpus stage recorded (the embedded one, or corpus.style_root)."""
    style = read_corpus_pointer(params).get("style")
    return Path(style["root"]) if style else None


def test_lists(params: Params):
    """protocol -> (items, audio source): the LibriSpeech lists from the test split (or a real test-clean root),
    the RAVDESS list from the style set."""
    from ns3.recipes.synthesize import AudioStore, ravdess_pool
    from ns3.tts import protocols as P

    s = params.synthesize
    if s.librispeech_root:
        from ns3.corpus.readers.librispeech import read_librispeech

        pool, shard_dir = P.raw_pool(read_librispeech(s.librispeech_root).kept), None
    else:
        pool, shard_dir = P.manifest_pool(data_dir(params, "shards", "manifest.jsonl"), "test"), data_dir(params, "shards")
    store = AudioStore(pool, shard_dir)
    lists = {}
    for protocol in s.protocols:
        if protocol == P.LIBRISPEECH:
            lists[protocol] = (P.librispeech_protocol(pool, params.seed, s.prompt_seconds, s.sentences_per_speaker), store)
        elif protocol == P.LIBRISPEECH_VALLE:
            lists[protocol] = (P.librispeech_protocol(pool, params.seed, s.prompt_seconds, s.valle_sentences_per_speaker,
                                                      P.VALLE_RANGE, protocol), store)
        else:
            root = style_root(params)
            if root is None:
                get_run_logger().warning("no RAVDESS-layout set (corpus.style_source: none): the ravdess list is skipped")
                continue
            rpool = ravdess_pool(root)
            lists[protocol] = (P.ravdess_protocol(rpool, params.seed), AudioStore(rpool, None))
    return lists


@flow(name="synthesize", retries=0)
def synthesize_flow(params: Params) -> dict:
    """Synthesize the paper's zero-shot TTS test lists with the trained codec + diffusion."""
    from ns3.builders import generation_config
    from ns3.recipes.synthesize import synthesize_lists
    from ns3.runtime import pin_torch_threads
    from ns3.tts.engine import TTSEngine

    log = get_run_logger()
    out_dir = data_dir(params, "tts")
    with tracking.stage_run("synthesize", params={"synthesize": params.synthesize.model_dump(),
                                                  "sample": params.diffusion.sample.model_dump()},
                            tags=_tags(params), root=params.root, experiment=params.tracking.experiment):
        pin_torch_threads(params.diffusion.train.threads)
        engine = TTSEngine.load(codec_path(params), diffusion_path(params), data_dir(params, "align"), params.align.voice)
        lists = test_lists(params)
        res = synthesize_lists(engine, {p: items for p, (items, _) in lists.items()},
                               {p: store for p, (_, store) in lists.items()}, out_dir,
                               generation_config(params.diffusion.sample), one_step=params.synthesize.one_step,
                               seed=params.seed, batch_size=params.synthesize.batch_size)
        summary = {"listed": res.listed, "synthesized": res.synthesized, "skipped": len(res.skipped), **res.metrics}
        write_metrics(params, "synthesize", summary)
        log_stage_metrics("synthesize", {"listed": res.listed, "synthesized": res.synthesized,
                                         "skipped": len(res.skipped)})
        tracking.log_metrics(res.metrics)
        tracking.log_artifact(out_dir / "lists")
        log.info("synthesize: %s items (%d skipped); %s", res.synthesized, len(res.skipped),
                 {k: round(v, 3) for k, v in res.metrics.items() if k.endswith("/rtf")})
    return summary


@flow(name="evaluate_tts", retries=1, retry_delay_seconds=5)
def evaluate_tts_flow(params: Params) -> dict:
    """SIM-O/SIM-R, PER (+ its ground-truth row), WER/MOS when configured, MCD / MCD-Acc, RTF of the TTS lists."""
    from evaluation.codec_eval import phone_recognizer
    from evaluation.tts_eval import Scorers, evaluate_tts, flat_metrics

    log = get_run_logger()
    e = params.evaluate
    out_dir = data_dir(params, "eval_tts")
    m = params.diffusion.model
    hparams = {"codec_hparams": {k: getattr(params.codec.model, k) for k in ("factorized", "prosody_input", "use_detail",
                                                                            "information_bottleneck")},
               "diffusion_hparams": {k: getattr(m, k) for k in ("duration_objective", "duration_uses_prosody",
                                                               "duration_uses_prompt")},
               "sample": params.diffusion.sample.model_dump()}
    with tracking.stage_run("evaluate_tts", params={"evaluate": e.model_dump(), **hparams}, tags=_tags(params),
                            root=params.root, experiment=params.tracking.experiment):
        scorers = Scorers(phone_recognizer(data_dir(params, "align")), whisper_checkpoint=e.whisper_checkpoint,
                          hubert_checkpoint=e.hubert_checkpoint, wavlm_checkpoint=e.wavlm_checkpoint,
                          utmos_checkpoint=e.utmos_checkpoint, dnsmos=e.dnsmos,
                          wavlm_tdnn_checkpoint=e.wavlm_tdnn_checkpoint)
        result = evaluate_tts(data_dir(params, "tts"), out_dir, scorers, variant=params.variant, profile=params.profile,
                              overrides={}, hparams=hparams, samples=e.samples)
        flat = flat_metrics(result)
        write_metrics(params, "evaluate_tts", flat)
        tracking.log_metrics(flat)
        tracking.log_dict(result, "eval_tts.json")
        model_registry.promote_tts(params, diffusion_path(params), flat)
        if (out_dir / "samples").exists():
            tracking.log_artifact(out_dir / "samples")
        head = {k: v for k, v in flat.items() if k.split("/")[-1] in ("sim_o", "per", "mcd_acc")}
        log.info("tts eval: %s", json.dumps(head)[:600])
    return flat
