"""Disentanglement probes: an oracle codec whose groups carry exactly one attribute each must show the
expected pattern, and a codec that carries nothing must score at chance."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evaluation.disentanglement import pattern, probe_codes
from ns3.data.batch import CodecExample

HOP, D, PHONES = 200, 8, 5


def examples(speakers: list[int], per_speaker: int, seed: int) -> list[CodecExample]:
    rng = np.random.default_rng(seed)
    out = []
    for spk in speakers:
        for i in range(per_speaker):
            frames = int(rng.integers(30, 50))
            out.append(CodecExample(
                wav=rng.standard_normal(frames * HOP).astype(np.float32) * 0.1,
                phone_ids=rng.integers(0, PHONES, frames).astype(np.int64),
                f0=rng.standard_normal(frames).astype(np.float32), uv=(rng.random(frames) > 0.3).astype(np.float32),
                speaker_id=spk, f0_stats=(5.0, 0.2), key=f"{spk}_{i}"))
    return out


class Oracle:
    """Stands in for FACodec: content = one-hot phone, prosody = F0, timbre = one-hot speaker, detail = noise."""

    def __init__(self, table: dict[str, CodecExample], informative: bool = True):
        self.table, self.informative = table, informative

    def eval(self):
        return self

    def __call__(self, wav: torch.Tensor):
        ex = self.table[wav.numpy().tobytes()]
        n = len(ex.phone_ids)
        rng = np.random.default_rng(len(ex.key))
        noise = lambda: rng.standard_normal((n, D)).astype(np.float32)  # noqa: E731
        content, prosody, timbre = noise(), noise(), rng.standard_normal(D).astype(np.float32)
        if self.informative:
            content[:, :PHONES] = np.eye(PHONES, dtype=np.float32)[ex.phone_ids] * 3
            prosody[:, 0] = ex.f0 * 3
            timbre[:] = 0
            timbre[ex.speaker_id % D] = 3
        as_t = lambda a: torch.from_numpy(a.T.copy())[None]  # noqa: E731  [1, D, F]
        return SimpleNamespace(factors={"prosody": as_t(prosody), "content": as_t(content), "detail": as_t(noise())},
                               timbre=torch.from_numpy(timbre)[None])


@pytest.fixture(scope="module")
def data():
    train, test = examples([0, 1, 2, 3], 6, seed=0), examples([4, 5], 4, seed=1)
    table = {ex.wav.tobytes(): ex for ex in [*train, *test]}
    return train, test, table


def test_an_oracle_codec_shows_the_expected_pattern(data):
    train, test, table = data
    r = probe_codes(Oracle(table), train, test, seed=0)
    p = r["probes"]
    assert set(p) == {"prosody", "content", "detail", "timbre"}
    assert p["content"]["phone"] > 0.95 and p["prosody"]["f0"] > 0.95 and p["timbre"]["speaker"] == 1.0
    assert p["detail"]["phone"] < 0.5 and abs(p["detail"]["f0"]) < 0.4
    assert pattern(r) == {"phone": True, "f0": True, "speaker": True}
    assert r["speakers"] == 4 and r["held_out_utterances"] == 12 and r["test_utterances"] == len(test)


def test_a_codec_that_carries_nothing_scores_near_chance(data):
    train, test, table = data
    r = probe_codes(Oracle(table, informative=False), train, test, seed=0)
    chance = r["chance"]
    assert 0 < chance["phone"] < 0.5 and chance["f0"] == 0.0 and chance["speaker"] == pytest.approx(0.25)
    for group, row in r["probes"].items():
        assert row["phone"] < chance["phone"] + 0.2, (group, row)
        assert abs(row["f0"]) < 0.4, (group, row)


def test_probes_need_both_sides():
    with pytest.raises(ValueError, match="train and test"):
        probe_codes(Oracle({}), [], examples([0], 1, 0))
