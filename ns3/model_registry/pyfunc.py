"""The registered models as MLflow pyfuncs: our own checkpoint files are the model's artifacts.

The checkpoints keep their own format (hparams inside, strict loads), so the pyfunc only names the files
and offers one real prediction each:
- ``CodecModel``: 16 kHz waveforms -> their resynthesis (encode, then decode; trimmed to the input length);
- ``TTSModel``: text + a speech prompt (+ its transcript) -> zero-shot TTS waveform, with the sampler settings
  the model was registered with.
Both need the ``ns3`` package where they are loaded (``mlflow.pyfunc.load_model``). The model code logged
with each version is ``pyfunc_codec.py`` / ``pyfunc_tts.py`` (models from code: nothing is pickled).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from mlflow.pyfunc import PythonModel
from pydantic import BaseModel

from ns3.model_registry.resolve import ALIGN, CODEC, DIFFUSION


class CodecModel(PythonModel):
    def load_context(self, context) -> None:
        from ns3.codec.checkpoint import load_codec

        self.codec = load_codec(context.artifacts[CODEC])

    def predict(self, context, model_input: list[list[float]], params=None) -> list[list[float]]:
        out = []
        with torch.inference_mode():
            for wav in model_input:
                x = torch.as_tensor(np.asarray(wav, np.float32))[None]
                enc = self.codec.encode(x)
                out.append(self.codec.decode(enc.codes, enc.timbre)[0, : x.shape[-1]].tolist())
        return out


class TTSInput(BaseModel):
    """One zero-shot TTS request: say ``text`` in the voice and manner of ``prompt_wav`` (16 kHz float)."""

    text: str
    prompt_wav: list[float]
    prompt_text: Optional[str] = None  # the prompt's transcript (None: its phones are recognised)


class TTSModel(PythonModel):
    def load_context(self, context) -> None:
        from ns3.diffusion.generate import GenerationConfig
        from ns3.tts.engine import TTSEngine

        cfg = context.model_config or {}
        self.engine = TTSEngine.load(context.artifacts[CODEC], context.artifacts[DIFFUSION], context.artifacts[ALIGN],
                                     cfg.get("voice", "en-us"))
        self.config = GenerationConfig(**cfg.get("generation", {}))
        self.seed = int(cfg.get("seed", 0))

    def predict(self, context, model_input: list[TTSInput], params=None) -> list[list[float]]:
        from ns3.tts.engine import TTSRequest

        out = []
        for i, item in enumerate(model_input):
            prompt = self.engine.prompts([np.asarray(item.prompt_wav, np.float32)], texts=[item.prompt_text])[0]
            # one request per call keeps item i's output independent of what else is in the batch
            s = self.engine.synthesize([TTSRequest(prompt, text=item.text)], self.config, self.seed + i)[0]
            out.append(s.wav.tolist())
        return out
