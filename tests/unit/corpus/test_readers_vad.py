import numpy as np
import pytest
import soundfile as sf

from ns3.corpus.vad import (
    FrameEnergy, Region, energy_vad, frame_energy, frame_energy_file, merge_regions, normalize_regions,
)


def spans(regions):
    return [(r.start, r.end) for r in regions]


def assert_close(found, truth, start_tol, end_tol):
    assert len(found) == len(truth), f"found {spans(found)}, expected {truth}"
    for r, (s, e) in zip(found, truth):
        assert abs(r.start - s) <= start_tol and abs(r.end - e) <= end_tol, f"{(r.start, r.end)} vs {(s, e)}"


def test_energy_vad_finds_known_speech_within_50ms(signals):
    energy = frame_energy(signals.speech_like(), signals.sr)
    assert energy.db.shape == (int(signals.seconds * 100),)
    regions = energy_vad(energy, hangover=0.0)
    # the 0.1 s dip is bridged, the 50 ms click dropped, the 12 dB quieter phrase still found
    assert_close(regions, signals.expected_regions, 0.05, 0.05)


def test_hangover_extends_ends_only(signals):
    energy = frame_energy(signals.speech_like(), signals.sr)
    base, hung = energy_vad(energy, hangover=0.0), energy_vad(energy, hangover=0.2)
    assert [r.start for r in hung] == [r.start for r in base]
    assert [round(h.end - b.end, 6) for h, b in zip(hung, base)] == [0.2, 0.2, 0.2]


def test_threshold_floor_and_min_speech_matter(signals):
    sr = signals.sr
    energy = frame_energy(signals.speech_like(), sr)
    # the quieter phrase sits about 12 dB down: a 6 dB threshold loses it
    assert len(energy_vad(energy, threshold_db=-6.0, hangover=0.0)) == 2
    # keeping clicks brings the 50 ms burst back as its own region
    with_clicks = energy_vad(energy, min_speech=0.0, hangover=0.0)
    assert (7.5, 7.55) in [(round(r.start, 2), round(r.end, 2)) for r in with_clicks]
    # digital silence and faint hum are not speech, whatever their level relative to their own max
    assert energy_vad(frame_energy(np.zeros(sr), sr)) == []
    assert energy_vad(frame_energy(np.full(sr, 1e-4), sr)) == []
    assert energy_vad(FrameEnergy(np.zeros(0), 0.01, 0.0)) == []


def test_streamed_file_energy_matches_in_memory(tmp_path, signals):
    sr = signals.sr
    audio = signals.speech_like(3.0037, spans=[(0.5, 2.0)])  # not a whole number of frames
    path = signals.write(tmp_path / "x.flac", audio)
    from_file = frame_energy_file(path, block_frames=7)  # many blocks, partial last frame
    in_memory = frame_energy(sf.read(path)[0], sr)
    assert from_file.db.shape == in_memory.db.shape == (301,)
    assert from_file.duration == pytest.approx(len(audio) / sr)
    np.testing.assert_allclose(from_file.db, in_memory.db, atol=1e-9)


def test_merge_cuts_only_at_silences_and_respects_max():
    regions = [Region(0.5, 3.0), Region(4.0, 6.5), Region(9.0, 12.0)]
    assert spans(merge_regions(regions, 5.0)) == spans(regions)  # 0.5..6.5 would be 6 s
    assert spans(merge_regions(regions, 7.0)) == [(0.5, 6.5), (9.0, 12.0)]
    assert spans(merge_regions(regions, 20.0)) == [(0.5, 12.0)]
    assert spans(merge_regions(regions, 20.0, max_gap=1.5)) == [(0.5, 6.5), (9.0, 12.0)]


def test_a_region_longer_than_max_is_split_evenly():
    segs = merge_regions([Region(1.0, 26.0)], 10.0)
    flat = [t for seg in spans(segs) for t in seg]
    assert flat == pytest.approx([1.0, 1 + 25 / 3, 1 + 25 / 3, 1 + 50 / 3, 1 + 50 / 3, 26.0])
    assert spans(merge_regions([Region(0.0, 10.0)], 10.0)) == [(0.0, 10.0)]  # exactly at the limit stays whole
    with pytest.raises(ValueError, match="max_duration"):
        merge_regions([], 0.0)


@pytest.mark.parametrize("seed", range(20))
def test_merge_invariants_on_random_regions(seed):
    rng = np.random.default_rng(seed)
    edges = np.cumsum(rng.exponential(2.0, size=2 * rng.integers(1, 30)))
    regions = [Region(float(s), float(e)) for s, e in edges.reshape(-1, 2)]
    max_duration = float(rng.uniform(0.5, 15.0))
    segs = merge_regions(regions, max_duration)
    assert all(0 < s.duration <= max_duration + 1e-9 for s in segs)
    assert all(a.end <= b.start for a, b in zip(segs, segs[1:]))
    # nothing of the speech is lost, and no segment reaches into silence outside the regions
    speech = sum(r.duration for r in regions)
    covered = sum(
        min(s.end, r.end) - max(s.start, r.start) for s in segs for r in regions if s.start < r.end and r.start < s.end
    )
    assert covered == pytest.approx(speech)
    starts, ends = {r.start for r in regions}, {r.end for r in regions}
    for s in segs:
        inside = [r for r in regions if r.start <= s.start < r.end]
        assert s.start in starts or (inside and inside[0].duration > max_duration)
        inside = [r for r in regions if r.start < s.end <= r.end]
        assert s.end in ends or (inside and inside[0].duration > max_duration)


def test_normalize_sorts_clips_and_merges_overlaps():
    raw = [Region(5.0, 7.0), Region(-1.0, 1.0), Region(0.5, 2.0), Region(9.0, 12.0), Region(3.0, 3.0), Region(20, 21)]
    assert spans(normalize_regions(raw, 10.0)) == [(0.0, 2.0), (5.0, 7.0), (9.0, 10.0)]
