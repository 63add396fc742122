"""The stages' model-registry steps: params -> kwargs for ``ns3.model_registry`` (each a no-op with it disabled).

Called inside the stage's MLflow run by the codec and TTS flows. Registry settings change no stage output,
so they are not DVC params of any stage: turning the registry off or renaming a model re-runs nothing.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from ns3.config import Params
from ns3.tracking import flatten
from pipelines.common import data_dir

log = logging.getLogger(__name__)
# Evaluate knobs that change no score; every other one (a new scorer included) is part of the test-set identity:
# changing it makes earlier scores incomparable, which errs on the side of keeping the champion.
NOT_SCORING = ("samples",)


def _tags(params: Params) -> dict[str, str]:
    return {"ns3.variant": params.variant, "ns3.profile": params.profile}


def _eval_settings(params: Params) -> dict:
    return {k: v for k, v in params.evaluate.model_dump().items() if k not in NOT_SCORING}


def _data_hash(what: str, checksums) -> str:
    """The hash of what a model was trained on; "unknown" (with a warning) rather than failing a finished training."""
    from ns3.model_registry.fingerprints import fingerprint

    try:
        return fingerprint(checksums())
    except FileNotFoundError as e:
        log.warning("the registered model's data hash is unknown: %s (%s)", e, what)
        return "unknown"


def register_codec(params: Params, checkpoint: Path, official: bool = False):
    """train_codec: the codec checkpoint as a version of ``registry.codec_model``."""
    if not params.registry.enabled:
        return None
    from ns3.model_registry import register_codec as register
    from ns3.model_registry.fingerprints import fingerprint, shard_checksums

    # An imported release was not trained on our shards: its data is the release itself. The local shard
    # folder's checksums name the shards also when training streamed a copy of them from paths.shards_url.
    data_hash = (fingerprint({"official": params.codec.official.model_dump()}) if official
                 else _data_hash("shards", lambda: shard_checksums(data_dir(params, "shards"), ("train", "valid"))))
    return register(params.registry.codec_model, checkpoint, data_hash=data_hash,
                    tags={**_tags(params), "ns3.source": "official" if official else "trained"},
                    params=flatten({"codec": params.codec.model_dump(), "seed": params.seed}))


def register_tts(params: Params, diffusion: Path, codec: Path):
    """train_diffusion: the diffusion checkpoint + its codec (+ the aligner) as a version of ``registry.tts_model``."""
    if not params.registry.enabled:
        return None
    from ns3.builders import generation_config
    from ns3.model_registry import register_tts as register
    from ns3.model_registry.fingerprints import code_checksums

    return register(params.registry.tts_model, diffusion, codec, data_dir(params, "align"),
                    data_hash=_data_hash("codes", lambda: code_checksums(data_dir(params, "codes"))), voice=params.align.voice,
                    generation=dataclasses.asdict(generation_config(params.diffusion.sample)), tags=_tags(params),
                    params=flatten({"diffusion": params.diffusion.model_dump(), "seed": params.seed}))


def promote_codec(params: Params, checkpoint: Path, metrics: dict[str, float]):
    """evaluate_codec: champion or challenger for the version holding ``checkpoint``."""
    if not params.registry.enabled:
        return None
    from ns3.data.code_shards import file_sha256
    from ns3.model_registry import CODEC_HASH_TAG, promote_evaluated
    from ns3.model_registry.fingerprints import codec_test_set

    settings = {**_eval_settings(params), "seed": params.seed}  # the seed draws the VC pairs
    test_set = codec_test_set(data_dir(params, "shards"), data_dir(params, "align"), settings)
    return promote_evaluated(params.registry.codec_model, CODEC_HASH_TAG, file_sha256(checkpoint), metrics=metrics,
                             test_set=test_set, criteria=params.registry.codec_criteria)


def promote_tts(params: Params, diffusion: Path, metrics: dict[str, float]):
    """evaluate_tts: champion or challenger for the TTS version holding ``diffusion``."""
    if not params.registry.enabled:
        return None
    from ns3.data.code_shards import file_sha256
    from ns3.model_registry import DIFFUSION_HASH_TAG, promote_evaluated
    from ns3.model_registry.fingerprints import tts_test_set

    # The sampler is part of the protocol: the same model scored at 15 NFE is not like with like at 60 NFE.
    settings = {**_eval_settings(params), "sample": params.diffusion.sample.model_dump()}
    test_set = tts_test_set(data_dir(params, "tts"), data_dir(params, "shards"), data_dir(params, "align"), settings)
    return promote_evaluated(params.registry.tts_model, DIFFUSION_HASH_TAG, file_sha256(diffusion), metrics=metrics,
                             test_set=test_set, criteria=params.registry.tts_criteria)
