import numpy as np
import pytest
from pystoi import stoi

from evaluation.baselines import CODEC2, OPUS, ClassicCodec, classic_codecs
from ns3.audio import SAMPLE_RATE, resample
from ns3.text.espeak import Voice, synthesize


@pytest.fixture(scope="module")
def speech():
    s = synthesize("The careful farmer carried a wooden basket across the bridge.", Voice("en-us"))
    return resample(s.audio, s.sample_rate, SAMPLE_RATE)


@pytest.mark.parametrize("codec", [OPUS, CODEC2], ids=lambda c: c.name)
def test_roundtrip_keeps_length_and_intelligibility(codec, speech):
    if codec.unavailable_reason():
        pytest.skip(codec.unavailable_reason())
    out = codec.roundtrip(speech)
    assert out.shape == speech.shape and out.dtype == np.float32
    assert not np.array_equal(out, speech)  # it really went through a lossy codec
    score = stoi(speech, out, SAMPLE_RATE)
    assert 0.5 < score < 0.999


def test_missing_binary_is_reported():
    fake = ClassicCodec("opus-6k", 6.0, ("opusenc-not-installed",))
    assert "not found on PATH" in fake.unavailable_reason()


def test_classic_codecs_names():
    assert [c.name for c in classic_codecs()] == ["opus-6k", "codec2-3.2k"]
