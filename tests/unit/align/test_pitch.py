"""F0/UV on the 80 frames/s grid and per-speaker log-F0 normalisation, on tones of known pitch."""
from __future__ import annotations

import numpy as np
import pytest

from ns3.audio import SAMPLE_RATE, num_frames
from ns3.data.pitch import PitchStatsAccumulator, SpeakerPitchStats, extract_pitch, normalise_log_f0, speaker_stats


def tone(f0: float, seconds: float, silence: float = 0.0, vibrato: float = 0.0) -> np.ndarray:
    """Harmonic tone (like a voiced source), optionally with +-``vibrato`` relative 3 Hz pitch
    modulation, followed by ``silence`` seconds of silence."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    freq = f0 * (1 + vibrato * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.3
    return np.concatenate([x, np.zeros(int(silence * SAMPLE_RATE))]).astype(np.float32)


@pytest.mark.parametrize("method", ["dio", "harvest"])
@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_known_pitch_and_voicing(method, f0):
    x = tone(f0, 0.6, silence=0.3)
    tr = extract_pitch(x, method=method)
    assert len(tr.f0) == len(tr.uv) == num_frames(len(x))
    voiced = tr.f0[10:40]  # well inside the tone (frames 0..48)
    assert np.all(tr.uv[10:40] == 1)
    assert np.median(voiced) == pytest.approx(f0, rel=0.03)
    assert np.all(tr.uv[-15:] == 0) and np.all(tr.f0[-15:] == 0)
    assert tr.log_f0[20] == pytest.approx(np.log(tr.f0[20]))


def test_odd_lengths_are_trimmed_or_padded_to_the_grid():
    for n in (1, 199, 201, 3333):
        x = tone(150.0, 1.0)[:n]
        assert len(extract_pitch(x).f0) == num_frames(n)


def test_per_speaker_normalisation(tmp_path):
    low, high = extract_pitch(tone(100.0, 1.0, vibrato=0.1)), extract_pitch(tone(200.0, 1.0, vibrato=0.1))
    stats = speaker_stats([("a", low), ("b", high)])
    assert stats.get("a")[0] == pytest.approx(np.log(100.0), abs=0.03)
    assert speaker_stats([("c", extract_pitch(tone(150.0, 0.5)))]).get("c")[1] == 0.05  # monotone: std floor
    assert stats.get("b")[0] == pytest.approx(np.log(200.0), abs=0.03)
    # each speaker's own register maps to ~0; an unseen speaker uses the global mean (between them)
    for spk, tr in (("a", low), ("b", high)):
        z = normalise_log_f0(tr, *stats.get(spk))[tr.uv.astype(bool)]
        assert abs(z.mean()) < 1e-3 and z.std() == pytest.approx(1.0, rel=1e-3)
        assert stats.get(spk)[1] == pytest.approx(0.07, rel=0.15)  # log(1 +- 0.1) sine: std ~ 0.1/sqrt(2)
    assert np.log(100) < stats.get("unseen")[0] < np.log(200)
    back = SpeakerPitchStats.load(stats.save(tmp_path / "s.json"))
    assert back.to_json() == stats.to_json()
    # unvoiced frames stay exactly 0
    silent = extract_pitch(tone(150.0, 0.3, silence=0.3))
    assert np.all(normalise_log_f0(silent, *stats.get("a"))[silent.uv == 0] == 0)


def test_accumulators_merge_like_one_pass():
    a, b, whole = PitchStatsAccumulator(), PitchStatsAccumulator(), PitchStatsAccumulator()
    t1, t2 = extract_pitch(tone(120.0, 0.5)), extract_pitch(tone(180.0, 0.5))
    a.add("s", t1), b.add("s", t2), whole.add("s", t1), whole.add("s", t2)
    a.merge(b)
    assert a.finish().get("s") == pytest.approx(whole.finish().get("s"))


def test_no_voiced_frames_is_a_clear_error():
    acc = PitchStatsAccumulator()
    acc.add("s", extract_pitch(np.zeros(8000, np.float32)))
    with pytest.raises(ValueError, match="no voiced frames"):
        acc.finish()


def test_wrong_sample_rate_rejected():
    with pytest.raises(ValueError, match="resample"):
        extract_pitch(tone(100.0, 0.2), sample_rate=22050)
