"""MLflow helpers: one place that knows run naming, tags and artifacts.

Library code calls the ``log_*`` functions unconditionally; they are no-ops when no MLflow run is
active, so solvers and stages stay usable (and testable) without tracking.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPERIMENT = "ns3"  # params.yaml's tracking.experiment; stages pass the configured name


def _mlflow():
    import mlflow

    return mlflow


def default_tracking_uri(root: Path = PROJECT_ROOT) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store in the project folder (never ./mlruns)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').as_posix()}"


def configure(experiment: str = DEFAULT_EXPERIMENT, root: Path = PROJECT_ROOT) -> None:
    mlflow = _mlflow()
    uri = default_tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:") and mlflow.get_experiment_by_name(experiment) is None:
        # Local store: keep artifacts next to the database, not in the caller's cwd.
        mlflow.create_experiment(experiment, artifact_location=(root / "mlartifacts").resolve().as_uri())
    mlflow.set_experiment(experiment)


def git_commit(root: Path = PROJECT_ROOT) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def config_hash(obj: Any) -> str:
    """Stable short hash of a JSON-able config (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def active() -> bool:
    # No run can be active unless mlflow was imported; checking first keeps its ~5 s import out of
    # library code that merely offers to log.
    return "mlflow" in sys.modules and _mlflow().active_run() is not None


@contextmanager
def stage_run(name: str, params: dict | None = None, tags: dict | None = None, root: Path = PROJECT_ROOT,
              experiment: str = DEFAULT_EXPERIMENT) -> Iterator[Any]:
    """Open a run for one stage: nested under the active (pipeline) run if there is one, else in ``experiment``.

    Params are the stage's resolved config section, flattened to dotted keys (MLflow caps values at 6000 chars).
    """
    mlflow = _mlflow()
    if not mlflow.active_run():
        configure(experiment, root=root)
    nested = mlflow.active_run() is not None
    with mlflow.start_run(run_name=name, nested=nested) as run:
        all_tags = {"ns3.stage": name, "git_commit": git_commit(root)}
        if params is not None:
            all_tags["config_hash"] = config_hash(params)
            flat = {k: str(v)[:6000] for k, v in flatten(params).items()}
            items = list(flat.items())
            for i in range(0, len(items), 100):  # the REST API limits a batch to 100 params
                mlflow.log_params(dict(items[i:i + 100]))
        all_tags.update(tags or {})
        mlflow.set_tags(all_tags)
        yield run


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    if active():
        clean = {k: float(v) for k, v in metrics.items() if v is not None and v == v}
        _mlflow().log_metrics(clean, step=step)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    if active():
        _mlflow().log_artifact(str(path), artifact_path=artifact_path)


def log_dict(obj: dict, artifact_file: str) -> None:
    if active():
        _mlflow().log_dict(obj, artifact_file)


def log_figure(fig: Any, artifact_file: str) -> None:
    """Log a matplotlib figure as PNG and close it (figures leak memory in long loops otherwise)."""
    import matplotlib.pyplot as plt

    if active():
        _mlflow().log_figure(fig, artifact_file)
    plt.close(fig)


def log_audio(audio, artifact_file: str, sample_rate: int = 16_000) -> None:
    """Log a waveform [T] as a WAV artifact at ``artifact_file`` (e.g. 'samples/step_100/recon.wav')."""
    if not active():
        return
    from ns3.audio import write_audio

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / Path(artifact_file).name
        write_audio(p, audio, sample_rate)
        parent = str(Path(artifact_file).parent)
        log_artifact(p, None if parent in ("", ".") else parent)
