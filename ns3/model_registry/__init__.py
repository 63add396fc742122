"""The MLflow model registry of the pipeline's models.

- ``train_codec`` registers the codec checkpoint (registered model ``registry.codec_model``) and
  ``train_diffusion`` the TTS model (``registry.tts_model``: diffusion + the codec it was trained on + the
  aligner its prompts need), each as a pyfunc version logged in the stage run (``store``, ``pyfunc``);
- ``evaluate_codec`` / ``evaluate_tts`` then decide the version's alias (``champion`` or ``challenger``) by the
  rules in ``registry.*_criteria`` against the champion's scores on the same test set (``promotion``: a pure
  function; ``store.promote``: the MLflow part);
- ``models:/<name>@champion`` works wherever a command takes a checkpoint (``resolve``).
Importing this package does not import MLflow; the functions that need it import it when called.
"""
from ns3.model_registry.promotion import CHALLENGER, CHAMPION, RULES, Check, Promotion, Scores, decide
from ns3.model_registry.resolve import (ALIGN, CODEC, DIFFUSION, ModelFiles, is_model_uri, resolve_checkpoint,
                                        resolve_model)
from ns3.model_registry.store import (CODEC_HASH_TAG, DIFFUSION_HASH_TAG, RegisteredVersion, find_version, promote,
                                      promote_evaluated, register_codec, register_tts)

__all__ = [
    "ALIGN", "CHALLENGER", "CHAMPION", "CODEC", "CODEC_HASH_TAG", "DIFFUSION", "DIFFUSION_HASH_TAG", "RULES", "Check",
    "ModelFiles", "Promotion", "RegisteredVersion", "Scores", "decide", "find_version", "is_model_uri", "promote",
    "promote_evaluated", "register_codec", "register_tts", "resolve_checkpoint", "resolve_model",
]
