"""Session-wide test environment: every store (MLflow, Prefect, data) lives in a temp folder."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

import ns3  # noqa: F401  (before anything loads torch: the OpenMP wait policy every ns3 command runs with)

_TMP = Path(tempfile.mkdtemp(prefix="ns3-tests-"))
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_TMP / 'mlflow.db'}"
os.environ["PREFECT_HOME"] = str(_TMP / "prefect")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (~6 s), only for tests that run flows."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture(scope="session")
def micro_corpus(tmp_path_factory) -> Path:
    """A synthesized micro corpus in LibriSpeech layout: 6 speakers x 4 utterances (+ reference alignments)."""
    from ns3.corpus.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("micro") / "corpus"
    synthesize_corpus(root, num_speakers=6, utts_per_speaker=4, min_words=5, max_words=9, style_dir=None,
                      style_actors=0, style_repetitions=1, seed=7, workers=1)
    return root
