"""Prefect flow of the ``align`` stage: G2P, the aligner (built-in or MFA), phone labels, F0/UV targets."""
from __future__ import annotations

import json

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.builders import aligner_settings
from ns3.config import Params
from pipelines.data_flows import read_corpus_pointer
from pipelines.common import data_dir, log_stage_metrics, prefect_map, worker_threads, write_metrics


def _figures(shard, out_dir, references, n: int):
    """Spectrogram + phone boundaries (+ espeak's reference onsets when known) + F0 for the first ``n`` utterances."""
    from ns3.align.plot import plot_alignment
    from ns3.align.stage import load_reference_alignments
    from ns3.align.types import Alignment
    from ns3.data.pitch import extract_pitch
    from ns3.data.shards import iter_shard, iter_tar_groups

    refs = load_reference_alignments(references) if references else {}
    labels = dict(iter_tar_groups(out_dir / shard.name))
    for s in list(iter_shard(shard))[:n]:
        if s.key in labels:
            a = Alignment.from_json(json.loads(labels[s.key]["phones.json"]))
            yield plot_alignment(s.audio, a, extract_pitch(s.audio), title=s.key, reference=refs.get(s.key))


@flow(name="align", retries=1, retry_delay_seconds=5)
def align_flow(params: Params) -> dict:
    """Align every shard; per-shard work (G2P + F0 scan, alignment) is mapped on the task runner."""
    from ns3.align.stage import align_shards
    from ns3.data.shards import list_shards

    log = get_run_logger()
    a = params.align
    shards = [p for split in ("train", "valid", "test") for p in list_shards(data_dir(params, "shards"), split)]
    if not shards:
        raise FileNotFoundError(f"no shards in {data_dir(params, 'shards')}: run `ns3 shard` first")
    info = read_corpus_pointer(params)
    config, schedule = aligner_settings(a, params.seed)
    out_dir = data_dir(params, "align")
    with tracking.stage_run("align", params=a.model_dump(), root=params.root, experiment=params.tracking.experiment):
        res = align_shards(
            shards, out_dir, backend=a.backend, config=config, schedule=schedule,
            max_train_utterances=a.max_train_utterances, voice=a.voice, pitch_method=a.pitch_method,
            reference_alignments=info.get("reference_alignments"), mfa_acoustic_model=a.mfa_acoustic_model,
            mfa_jobs=a.mfa_jobs, map_fn=prefect_map,
            threads=worker_threads(params.shard.task_runner, params.shard.workers, params.shard.dask_address),
            say=log.info,
        )
        write_metrics(params, "align", res.metrics)
        log_stage_metrics("align", {k: v for k, v in res.metrics.items() if k != "aligner_rounds"})
        for name in ("inventory.json", "metrics.json", "failures.jsonl"):
            tracking.log_artifact(out_dir / name, "align")
        for i, fig in enumerate(_figures(shards[-1], out_dir, info.get("reference_alignments"), n=2)):
            tracking.log_figure(fig, f"align/alignment_{i}.png")
        for split, m in res.metrics["splits"].items():
            b = m.get("boundary", {})
            log.info("align %s: %d/%d aligned; boundaries within 20 ms: %s", split, m["aligned"], m["utterances"],
                     b.get("within_20ms"))
    return res.metrics
