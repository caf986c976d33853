"""What the protocol says about models, as its JSON shapes (the gRPC messages
are filled from the same dicts): metadata, Triton's model config, the
repository index. One table, TENSORS, names each model's tensors."""
from __future__ import annotations

from roiclass.server.engine.devices import CPU
from roiclass.server.oip.inputs import ALIGNMENT, IMAGE, IMAGE_ENCODED, ROIS
from roiclass.server.oip.outputs import PROBABILITIES
from roiclass.server.states import ModelState

PLATFORM = "onnxruntime_onnx"
BACKEND = "onnxruntime"
# name -> (datatype, dims without the batch dimension); the model's own input and
# PROBABILITIES' classes are added per model. Every input is optional: a request
# sends IMAGE or IMAGE_ENCODED (with or without ROIS, ALIGNMENT) or the model input.
TENSORS = {
    IMAGE: ("UINT8", (-1, -1, -1)),  # [H, W, C], batched [B, H, W, C]
    IMAGE_ENCODED: ("BYTES", (1,)),  # [B, 1] or [B]: PNG/JPEG files
    # Batched, each image its ROIs: [B, N, 5] (unbatched [N, 5] is taken too). N is free
    # here, so perf_analyzer sends several ROIs per image from a JSON file.
    ROIS: ("FP32", (-1, 5)),  # x, y, width, height, angle
    ALIGNMENT: ("FP32", (-1, 4)),  # x, y, angle, scale
}
# Model states -> the repository extension's state names (Triton's).
REPOSITORY_STATES = {ModelState.READY: "READY", ModelState.LOADING: "LOADING",
                     ModelState.FAILED: "UNAVAILABLE", ModelState.UNLOADED: "UNAVAILABLE"}


def _inputs(model, tensors_only: bool = False) -> list[tuple[str, str, tuple[int, ...]]]:
    raw = [(model.io.input_name, "FP16" if model.dtype.itemsize == 2 else "FP32", tuple(model.item_shape))]
    return raw if tensors_only else [(name, dt, dims) for name, (dt, dims) in TENSORS.items()] + raw


def _outputs(model) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(PROBABILITIES, "FP32", (model.num_classes,))]


def metadata(model, versions: list[str], name: str, tensors_only: bool = False) -> dict:
    """The protocol's model metadata; shapes with the batch dimension (-1) first.
    name: as asked (the model's, or its raw-tensor view's: core.TENSORS_VIEW)."""
    def tensor(tensor_name, dt, dims):
        return {"name": tensor_name, "datatype": dt, "shape": [-1, *dims]}
    return {
        "name": name, "versions": versions, "platform": PLATFORM,
        "inputs": [tensor(*t) for t in _inputs(model, tensors_only)],
        "outputs": [tensor(*t) for t in _outputs(model)],
    }


def config(model, name: str, tensors_only: bool = False) -> dict:
    """Triton's model config (its JSON form): what perf_analyzer and tritonclient read."""
    spec = model.spec
    fmt = {"NCHW": "FORMAT_NCHW", "NHWC": "FORMAT_NHWC"}.get(spec.layout, "FORMAT_NONE")
    inputs = []
    for tensor, dt, dims in _inputs(model, tensors_only):
        entry = {"name": tensor, "data_type": f"TYPE_{'STRING' if dt == 'BYTES' else dt}",
                 "dims": list(dims), "optional": not tensors_only}
        if tensor == model.io.input_name:
            entry["format"] = fmt
        inputs.append(entry)
    kinds = {}
    for inst in model.instances:
        kind = "KIND_CPU" if inst.device == CPU else "KIND_GPU"
        kinds[kind] = kinds.get(kind, 0) + 1
    return {
        "name": name, "platform": PLATFORM, "backend": BACKEND,
        "max_batch_size": model.model_max_batch,
        "input": inputs,
        "output": [{"name": n, "data_type": f"TYPE_{dt}", "dims": list(d)} for n, dt, d in _outputs(model)],
        "dynamic_batching": {"preferred_batch_size": [model.max_batch],
                             "max_queue_delay_microseconds": spec.max_queue_delay_us},
        "instance_group": [{"name": f"{model.name}_{kind[5:].lower()}", "kind": kind, "count": n}
                           for kind, n in kinds.items()],
        "default_model_filename": spec.onnx_path.name,
        "parameters": {"classes": {"string_value": str(model.num_classes)},
                       "version": {"string_value": model.version}},
    }


def index_entry(status) -> dict:
    reason = status.reason or ("unloaded" if status.state == ModelState.UNLOADED else "")
    return {"name": status.name, "version": status.version,
            "state": REPOSITORY_STATES.get(status.state, "UNAVAILABLE"), "reason": reason}
