"""Run with the KServe client's own venv (test_grpc_kserve.py): KServe's
InferenceGRPCClient talks to roiclass as to any Open Inference Protocol server.

usage: kserve_grpc_check.py ADDRESS MODEL DATA_DIR   (chelsea.npy, rois.npy -> results.npz)
"""
import asyncio
import json
import sys
from pathlib import Path

import numpy as np
from kserve import InferenceGRPCClient, InferInput, InferRequest

address, model, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])


async def main() -> dict:
    client = InferenceGRPCClient(url=address, timeout=60)
    summary = {"live": await client.is_server_live(), "ready": await client.is_server_ready(),
               "model_ready": await client.is_model_ready(model)}
    inputs = []
    for name, datatype, array in (("IMAGE", "UINT8", np.load(folder / "chelsea.npy")),
                                  ("ROIS", "FP32", np.load(folder / "rois.npy"))):
        t = InferInput(name, list(array.shape), datatype)
        t.set_data_from_numpy(array, binary_data=True)
        inputs.append(t)
    response = await client.infer(InferRequest(model_name=model, infer_inputs=inputs, request_id="kserve-1"))
    (output,) = response.outputs
    summary["output"] = {"name": output.name, "datatype": output.datatype, "shape": list(output.shape)}
    summary["id"] = response.id
    np.savez(folder / "results.npz", probabilities=output.as_numpy())
    await client.close()
    return summary


print(json.dumps(asyncio.run(main())))
