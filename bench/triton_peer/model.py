"""The Triton peer: EfficientNet-Lite0 behind Triton's Python backend, with
the preprocessing a careful Triton user writes by hand.

Inputs (batch dimension first, max_batch_size > 0 so that Triton's dynamic
batcher can merge requests): IMAGE UINT8 [1, H, W, 3] (RGB) and ROIS FP32
[1, N, 5] rows (x, y, width, height, angle) in roiclass's v1 geometry: the
rectangle's top-left corner, rotated clockwise by `angle` degrees about it.
Output PROBABILITIES FP32 [1, N, classes] (softmax of the logits).

Per ROI: one cv2.warpAffine straight into the model's input size (the
rotation about the corner from cv2.getRotationMatrix2D, then the crop's
shift and scale folded into the same 2x3 matrix), then (pixel - mean) / std
and HWC -> CHW. Every ROI of every request Triton hands to one execute()
call goes through ONNX Runtime in one batch (CPU provider, its default
threads, spinning off as roiclass has it by default).

The model's facts (ONNX path, input size, mean, std) come from the config's
parameters, which bench/oip_peer.py writes from roiclass's model config.
"""
import json
import os
import sys

# The backend's stub starts Python in isolated mode, which ignores PYTHONPATH:
# bench/oip_peer.py points it at bench/.perf-venv (numpy 1.26, cv2, ONNX Runtime).
sys.path[:0] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
try:
    import triton_python_backend_utils as pb_utils  # noqa: E402
except ImportError:  # outside Triton: tests import the preprocessing below
    pb_utils = None


def _shift(t):
    return np.array([[1.0, 0.0, t], [0.0, 1.0, t], [0.0, 0.0, 1.0]])


def roi_matrix(roi, width, height):
    """2x3 matrix mapping image pixels onto the (width x height) model input."""
    x, y, w, h, angle = (float(v) for v in roi)
    # cv2's positive angle turns the image counter-clockwise: that undoes the
    # ROI's clockwise turn and leaves it axis-aligned with its corner at (x, y).
    m = np.vstack([cv2.getRotationMatrix2D((x, y), angle, 1.0), (0.0, 0.0, 1.0)])
    crop = np.array([[width / w, 0.0, -x * width / w], [0.0, height / h, -y * height / h], [0.0, 0.0, 1.0]])
    # The geometry is in continuous coordinates ((0, 0) = the first pixel's
    # corner); cv2 indexes pixel centres: shift by half a pixel on both sides.
    return (_shift(-0.5) @ crop @ m @ _shift(0.5))[:2]


def crops(image, rois, width, height, mean, inv_std, out):
    """Each ROI of the HWC RGB image -> out[k] (CHW float32, normalized)."""
    for k, roi in enumerate(rois):
        crop = cv2.warpAffine(image, roi_matrix(roi, width, height), (width, height),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out[k] = ((crop.astype(np.float32) - mean) * inv_std).transpose(2, 0, 1)


class TritonPythonModel:
    def initialize(self, args):
        if int(np.__version__.split(".")[0]) >= 2:
            # The stub reads numpy 1's array layout: with numpy 2 outputs would go out empty.
            raise RuntimeError(f"numpy {np.__version__} from {np.__file__}: the Python backend needs numpy < 2")
        config = json.loads(args["model_config"])
        p = {k: v["string_value"] for k, v in config["parameters"].items()}
        self.width, self.height = int(p["width"]), int(p["height"])
        self.mean = np.array(json.loads(p["mean"]), np.float32)
        self.inv_std = 1.0 / np.array(json.loads(p["std"]), np.float32)
        opts = ort.SessionOptions()
        # As roiclass serves by default: no busy-waiting ORT threads on a shared host.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if int(p.get("intra_op_threads", "0")) > 0:  # several instances share the cores
            opts.intra_op_num_threads = int(p["intra_op_threads"])
        self.session = ort.InferenceSession(p["onnx_path"], opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def execute(self, requests):
        inputs, counts, responses = [], [], [None] * len(requests)
        for i, request in enumerate(requests):
            image = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
            rois = pb_utils.get_input_tensor_by_name(request, "ROIS").as_numpy()
            if image.ndim != 4 or image.shape[0] != 1 or image.shape[3] != 3 or rois.ndim != 3 or rois.shape[2] != 5:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(
                    f"IMAGE must be [1, H, W, 3] and ROIS [1, N, 5], got {image.shape} and {rois.shape}"))
                counts.append(0)
                continue
            batch = np.empty((rois.shape[1], 3, self.height, self.width), np.float32)
            crops(np.ascontiguousarray(image[0]), rois[0], self.width, self.height, self.mean, self.inv_std, batch)
            inputs.append(batch)
            counts.append(len(batch))
        if inputs:
            logits = self.session.run(None, {self.input_name: np.concatenate(inputs)})[0]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
        start = 0
        for i, n in enumerate(counts):
            if responses[i] is None:
                out = pb_utils.Tensor("PROBABILITIES", probs[start:start + n][None].astype(np.float32))
                responses[i] = pb_utils.InferenceResponse(output_tensors=[out])
                start += n
        return responses
