"""POST /v1/classify: roiclass's own v1 API as JSON, for curl and an image file.

The body is one of
- the image file itself (PNG, JPEG, BMP, TIFF; any Content-Type but the two below);
- multipart/form-data with a part `image` (the file) and an optional part
  `request`: a v1 ClassifyObjectRequest in protobuf's JSON mapping without the
  image (`{"rois": [{"rect": {"origin": {"x": 10, "y": 20}, "width": 64,
  "height": 48, "angle": 15}, "id": "a"}], "top_k": 5}`);
- application/json: the whole ClassifyObjectRequest, the image as
  `{"image": {"encoded": "<base64>"}}`.
Query parameters model, model_version, top_k, min_confidence and request_id
set those fields too (the JSON wins where both give one).

The request becomes a real v1 ClassifyObjectRequest and runs through the
servicer's own `classify` (the same validation and engine path as gRPC), and
the answer is the v1 ClassifyObjectResponse with, per ROI and per class,
`class_id`, `name` and `confidence` (the names image-proxy users read).
"""
from __future__ import annotations

import json

from google.protobuf import json_format

from roiclass.server.errors import InvalidArgument
from roiclass.v1 import classifier_pb2 as pb

QUERY_FIELDS = ("model", "model_version", "top_k", "min_confidence", "request_id")
IMAGE_PART, REQUEST_PART = "image", "request"


def request_from_parts(query: dict[str, str], fields_json: bytes | str | None,
                       image: bytes | None) -> pb.ClassifyObjectRequest:
    """Query parameters, then the JSON fields, then the image file: one v1 request."""
    unknown = sorted(set(query) - set(QUERY_FIELDS))
    if unknown:
        raise InvalidArgument.for_field(unknown[0], f"is not a query parameter of /v1/classify; allowed: "
                                                    f"{', '.join(QUERY_FIELDS)}")
    doc: dict = dict(query)
    if fields_json is not None:
        try:
            fields = json.loads(fields_json)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidArgument.for_field("request", f"is not valid JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise InvalidArgument.for_field("request", "must be a JSON object (a v1 ClassifyObjectRequest)")
        doc.update(fields)
    msg = pb.ClassifyObjectRequest()
    try:
        json_format.ParseDict(doc, msg)
    except json_format.ParseError as exc:  # names the field and the value
        raise InvalidArgument.for_field("request", str(exc)) from None
    if image is not None:
        if msg.HasField("image"):
            raise InvalidArgument.for_field("image", "is given twice: as a file and in the JSON request")
        msg.image.encoded = image
    if not msg.HasField("image") or (msg.image.WhichOneof("data") == "encoded" and not msg.image.encoded):
        raise InvalidArgument.for_field("image", "is required: send the image file as the body, as the "
                                                 f"multipart part {IMAGE_PART!r}, or as image.encoded (base64)")
    return msg


def response_json(response: pb.ClassifyObjectResponse) -> dict:
    return {
        "model": response.model,
        "model_version": response.model_version,
        "request_id": response.request_id,
        "results": [_result(r) for r in response.results],
        "timing": {f: getattr(response.timing, f) for f in ("queue_us", "preprocess_us", "inference_us",
                                                             "total_us")},
    }


def _result(r: pb.RoiResult) -> dict:
    a = r.aligned_roi
    out = {
        "roi_id": r.roi_id,
        "class_id": r.class_index, "name": r.class_name, "confidence": r.score,  # the best class
        "confidences": [{"class_id": c.class_index, "name": c.class_name, "confidence": c.confidence}
                        for c in r.confidences],
        "aligned_roi": {"origin": {"x": a.origin.x, "y": a.origin.y}, "angle": a.angle,  # as Rectangle2D
                        "width": a.width, "height": a.height},
    }
    if r.HasField("heatmap"):
        out["heatmap"] = json_format.MessageToDict(r.heatmap, preserving_proto_field_name=True)
    return out
