"""A KServe Python model server for one ONNX classifier, as a KServe user writes it.

Runs in its own virtualenv (bench/.kserve-venv, made by bench/kserve_env.py),
so it imports nothing from roiclass. Open Inference Protocol (v2) over gRPC:

  inputs:  "image" UINT8 [H, W, 3] (RGB), "rois" FP32 [N, 5] (x, y, w, h, angle:
           top-left corner, size, clockwise degrees, as in roiclass)
  outputs: "class_index" INT64 [N, top_k], "score" FP32 [N, top_k]

preprocess: Pillow crop + resize (one affine transform per rotated ROI, the
Pillow way), normalize with numpy; predict: onnxruntime; postprocess:
softmax + top-k. Plain sync methods, like KServe's custom-model examples.

    python kserve_server.py --spec spec.json --grpc_port P --http_port H
"""
from __future__ import annotations

import argparse
import json
import logging
import math

import numpy as np
import onnxruntime as ort
from PIL import Image

import kserve
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

log = logging.getLogger(__name__)


class RoiClassifier(Model):
    def __init__(self, name: str, spec: dict):
        super().__init__(name)
        self.spec = spec
        self.session: ort.InferenceSession | None = None
        self.load()

    def load(self) -> bool:
        self.session = ort.InferenceSession(self.spec["onnx_path"], providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.mean = np.asarray(self.spec["mean"], np.float32)
        self.inv_std = 1.0 / np.asarray(self.spec["std"], np.float32)
        self.ready = True
        return self.ready

    def _crop(self, image: Image.Image, roi) -> Image.Image:
        """The rotated ROI resized to the model input: one affine warp."""
        x, y, w, h, angle = (float(v) for v in roi)
        out_w, out_h = self.spec["width"], self.spec["height"]
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        sx, sy = w / out_w, h / out_h
        # Output pixel (u, v) samples origin + R(angle) @ (u * sx, v * sy).
        data = (c * sx, -s * sy, x, s * sx, c * sy, y)
        return image.transform((out_w, out_h), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)

    def preprocess(self, payload: InferRequest, headers=None) -> np.ndarray:
        inputs = {inp.name: inp for inp in payload.inputs}
        pixels = inputs["image"].as_numpy()
        rois = inputs["rois"].as_numpy().reshape(-1, 5)
        image = Image.fromarray(pixels, "RGB")
        crops = [np.asarray(self._crop(image, roi), np.float32) for roi in rois]
        batch = (np.stack(crops) - self.mean) * self.inv_std
        if self.spec["layout"] == "NCHW":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=np.float32)

    def predict(self, payload: np.ndarray, headers=None) -> np.ndarray:
        return self.session.run(None, {self.input_name: payload})[0]

    def postprocess(self, result: np.ndarray, headers=None, response_headers=None) -> InferResponse:
        logits = result.astype(np.float32)
        if self.spec["softmax"]:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
        else:
            probs = logits
        k = min(self.spec["top_k"], probs.shape[1])
        top = np.argsort(-probs, axis=1)[:, :k]
        scores = np.take_along_axis(probs, top, axis=1).astype(np.float32)
        outputs = [
            InferOutput("class_index", list(top.shape), "INT64", top.astype(np.int64)),
            InferOutput("score", list(scores.shape), "FP32", scores),
        ]
        return InferResponse(response_id="", model_name=self.name, infer_outputs=outputs)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--spec", required=True, help="JSON file: onnx_path, width, height, layout, mean, std, ...")
    args, _ = parser.parse_known_args()
    with open(args.spec) as f:
        spec = json.load(f)
    model = RoiClassifier(args.model_name, spec)
    # Per-request latency log lines off: they would only slow KServe down.
    ModelServer(http_port=args.http_port, grpc_port=args.grpc_port,
                enable_latency_logging=False).start([model])


if __name__ == "__main__":
    main()
