"""Run with tritonclient's own venv (test_http_tritonclient.py): tritonclient.http talks to
roiclass's REST port as to Triton's, with nothing roiclass-specific, and writes what it got.

usage: tritonclient_http_check.py HOST:PORT MODEL DATA_DIR
DATA_DIR holds chelsea.npy, rois.npy, chelsea.png, tensors.npy (the model's input), and
receives results.npz; the last stdout line is a JSON summary.
"""
import json
import sys
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, model, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
client = httpclient.InferenceServerClient(url=url)
image = np.load(folder / "chelsea.npy")
rois = np.load(folder / "rois.npy")
png = (folder / "chelsea.png").read_bytes()
tensors = np.load(folder / "tensors.npy")
summary, arrays = {}, {}


def tensor(name, array, datatype, binary=True):
    t = httpclient.InferInput(name, list(array.shape), datatype)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


def probabilities(binary=True, class_count=0):
    return [httpclient.InferRequestedOutput("PROBABILITIES", binary_data=binary, class_count=class_count)]


def status(call):
    try:
        call()
    except InferenceServerException as exc:
        return {"status": exc.status(), "message": exc.message()}
    return {"status": "OK", "message": ""}


summary["live"] = client.is_server_live()
summary["ready"] = client.is_server_ready()
summary["model_ready"] = client.is_model_ready(model)
summary["unknown_model_ready"] = client.is_model_ready("no_such_model")
summary["server_metadata"] = client.get_server_metadata()
summary["model_metadata"] = client.get_model_metadata(model)
summary["model_config"] = client.get_model_config(model)
before = client.get_inference_statistics(model)["model_stats"][0]

# Binary tensors both ways, then the same request in JSON both ways.
reply = client.infer(model, [tensor("IMAGE", image, "UINT8"), tensor("ROIS", rois, "FP32")],
                     outputs=probabilities(), request_id="b1")
arrays["image_rois"] = reply.as_numpy("PROBABILITIES")
summary["request_id"] = reply.get_response()["id"]
reply = client.infer(model, [tensor("IMAGE", image, "UINT8", False), tensor("ROIS", rois, "FP32", False)],
                     outputs=probabilities(binary=False))
arrays["image_rois_json"] = reply.as_numpy("PROBABILITIES")
encoded = tensor("IMAGE_ENCODED", np.array([png], dtype=np.object_), "BYTES")
arrays["encoded"] = client.infer(model, [encoded], outputs=probabilities()).as_numpy("PROBABILITIES")
top5 = client.infer(model, [tensor("IMAGE", image, "UINT8"), tensor("ROIS", rois, "FP32")],
                    outputs=probabilities(binary=False, class_count=5)).as_numpy("PROBABILITIES")
summary["top5"] = [[s.decode() if isinstance(s, bytes) else str(s) for s in row] for row in top5]
raw_name = next(t["name"] for t in summary["model_metadata"]["inputs"]
                if t["name"] not in ("IMAGE", "IMAGE_ENCODED", "ROIS", "ALIGNMENT"))
arrays["raw_tensors"] = client.infer(model, [tensor(raw_name, tensors, "FP32")],
                                     outputs=probabilities()).as_numpy("PROBABILITIES")
summary["stats"] = [before, client.get_inference_statistics(model)["model_stats"][0]]

summary["errors"] = {
    "dtype": status(lambda: client.infer(model, [tensor("IMAGE", image.astype(np.float32), "FP32")])),
    "shape": status(lambda: client.infer(model, [tensor("IMAGE", image[:, :, 0].copy(), "UINT8")])),
    "missing": status(lambda: client.infer(model, [tensor("ROIS", rois, "FP32")])),
    "unknown_model": status(lambda: client.infer("no_such_model", [tensor("IMAGE", image, "UINT8")])),
}

client.unload_model(model)
summary["after_unload"] = {"model_ready": client.is_model_ready(model),
                           "index": client.get_model_repository_index()}
client.load_model(model)
summary["after_load"] = {"model_ready": client.is_model_ready(model),
                         "index": client.get_model_repository_index()}
client.close()
np.savez(folder / "results.npz", **arrays)
print(json.dumps(summary))
