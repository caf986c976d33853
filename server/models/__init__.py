"""Model sources (repository folders, config.toml, Esri .emd/.dlpk, imgproxy
flags, bare .onnx) -> ModelSpec, and the ModelManager that keeps the engine
in step with them."""
from .errors import ModelConfigError
from .imgproxy import spec_from_imgproxy
from .manager import ModelManager
from .repository import LoadFailure, builtin_repository, load_model_path, load_repository
from .spec import HeatmapDefaults, ModelSpec

__all__ = [
    "HeatmapDefaults",
    "LoadFailure",
    "ModelConfigError",
    "ModelManager",
    "ModelSpec",
    "builtin_repository",
    "load_model_path",
    "load_repository",
    "spec_from_imgproxy",
]
