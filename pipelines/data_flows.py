"""Prefect flows of the data stages: ``corpus`` and ``shard``."""
from __future__ import annotations

import json
import os
from pathlib import Path

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params
from ns3.corpus.synth import synthesize_corpus
from ns3.data.sharding import shard_corpus
from pipelines.common import data_dir, log_stage_metrics, prefect_map, task_runner, write_metrics


def corpus_pointer(params: Params) -> Path:
    return data_dir(params, "raw", "corpus.json")


def _relative_to_raw(path: Path, raw: Path) -> str:
    # Paths inside the data folder are written relative to it: DVC's run cache, `dvc pull` and `dvc exp run`
    # (in a temporary copy of the workspace) restore this file elsewhere, where an absolute path would point
    # into a folder that no longer exists. A real corpus outside the project stays absolute.
    return os.path.relpath(path, raw)


def read_corpus_pointer(params: Params) -> dict:
    """``<data>/raw/corpus.json`` with its relative paths resolved against its own folder."""
    pointer = corpus_pointer(params)
    if not pointer.exists():
        raise FileNotFoundError(f"{pointer} is missing: run `ns3 corpus` first")
    info = json.loads(pointer.read_text())
    here = pointer.parent

    def resolve(p: str | None) -> str | None:
        return None if p is None else str(here / p)  # an absolute p stays as it is

    info["root"] = resolve(info["root"])
    info["reference_alignments"] = resolve(info.get("reference_alignments"))
    if info.get("style"):
        info["style"] = {**info["style"], "root": resolve(info["style"]["root"])}
    return info


@flow(name="corpus", retries=1, retry_delay_seconds=5)
def corpus_flow(params: Params) -> dict:
    """Synthesize the embedded corpus, or record where the real corpus is; writes ``<data>/raw/corpus.json``."""
    log = get_run_logger()
    c = params.corpus
    raw = data_dir(params, "raw")
    with tracking.stage_run("corpus", params=c.model_dump(), tags={"ns3.profile": params.profile}, root=params.root,
                            experiment=params.tracking.experiment):
        if c.source == "synth":
            s = c.synth
            res = synthesize_corpus(
                raw / "corpus", num_speakers=s.num_speakers, utts_per_speaker=s.utts_per_speaker,
                min_words=s.min_words, max_words=s.max_words,
                style_dir=raw / "style" if c.style_source == "synth" else None,
                style_actors=s.style_actors, style_repetitions=s.style_repetitions, seed=params.seed, workers=s.workers,
                noise_floor_db=s.noise_floor_db,
            )
            info = {"source": "synth", "layout": "librispeech", "root": _relative_to_raw(res.corpus_dir, raw),
                    "reference_alignments": _relative_to_raw(res.corpus_dir / "reference_alignments.jsonl", raw)}
            metrics = {"utterances": res.utterances, "hours": round(res.hours, 4), "speakers": res.speakers,
                       "style_files": res.style_files}
            log.info("synthesized %d utterances (%.2f h, %d speakers), %d style files", res.utterances, res.hours,
                     res.speakers, res.style_files)
        else:
            root = Path(c.root)
            if not root.is_dir():
                raise FileNotFoundError(f"corpus.root {root} is not a folder: set it in params.yaml or configs/<profile>.yaml")
            info = {"source": c.source, "layout": c.source, "root": str(root.resolve()), "reference_alignments": None}
            metrics = {}
        if c.style_source == "synth" and c.synth.style_actors > 0:
            info["style"] = {"layout": "ravdess", "root": "style"}
        elif c.style_source == "ravdess":
            info["style"] = {"layout": "ravdess", "root": str(Path(c.style_root).resolve())}
        else:
            info["style"] = None
        raw.mkdir(parents=True, exist_ok=True)
        tmp = corpus_pointer(params).with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, corpus_pointer(params))
        log_stage_metrics("corpus", metrics)
        tracking.log_dict(info, "corpus.json")
    return info


@flow(name="shard", retries=1, retry_delay_seconds=5)
def shard_flow(params: Params) -> dict:
    """Read the corpus with its layout's reader, then write speaker-disjoint shards in parallel (one task per shard)."""
    from ns3.corpus.readers import read_corpus

    log = get_run_logger()
    info = read_corpus_pointer(params)
    c, s = params.corpus, params.shard
    with tracking.stage_run("shard", params={"shard": s.model_dump(), "corpus": c.model_dump()}, root=params.root,
                            experiment=params.tracking.experiment):
        read = read_corpus(info["layout"], info["root"], min_duration=c.min_duration, max_duration=c.max_duration,
                           **({"threshold_db": c.vad.threshold_db, "min_silence": c.vad.min_silence}
                              if info["layout"] == "librilight" else {}))
        log.info("corpus %s: found %d, kept %d, rejected %d", info["root"], read.found, len(read.kept), len(read.rejected))
        res = shard_corpus(
            read, data_dir(params, "shards"), utts_per_shard=s.utts_per_shard,
            valid_speakers=s.splits.valid_speakers, test_speakers=s.splits.test_speakers,
            seed=params.seed, map_fn=prefect_map,
        )
        write_metrics(params, "shard", res.stats)
        log_stage_metrics("shard", res.stats)
        for name in ("manifest.jsonl", "shards.json", "rejections.jsonl", "stats.json"):
            tracking.log_artifact(res.out_dir / name, "shard")
        log.info("%d shards (%d reused from an earlier run)", len(res.shards), sum(w.skipped for w in res.shards))
    return res.stats

