"""Run with tritonclient's own venv (tests/integration/oip/test_grpc_tritonclient.py):
talks to roiclass as to Triton, with nothing roiclass-specific, and writes what it got.

usage: tritonclient_grpc_check.py ADDRESS MODEL DATA_DIR
DATA_DIR holds chelsea.npy, rois.npy, chelsea.png, tensors.npy (the model's input), and
receives results.npz; the last stdout line is a JSON summary.
"""
import json
import queue
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

address, model, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
client = grpcclient.InferenceServerClient(url=address)
image = np.load(folder / "chelsea.npy")
rois = np.load(folder / "rois.npy")
png = (folder / "chelsea.png").read_bytes()
tensors = np.load(folder / "tensors.npy")
summary, arrays = {}, {}


def tensor(name, array, datatype):
    t = grpcclient.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array)
    return t


def image_inputs(r=rois):
    return [tensor("IMAGE", image, "UINT8"), tensor("ROIS", r, "FP32")]


def status(call):
    try:
        call()
    except InferenceServerException as exc:
        return {"status": exc.status(), "message": exc.message()}
    return {"status": "OK", "message": ""}


# Readiness, metadata, config
summary["live"] = client.is_server_live()
summary["ready"] = client.is_server_ready()
summary["model_ready"] = client.is_model_ready(model)
summary["server_metadata"] = client.get_server_metadata(as_json=True)
summary["model_metadata"] = client.get_model_metadata(model, as_json=True)
summary["model_config"] = client.get_model_config(model, as_json=True)["config"]

# ModelInfer: raw IMAGE + ROIS, IMAGE_ENCODED, the classification extension, raw tensors
stats_before = client.get_inference_statistics(model, as_json=True)
result = client.infer(model, image_inputs(), outputs=[grpcclient.InferRequestedOutput("PROBABILITIES")])
arrays["image_rois"] = result.as_numpy("PROBABILITIES")
encoded = tensor("IMAGE_ENCODED", np.array([png], dtype=np.object_), "BYTES")
arrays["encoded"] = client.infer(model, [encoded]).as_numpy("PROBABILITIES")
top5 = client.infer(model, image_inputs(), outputs=[grpcclient.InferRequestedOutput("PROBABILITIES", class_count=5)])
summary["top5"] = [[s.decode() for s in row] for row in top5.as_numpy("PROBABILITIES")]
arrays["raw_tensors"] = client.infer(model, [tensor(summary["model_metadata"]["inputs"][-1]["name"], tensors, "FP32")]
                                     ).as_numpy("PROBABILITIES")
stats_after = client.get_inference_statistics(model, as_json=True)
view = model + ".tensors"  # the raw-tensor mode alone
summary["tensors_view"] = client.get_model_metadata(view, as_json=True)
arrays["tensors_view"] = client.infer(view, [tensor(summary["tensors_view"]["inputs"][0]["name"], tensors, "FP32")]
                                      ).as_numpy("PROBABILITIES")
summary["stats"] = [stats_before["model_stats"][0], stats_after["model_stats"][0]]

# ModelStreamInfer: one response per request, in order; the bad one fails alone
responses = queue.Queue()
client.start_stream(callback=lambda result, error: responses.put((result, error)))
sent = []
for i in range(6):
    request_id = f"frame-{i}"
    inputs = image_inputs(rois[i % len(rois):][:1]) if i != 3 else [tensor("ROIS", rois, "FP32")]
    client.async_stream_infer(model, inputs, request_id=request_id)
    sent.append(request_id)
stream = []
for i in range(len(sent)):
    result, error = responses.get(timeout=60)
    if error is None:
        stream.append({"id": result.get_response().id, "error": ""})
        arrays[f"stream_{i}"] = result.as_numpy("PROBABILITIES")
    else:
        stream.append({"id": "", "error": str(error)})
client.stop_stream()
summary["stream"] = {"sent": sent, "got": stream}

# Bad tensors
summary["errors"] = {
    "dtype": status(lambda: client.infer(model, [tensor("IMAGE", image.astype(np.float32), "FP32")])),
    "shape": status(lambda: client.infer(model, [tensor("IMAGE", image[0], "UINT8")])),
    "missing": status(lambda: client.infer(model, [tensor("ROIS", rois, "FP32")])),
    "unknown_model": status(lambda: client.infer("no_such_model", image_inputs())),
    "unknown_model_ready": status(lambda: client.is_model_ready("no_such_model")),
}

# Repository: unload / load change readiness (last: the model comes back)
client.unload_model(model)
summary["after_unload"] = {"model_ready": client.is_model_ready(model),
                           "index": client.get_model_repository_index(as_json=True).get("models", []),
                           "infer": status(lambda: client.infer(model, image_inputs()))}
client.load_model(model)
summary["after_load"] = {"model_ready": client.is_model_ready(model),
                         "index": client.get_model_repository_index(as_json=True).get("models", [])}

np.savez(folder / "results.npz", **arrays)
print(json.dumps(summary))
