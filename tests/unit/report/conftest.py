"""Fixtures: the variants' metrics files on disk, with the audio and PNG they point to."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from report_fixtures import BASELINE, NO_BOTTLENECK, NO_DETAIL, PROSODY_V2, write_json


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    """Four variants' metrics files plus the audio and PNG they point to."""
    root = tmp_path / "metrics"
    for name, data in [("eval_codec", BASELINE), ("no_bottleneck", NO_BOTTLENECK), ("no_detail", NO_DETAIL),
                       ("prosody_v2", PROSODY_V2)]:
        write_json(root / f"{name}.json", data)
    rng = np.random.default_rng(0)
    for name in ("ref", "facodec", "opus"):
        (root / "audio").mkdir(exist_ok=True)
        sf.write(root / "audio" / f"{name}.wav", 0.1 * rng.standard_normal(1600).astype(np.float32), 16000)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [1, 0])
    fig.savefig(root / "spec.png", format="png")
    return root


@pytest.fixture
def metric_files(metrics_dir: Path) -> list[Path]:
    return [metrics_dir / f"{n}.json" for n in ("eval_codec", "no_bottleneck", "no_detail", "prosody_v2")]


@pytest.fixture(scope="session")
def mlflow_uri() -> str:
    """The session's temporary SQLite store (tests/conftest.py points MLFLOW_TRACKING_URI at a temp folder).

    Shared rather than created per module: building a fresh MLflow database runs seconds of migrations.
    Each test module logs into its own experiment.
    """
    uri = os.environ["MLFLOW_TRACKING_URI"]
    assert uri.startswith("sqlite:///") and "ns3-tests-" in uri, "tests must never write the project's MLflow store"
    return uri
