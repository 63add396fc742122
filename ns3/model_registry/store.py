"""The MLflow side of the registry: log a trained model as a pyfunc version, and move aliases after evaluation.

Everything here runs inside an open MLflow run (the stage run): a model version's source run is the
training stage's, and a promotion is recorded on the evaluation stage's run as well as on the version.

Model version tags (all strings):
- at registration: ``ns3.kind`` (codec | tts), ``ns3.codec_hash`` (sha256 of the codec checkpoint, the key the
  codec evaluation finds its version by), ``ns3.diffusion_hash`` (tts: the key of the TTS evaluation),
  ``ns3.data_hash`` (what it was trained on), ``git_commit``, ``ns3.variant``, ``ns3.profile``, ``config_hash``;
- at each evaluation: ``ns3.eval.<test set>`` (the evaluation run holding its scores on that test set),
  ``ns3.test_set`` (the latest), ``ns3.decision`` (champion | challenger), ``ns3.decision_reason``,
  ``ns3.decision_against`` (the champion's version) and ``ns3.decision_checks`` (every rule, JSON);
  a version that loses the champion alias gets ``ns3.superseded_by``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ns3.model_registry.promotion import CHALLENGER, CHAMPION, Promotion, Scores, decide
from ns3.model_registry.resolve import ALIGN, CODEC, DIFFUSION

log = logging.getLogger(__name__)
EVAL_TAG = "ns3.eval."  # + test set hash -> evaluation run id
CODEC_HASH_TAG, DIFFUSION_HASH_TAG = "ns3.codec_hash", "ns3.diffusion_hash"
# Run tags of the training stage copied onto its version, so a version says where it came from on its own.
_RUN_TAGS = ("git_commit", "ns3.variant", "ns3.profile", "config_hash")
_TAG_CHARS = 5000  # run tags stop at 8000 characters; decisions stay readable well before that


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str  # the training stage run that logged it
    created: bool = True  # False: these checkpoint bytes were already registered (that version is returned)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _mlflow():
    import mlflow

    return mlflow


def _active_run():
    run = _mlflow().active_run()
    if run is None:
        raise RuntimeError("the model registry records into the stage's MLflow run; none is active")
    return run


def _requirements() -> list[str]:
    """What a loader needs besides the ns3 package itself (not on PyPI: install it from this repository)."""
    import mlflow
    import numpy
    import pydantic
    import torch

    return [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={numpy.__version__}",
            f"mlflow=={mlflow.__version__}", f"pydantic=={pydantic.__version__}"]


def register(name: str, kind: str, artifacts: Mapping[str, str | Path], *, tags: Mapping[str, str],
             params: Mapping[str, Any] | None = None, model_config: Mapping[str, Any] | None = None) -> RegisteredVersion:
    """Log ``artifacts`` (role -> file or folder) as a pyfunc of ``kind`` in the active run; register a new version."""
    from mlflow import MlflowClient

    mlflow = _mlflow()
    run = _active_run()
    code = Path(__file__).with_name(f"pyfunc_{kind}.py")
    if not code.is_file():
        raise ValueError(f"unknown model kind {kind!r} (no {code.name})")
    client = MlflowClient()
    run_tags = client.get_run(run.info.run_id).data.tags
    all_tags = {**{k: run_tags[k] for k in _RUN_TAGS if k in run_tags}, "ns3.kind": kind, **tags}
    info = mlflow.pyfunc.log_model(
        name=kind, python_model=str(code), artifacts={k: str(v) for k, v in artifacts.items()},
        pip_requirements=_requirements(), registered_model_name=name, model_config=dict(model_config or {}),
        params={k: str(v)[:6000] for k, v in (params or {}).items()}, tags=all_tags)
    version = str(info.registered_model_version)
    for k, v in all_tags.items():
        client.set_model_version_tag(name, version, k, str(v))
    mlflow.set_tags({"ns3.registry.model": name, "ns3.registry.version": version})
    log.info("registered %s version %s from run %s", name, version, run.info.run_id)
    return RegisteredVersion(name, version, run.info.run_id)


def _registered(name: str, tag: str, sha: str) -> RegisteredVersion | None:
    """The version already holding these bytes: a stage re-run that trained nothing new adds no version."""
    from mlflow import MlflowClient

    version = find_version(name, tag, sha)
    if version is None:
        return None
    _mlflow().set_tags({"ns3.registry.model": name, "ns3.registry.version": version})
    log.info("%s: these checkpoint bytes are already version %s", name, version)
    return RegisteredVersion(name, version, MlflowClient().get_model_version(name, version).run_id, created=False)


def register_codec(name: str, codec_path: str | Path, *, data_hash: str, tags: Mapping[str, str] | None = None,
                   params: Mapping[str, Any] | None = None) -> RegisteredVersion:
    """The ``train_codec`` stage's checkpoint as a new version of ``name`` (or the version it already is)."""
    from ns3.data.code_shards import file_sha256

    sha = file_sha256(codec_path)
    return _registered(name, CODEC_HASH_TAG, sha) or register(
        name, "codec", {CODEC: codec_path}, params=params,
        tags={CODEC_HASH_TAG: sha, "ns3.data_hash": data_hash, **(tags or {})})


def register_tts(name: str, diffusion_path: str | Path, codec_path: str | Path, align_dir: str | Path, *,
                 data_hash: str, voice: str, generation: Mapping[str, Any], tags: Mapping[str, str] | None = None,
                 params: Mapping[str, Any] | None = None) -> RegisteredVersion:
    """The TTS model -- the diffusion checkpoint, the codec it was trained on and the aligner its prompts need --
    as a new version of ``name``; ``generation`` (GenerationConfig fields) and ``voice`` drive its ``predict``."""
    import shutil
    import tempfile

    from ns3.data.code_shards import file_sha256

    sha = file_sha256(diffusion_path)
    if (known := _registered(name, DIFFUSION_HASH_TAG, sha)) is not None:
        return known
    with tempfile.TemporaryDirectory() as tmp:
        # Only what prompts need from the align stage (its labels would make every version as big as the corpus).
        align = Path(tmp) / ALIGN
        align.mkdir()
        for f in ("aligner.pt", "inventory.json"):
            if not (Path(align_dir) / f).is_file():
                raise FileNotFoundError(f"{Path(align_dir) / f} not found: the TTS model needs the built-in aligner "
                                        "to align its prompts (align.backend: builtin)")
            shutil.copy2(Path(align_dir) / f, align / f)
        return register(name, "tts", {DIFFUSION: diffusion_path, CODEC: codec_path, ALIGN: align}, params=params,
                        model_config={"voice": voice, "generation": dict(generation)},
                        tags={DIFFUSION_HASH_TAG: sha, CODEC_HASH_TAG: file_sha256(codec_path),
                              "ns3.data_hash": data_hash, **(tags or {})})


def find_version(name: str, tag: str, value: str) -> str | None:
    """The newest version of ``name`` whose tag ``tag`` is ``value`` (None: none, or no such registered model)."""
    from mlflow import MlflowClient

    found = MlflowClient().search_model_versions(f"name = '{name}' and tags.`{tag}` = '{value}'")
    return str(max(int(v.version) for v in found)) if found else None


def _scores_on(client, name: str, version: str, test_set: str) -> Scores:
    """``version``'s scores on ``test_set``; without any, its latest test set with no scores (not comparable)."""
    tags = client.get_model_version(name, version).tags
    run_id = tags.get(EVAL_TAG + test_set)
    if run_id:
        return Scores(version, test_set, dict(client.get_run(run_id).data.metrics))
    return Scores(version, tags.get("ns3.test_set", ""), {})


def promote(name: str, version: str, *, metrics: Mapping[str, float], test_set: str,
            criteria: Mapping[str, str]) -> Promotion:
    """Decide ``champion`` / ``challenger`` for ``version`` (scored ``metrics`` on ``test_set`` in the active run),
    move the alias, and record the decision on the version and on the run."""
    from mlflow import MlflowClient

    mlflow = _mlflow()
    run = _active_run()
    client = MlflowClient()
    aliases = client.get_registered_model(name).aliases
    current = aliases.get(CHAMPION)
    champion = None if current is None else _scores_on(client, name, str(current), test_set)
    decision = decide(criteria, Scores(str(version), test_set, dict(metrics)), champion)

    tags = {EVAL_TAG + test_set: run.info.run_id, "ns3.test_set": test_set, "ns3.decision": decision.alias,
            "ns3.decision_reason": decision.reason[:_TAG_CHARS], "ns3.decision_against": decision.champion_version or "",
            "ns3.decision_checks": json.dumps([c.__dict__ for c in decision.checks])[:_TAG_CHARS]}
    for k, v in tags.items():
        client.set_model_version_tag(name, str(version), k, v)
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, str(version))
        if aliases.get(CHALLENGER) is not None and str(aliases[CHALLENGER]) == str(version):
            client.delete_registered_model_alias(name, CHALLENGER)
        if current is not None and str(current) != str(version):
            client.set_model_version_tag(name, str(current), "ns3.superseded_by", str(version))
    else:
        client.set_registered_model_alias(name, CHALLENGER, str(version))
    mlflow.set_tags({"ns3.test_set": test_set, "ns3.registry.model": name, "ns3.registry.version": str(version),
                     "ns3.registry.alias": decision.alias, "ns3.registry.reason": decision.reason[:_TAG_CHARS]})
    mlflow.log_dict(decision.to_dict(), "registry/decision.json")
    log.info("%s v%s -> %s: %s", name, version, decision.alias, decision.reason)
    return decision


def promote_evaluated(name: str, identity_tag: str, identity: str, *, metrics: Mapping[str, float], test_set: str,
                      criteria: Mapping[str, str]) -> Promotion | None:
    """``promote`` the version whose ``identity_tag`` is ``identity`` (the evaluated checkpoint's sha256).

    None, with a warning, when no version has it: the model was trained with the registry off, or into another
    tracking store; the evaluation itself stands.
    """
    version = find_version(name, identity_tag, identity)
    if version is None:
        log.warning("no version of %r has %s = %s: nothing to promote (was it trained with registry.enabled "
                    "and this tracking URI?)", name, identity_tag, identity)
        _mlflow().set_tags({"ns3.test_set": test_set, "ns3.registry.alias": "unregistered"})
        return None
    return promote(name, version, metrics=metrics, test_set=test_set, criteria=criteria)
