"""Probabilities -> the requested output tensors: PROBABILITIES FP32 [N, classes],
or with Triton's classification extension (the output's parameter
`classification` = K) BYTES [N, K] "score:index:label" strings, best first."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from roiclass.server.errors import InvalidArgument
from roiclass.server.oip.tensors import Tensor

PROBABILITIES = "PROBABILITIES"
OUTPUTS = (PROBABILITIES,)
CLASSIFICATION = "classification"


@dataclass
class RequestedOutput:
    name: str
    parameters: dict = field(default_factory=dict)  # "classification": K; HTTP: "binary_data": bool


def check_outputs(requested: list[RequestedOutput]) -> list[RequestedOutput]:
    """The outputs to return ([] = all of them, as tensors); wrong names or parameters refused."""
    seen = set()
    for out in requested:
        if out.name not in OUTPUTS:
            raise InvalidArgument.for_field("outputs", f"output {out.name!r} is not produced; allowed: "
                                                       f"{', '.join(OUTPUTS)}")
        if out.name in seen:
            raise InvalidArgument.for_field("outputs", f"output {out.name!r} is requested twice")
        seen.add(out.name)
        if CLASSIFICATION in out.parameters:
            classification_count(out)
    return requested or [RequestedOutput(name) for name in OUTPUTS]


def classification_count(out: RequestedOutput) -> int | None:
    """K of the classification extension; None: the plain tensor."""
    k = out.parameters.get(CLASSIFICATION)
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidArgument.for_field(f"{out.name}.parameters.{CLASSIFICATION}",
                                        f"{k!r} must be an integer >= 1 (the number of classes returned)")
    return k


def output_tensor(out: RequestedOutput, probabilities: np.ndarray, classes: tuple[str, ...],
                  lead: tuple[int, ...] = ()) -> Tensor:
    """probabilities: (rows, classes); lead: the output's leading dimensions ((rows,) or (B, N))."""
    params = {k: v for k, v in out.parameters.items() if k != CLASSIFICATION}
    lead = lead or (len(probabilities),)
    k = classification_count(out)
    data = probabilities if k is None else top_k_strings(probabilities, k, classes)
    data = data.reshape(*lead, data.shape[1])
    return Tensor(out.name, "FP32" if k is None else "BYTES", tuple(data.shape), data, params)


def top_k_strings(probabilities: np.ndarray, k: int, classes: tuple[str, ...]) -> np.ndarray:
    """[N, K] object array of b"score:index:label" (Triton's format: the score with six
    decimals, as its std::to_string prints it), ties in class order."""
    k = min(k, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    out = np.empty(order.shape, dtype=object)
    for r, row in enumerate(order.tolist()):
        for j, i in enumerate(row):
            label = classes[i] if i < len(classes) else ""
            out[r, j] = f"{float(probabilities[r, i]):f}:{i}:{label}".encode()
    return out
