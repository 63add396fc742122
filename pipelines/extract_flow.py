"""Prefect flow of the ``extract_codes`` stage: code shards for the factorized diffusion (a thin shell over
ns3.recipes.extract)."""
from __future__ import annotations

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params
from pipelines.codec_flows import codec_path
from pipelines.common import data_dir, log_stage_metrics, prefect_map, worker_threads, write_metrics


@flow(name="extract_codes", retries=1, retry_delay_seconds=5)
def extract_codes_flow(params: Params) -> dict:
    """Encode every shard of ``extract.splits`` with the trained codec; per-shard work is mapped on the task runner."""
    from ns3.data.shards import list_shards
    from ns3.recipes.extract import METRICS_FILE, SKIPPED_FILE, extract_codes

    log = get_run_logger()
    e = params.extract
    shards = [p for split in e.splits for p in list_shards(data_dir(params, "shards"), split)]
    if not shards:
        raise FileNotFoundError(f"no {'/'.join(e.splits)} shards in {data_dir(params, 'shards')}: run `ns3 shard` first")
    out_dir = data_dir(params, "codes")
    with tracking.stage_run("extract_codes", params=e.model_dump(), root=params.root,
                            tags={"ns3.variant": params.variant, "ns3.profile": params.profile},
                            experiment=params.tracking.experiment):
        res = extract_codes(
            codec_path(params), shards, data_dir(params, "align"), out_dir, batch_size=e.batch_size, map_fn=prefect_map,
            threads=worker_threads(params.shard.task_runner, params.shard.workers, params.shard.dask_address),
            say=log.info,
        )
        write_metrics(params, "extract_codes", res.metrics)
        log_stage_metrics("extract_codes", res.metrics)
        for name in ("code_info.json", METRICS_FILE, SKIPPED_FILE):
            tracking.log_artifact(out_dir / name, "extract_codes")
        for reason, n in res.metrics["skipped_by_reason"].items():
            if n:
                log.warning("extract_codes: %d utterance(s) skipped: %s (see %s)", n, reason, out_dir / SKIPPED_FILE)
    return res.metrics
