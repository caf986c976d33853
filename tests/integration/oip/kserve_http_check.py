"""Run with the KServe client's own venv (test_http_kserve.py): KServe's InferenceRESTClient
(protocol v2) talks to roiclass's REST port as to any Open Inference Protocol server.

usage: kserve_http_check.py BASE_URL MODEL DATA_DIR   (chelsea.npy, rois.npy -> results.npz)
"""
import asyncio
import json
import sys
from pathlib import Path

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

base_url, model, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])


async def main() -> dict:
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60, retries=0))
    summary = {"live": await client.is_server_live(base_url), "ready": await client.is_server_ready(base_url),
               "model_ready": await client.is_model_ready(base_url, model)}
    arrays = {}
    for binary in (True, False):  # the binary-tensor extension, then JSON
        inputs = []
        for name, datatype, array in (("IMAGE", "UINT8", np.load(folder / "chelsea.npy")),
                                      ("ROIS", "FP32", np.load(folder / "rois.npy"))):
            t = InferInput(name, list(array.shape), datatype)
            t.set_data_from_numpy(array, binary_data=binary)
            inputs.append(t)
        request = InferRequest(model_name=model, infer_inputs=inputs, request_id=f"kserve-{binary}")
        response = await client.infer(base_url, request, model_name=model)
        (output,) = response.outputs
        summary[f"binary={binary}"] = {"name": output.name, "datatype": output.datatype,
                                       "shape": list(output.shape), "id": response.id}
        arrays[f"binary_{binary}"] = output.as_numpy()
    np.savez(folder / "results.npz", **arrays)
    await client.close()
    return summary


print(json.dumps(asyncio.run(main())))
