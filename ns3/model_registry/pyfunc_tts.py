"""Model code of a registered TTS version (MLflow models from code: copied into every version)."""
from mlflow.models import set_model

from ns3.model_registry.pyfunc import TTSModel

set_model(TTSModel())
