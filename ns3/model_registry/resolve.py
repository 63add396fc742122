"""``models:/<name>@<alias>`` or ``models:/<name>/<version>`` -> the checkpoint files inside that version.

The one resolver behind every command that takes a checkpoint path (``ns3 codec encode|decode|vc``,
``ns3 tts``, ``ns3 vc``): a plain path passes through; a model URI is looked up in the registry, its
version's artifacts are downloaded once into a local cache (``$NS3_MODEL_CACHE``, else
``~/.cache/ns3/models``), checked against the sha256 tags the version was registered with, and the file of
the asked-for role is returned. Aliases move, so the cache is keyed by the version they point to now.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

MODELS_PREFIX = "models:/"
# Artifact names (roles) inside a registered version: a codec version has CODEC; a TTS version all three.
CODEC, DIFFUSION, ALIGN = "codec", "diffusion", "align"
_DONE = "ns3-files.json"  # written last: a cache folder without it is an interrupted download
_HASH_TAGS = {CODEC: "ns3.codec_hash", DIFFUSION: "ns3.diffusion_hash"}


def is_model_uri(ref: object) -> bool:
    return isinstance(ref, str) and ref.startswith(MODELS_PREFIX)


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """-> (name, version, alias): exactly one of version and alias is set."""
    rest = uri[len(MODELS_PREFIX):] if is_model_uri(uri) else ""
    if "@" in rest and "/" not in rest:
        name, alias = rest.split("@", 1)
        if name and alias:
            return name, None, alias
    elif rest.count("/") == 1:
        name, version = rest.split("/")
        if name and version.isdigit():
            return name, version, None
    raise ValueError(f"{uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>")


def default_cache_dir() -> Path:
    if os.environ.get("NS3_MODEL_CACHE"):
        return Path(os.environ["NS3_MODEL_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ns3" / "models"


@dataclass(frozen=True)
class ModelFiles:
    """A registered version's checkpoint files on local disk, by role."""

    name: str
    version: str
    root: Path
    files: Mapping[str, Path]

    def path(self, role: str) -> Path:
        if role not in self.files:
            raise ValueError(f"models:/{self.name}/{self.version} has no {role} (it holds {sorted(self.files)})")
        return self.files[role]


def _artifact_files(root: Path) -> dict[str, Path]:
    """role -> file, from the pyfunc's own record of its artifacts (the version's MLmodel file)."""
    import yaml

    flavor = yaml.safe_load((root / "MLmodel").read_text())["flavors"]["python_function"]
    return {role: root / spec["path"] for role, spec in (flavor.get("artifacts") or {}).items()}


def _verify(files: Mapping[str, Path], tags: Mapping[str, str], where: str) -> None:
    from ns3.data.code_shards import file_sha256

    for role, tag in _HASH_TAGS.items():
        if role in files and tag in tags and file_sha256(files[role]) != tags[tag]:
            raise ValueError(f"{where}: the downloaded {role} does not match the version's {tag} ({tags[tag]})")


def resolve_model(uri: str, *, cache_dir: str | Path | None = None, tracking_uri: str | None = None) -> ModelFiles:
    """Download (once) the version ``uri`` names and return its files by role."""
    import mlflow
    from mlflow import MlflowClient

    from ns3.tracking import default_tracking_uri

    name, version, alias = parse_model_uri(uri)
    tracking_uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mv = client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    version = str(mv.version)
    # Keyed by the store too: version 3 of one tracking server is not version 3 of another.
    store = hashlib.sha256(tracking_uri.encode()).hexdigest()[:12]
    final = Path(cache_dir or default_cache_dir()) / store / name / version
    if not (final / _DONE).is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{version}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(tmp),
                                                tracking_uri=tracking_uri, registry_uri=tracking_uri)
            files = _artifact_files(tmp)
            _verify(files, mv.tags, uri)
            (tmp / _DONE).write_text(json.dumps({r: str(p.relative_to(tmp)) for r, p in files.items()}))
            if final.exists():  # an interrupted earlier download (no marker): replace it
                shutil.rmtree(final)
            os.replace(tmp, final)
        except OSError:
            if not (final / _DONE).is_file():  # else another process finished the same download first
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    rel = json.loads((final / _DONE).read_text())
    return ModelFiles(name, version, final, {role: final / p for role, p in rel.items()})


def resolve_checkpoint(ref: str | Path, role: str = CODEC, **kwargs) -> Path:
    """A checkpoint path as given, or the ``role`` file of the registered version a ``models:/`` URI names."""
    if is_model_uri(ref):
        return resolve_model(str(ref), **kwargs).path(role)
    return Path(ref)
