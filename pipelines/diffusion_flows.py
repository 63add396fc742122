"""Prefect flow of the ``train_diffusion`` stage (a thin shell over ns3.recipes.diffusion).

Under torchrun: ``torchrun --nproc-per-node 8 -m pipelines.diffusion_flows --profile paper`` (each rank
streams its own code shards; rank 0 alone writes the model, the metrics file and the MLflow run).
"""
from __future__ import annotations

import argparse
import contextlib

from prefect import flow, get_run_logger

from ns3 import tracking
from ns3.config import Params, load_params
from ns3.recipes.diffusion import SUMMARY_FILE
from ns3.recipes.state import is_main_process
from pipelines import model_registry
from pipelines.codec_flows import codec_path
from pipelines.common import data_dir, log_stage_metrics, training_shards, write_metrics


def run_train_diffusion(params: Params) -> dict:
    from ns3.builders import diffusion_train_spec
    from ns3.recipes.diffusion import diffusion_training_data, train_diffusion
    from ns3.text.inventory import PhoneInventory

    main = is_main_process()
    run = (tracking.stage_run("train_diffusion", params={"diffusion": params.diffusion.model_dump(), "seed": params.seed},
                              tags={"ns3.variant": params.variant, "ns3.profile": params.profile}, root=params.root,
                              experiment=params.tracking.experiment)
           if main else contextlib.nullcontext())
    with run:
        num_phones = len(PhoneInventory.load(data_dir(params, "align", "inventory.json")))
        data = diffusion_training_data(training_shards(params, "codes"), codec_path(params), num_phones,
                                       params.diffusion.model.duration_percentile)
        out = train_diffusion(diffusion_train_spec(params, data), data)
        if main and params.diffusion.check_pairs:
            out.summary.update(_check_generation(params, out.checkpoint))
        if main:
            tracking.log_artifact(out.checkpoint.parent / SUMMARY_FILE)
            write_metrics(params, "train_diffusion", out.summary)
            log_stage_metrics("train_diffusion", out.summary)
            model_registry.register_tts(params, out.checkpoint, codec_path(params))
    return out.summary


def _check_generation(params: Params, checkpoint) -> dict:
    """Synthesize test pairs with the trained model: PER / SIM-O beside the resynthesis and the ground truth."""
    from evaluation.codec_eval import phone_recognizer
    from evaluation.generation_check import check_generation
    from ns3.builders import generation_config
    from ns3.codec.checkpoint import load_codec
    from ns3.data.shards import list_shards
    from ns3.diffusion.checkpoint import load_diffusion

    model, _ = load_diffusion(checkpoint, codec_path=codec_path(params))
    return check_generation(
        load_codec(codec_path(params)), model, sorted(data_dir(params, "codes").glob("test-*.tar")),
        list_shards(data_dir(params, "shards"), "test"), recognize=phone_recognizer(data_dir(params, "align")),
        n_pairs=params.diffusion.check_pairs, config=generation_config(params.diffusion.sample), seed=params.seed)


@flow(name="train_diffusion", retries=0)
def train_diffusion_flow(params: Params) -> dict:
    """Train the factorized diffusion on the extracted codes (resuming from the last checkpoint)."""
    summary = run_train_diffusion(params)
    get_run_logger().info("diffusion: %d steps (resumed from %d) in %.1f min (%s)", summary["steps"],
                          summary["resumed_from"], summary["minutes"], summary["stopped_reason"])
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description="train the factorized diffusion (run under torchrun for DDP)")
    ap.add_argument("--params", default=None)
    ap.add_argument("--profile", default=None)
    args = ap.parse_args()
    run_train_diffusion(load_params(args.params, args.profile))


if __name__ == "__main__":
    main()
