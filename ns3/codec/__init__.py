"""FACodec: factorized neural speech codec (prosody / content / detail codes + timbre vector)."""
from ns3.codec.checkpoint import load_codec, save_codec
from ns3.codec.codes import Encoded, FactorCodes, load_codes, save_codes
from ns3.codec.hparams import FACodecHParams
from ns3.codec.model import CodecOutput, FACodec

__all__ = [
    "CodecOutput", "Encoded", "FACodec", "FACodecHParams", "FactorCodes",
    "load_codec", "load_codes", "save_codec", "save_codes",
]
