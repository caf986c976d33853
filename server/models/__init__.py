"""Model sources (repository folders, config.toml, Esri .emd/.dlpk, imgproxy
flags, bare .onnx) -> ModelSpec. The engine imports this package; the
ModelManager that keeps the engine in step with the sources is
roiclass.server.manager, above both."""
from .errors import ModelConfigError
from .imgproxy import spec_from_imgproxy
from .repository import LoadFailure, builtin_repository, load_model_path, load_repository
from .spec import HeatmapDefaults, ModelSpec

__all__ = [
    "HeatmapDefaults",
    "LoadFailure",
    "ModelConfigError",
    "ModelSpec",
    "builtin_repository",
    "load_model_path",
    "load_repository",
    "spec_from_imgproxy",
]
