"""params.yaml's codec knobs reach the modules: builders turn the config into FACodecHParams, the model builds it."""
import pytest

from ns3.builders import codec_hparams, codec_loss_weights
from ns3.codec import FACodec
from ns3.codec.quantizer import FactorizedVQ
from ns3.config import load_params
from tests.helpers import PROJECT


def _codec(**overrides) -> FACodec:
    p = load_params(PROJECT / "params.yaml", overrides={f"codec.model.{k}": v for k, v in overrides.items()})
    return FACodec(codec_hparams(p.codec.model, num_phones=10, num_speakers=4)), p


@pytest.mark.parametrize("on", [False, True])
def test_prosody_and_content_grl_heads_follow_the_config(on):
    model, p = _codec(grl_prosody_phone=on, grl_content_f0=on, use_detail=False)
    assert (model.heads.grl_prosody_phone is not None) is on
    assert (model.heads.grl_content_f0 is not None) is on
    # Without detail codebooks these heads are the only GRL phone / F0 losses: their weights are kept only when on.
    grl = {"codec/grl_phone", "codec/grl_f0", "codec/grl_uv"}
    assert set(codec_loss_weights(p.codec.train.loss_weights, model.hp)) & grl == (grl if on else set())


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.95])
def test_code_restart_decay_reaches_every_codebook(decay):
    model, _ = _codec(codebook_restart_decay=decay)
    decays = {m.restart_decay for m in model.modules() if isinstance(m, FactorizedVQ)}
    assert decays == {decay}
