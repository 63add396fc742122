"""Figure helpers: curves from MLflow metric history, spectrogram comparison."""
from __future__ import annotations

import uuid

import numpy as np
import pytest
import soundfile as sf

from evaluation.report.plots import (
    metric_histories,
    plot_curves,
    plot_spectrograms,
    plot_spectrograms_from_files,
    plot_training_curves,
)
from ns3.audio import SAMPLE_RATE, num_frames


@pytest.fixture(scope="module")
def train_run(mlflow_uri, tmp_path_factory):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.create_experiment(f"plots-{uuid.uuid4().hex[:8]}",
                                   artifact_location=tmp_path_factory.mktemp("art").as_uri())
    run = client.create_run(exp, tags={"ns3.stage": "train_codec"})
    for step in range(5):
        client.log_metric(run.info.run_id, "codec/mel_loss", 2.0 / (step + 1), step=step)
        client.log_metric(run.info.run_id, "codec/adv_loss", 0.5 + 0.1 * step, step=step)
    client.set_terminated(run.info.run_id)
    return mlflow_uri, run.info.run_id


def test_history_and_training_curves(train_run):
    uri, run_id = train_run
    hist = metric_histories(uri, run_id, ["codec/mel_loss"])
    assert sorted(hist["codec/mel_loss"]) == [(s, pytest.approx(2.0 / (s + 1))) for s in range(5)]
    fig = plot_training_curves(uri, run_id, ["codec/mel_loss", "codec/adv_loss"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["codec/mel_loss", "codec/adv_loss"]
    x, y = visible[0].lines[0].get_data()
    assert list(x) == list(range(5)) and y[0] == pytest.approx(2.0)
    with pytest.raises(KeyError, match="codec/nope"):
        plot_training_curves(uri, run_id, ["codec/nope"])


def test_curves_hide_unused_panels_and_reject_empty():
    fig = plot_curves({"a": [(1, 1.0), (0, 2.0)], "b": [], "c": [(0, 1.0)]}, ncols=2)
    assert sum(ax.get_visible() for ax in fig.axes) == 3 and len(fig.axes) == 4
    x, _ = fig.axes[0].lines[0].get_data()
    assert list(x) == [0, 1]  # sorted by step
    with pytest.raises(ValueError):
        plot_curves({})


def test_spectrogram_comparison(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    ref = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    recon = {"ns3-facodec": ref + 0.01 * rng.standard_normal(ref.size).astype(np.float32),
             "opus-6k": 0.5 * ref}
    fig = plot_spectrograms(ref, recon, title="u1")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["reference", "ns3-facodec", "opus-6k"]
    assert images[0].get_array().shape == (80, num_frames(ref.size))
    assert len({im.get_clim() for im in images}) == 1  # one colour scale for all rows
    with pytest.raises(ValueError, match="opus-6k"):
        plot_spectrograms(ref, {"opus-6k": np.zeros((2, 10), np.float32)})
    sf.write(tmp_path / "r.wav", ref, SAMPLE_RATE)
    sf.write(tmp_path / "c.wav", recon["opus-6k"], SAMPLE_RATE)
    fig = plot_spectrograms_from_files(tmp_path / "r.wav", {"opus-6k": tmp_path / "c.wav"})
    assert sum(1 for ax in fig.axes if ax.images) == 2
