"""Tiny real ONNX classifiers (onnx.helper) for nested-classifier tests and benches.

Every model: the mean of each input channel over the ROI (normalization
"unit": 0..1) -> logits = pooled @ W + b -> softmax. Their classes are known
functions of the ROI's colour (see MODELS and `expected`):

  paint   red / green / blue: the channel with the largest mean
  shade   dark / bright: the mean of all three channels below / above 0.5
  tint    greenish / bluish: the green mean above / below the blue mean
  edge    dark_around / light_around: as shade (run on an expanded ROI)
  slow    calm / busy (as shade), after ~`slow_ms` of MatMuls per batch whatever its
          size (a slowed child for deadline and cancellation tests)

write_repository() writes them as a repository: paint's children are shade
(when red, min_confidence 0.5) and edge (when green or class 2 = blue,
min_confidence 0.9, roi expand:2); shade's child is tint (when bright);
lazy (paint's graph) has the child slow, whose child is after (tint's graph).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from tests.onnx_files import save_graph

SIDE = 16  # model input: 3 x SIDE x SIDE, NCHW
GAIN = 20.0  # logit per unit of mean: decisions are sharp away from the thresholds

# name -> (classes, W (3, K), b (K,))
MODELS: dict[str, tuple[tuple[str, ...], np.ndarray, np.ndarray]] = {
    "paint": (("red", "green", "blue"), GAIN * np.eye(3), np.zeros(3)),
    "shade": (("dark", "bright"), GAIN * np.array([[-1, 1]] * 3) / 3, GAIN * np.array([0.5, -0.5])),
    "tint": (("greenish", "bluish"), GAIN * np.array([[0, 0], [1, -1], [-1, 1]]), np.zeros(2)),
    "edge": (("dark_around", "light_around"), GAIN * np.array([[-1, 1]] * 3) / 3, GAIN * np.array([0.5, -0.5])),
}
MODELS["slow"] = (("calm", "busy"), MODELS["shade"][1], MODELS["shade"][2])

CHILDREN = {
    "paint": '''
[[children]]
model = "shade"
when = ["red"]
min_confidence = 0.5

[[children]]
model = "edge"
when = ["green", 2]
min_confidence = 0.9
roi = "expand:2"
''',
    "shade": '''
[[children]]
model = "tint"
when = ["bright"]
''',
    "lazy": '''
[[children]]
model = "slow"
''',
    "slow": '''
[[children]]
model = "after"
''',
}
GRAPHS = {"lazy": "paint", "after": "tint"}  # models that reuse another's function


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def expected(name: str, pixels: np.ndarray) -> tuple[str, float]:
    """NumPy reference: (class name, score) of model `name` on an (H, W, 3) uint8 crop."""
    classes, w, b = MODELS[GRAPHS.get(name, name)]
    probs = softmax(pixels.reshape(-1, 3).mean(axis=0) / 255.0 @ w + b)
    k = int(np.argmax(probs))
    return classes[k], float(probs[k])


def make_model(path: Path, name: str, slow_ms: int = 0) -> Path:
    """The ONNX file of model `name` (a key of MODELS or GRAPHS); slow_ms > 0 adds
    about that much compute per batch (MatMuls of a 256x256 matrix built from the input)."""
    _, w, b = MODELS[GRAPHS.get(name, name)]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])
    nodes = [helper.make_node("ReduceMean", ["image"], ["pooled"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["pooled", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "B"], ["logits"])]
    inits = [numpy_helper.from_array(w.astype(np.float32), "W"), numpy_helper.from_array(b.astype(np.float32), "B")]
    out = "logits"
    if slow_ms > 0:
        nodes, inits, out = _slow(nodes, inits, max(1, slow_ms * 3))
    nodes.append(helper.make_node("Softmax", [out], ["probs"], axis=1))
    k = w.shape[1]
    graph = helper.make_graph(nodes, name, [x], [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", k])],
                              inits)
    return save_graph(graph, path)


def _slow(nodes: list, inits: list, rounds: int):
    """A chain of input-dependent MatMuls (nothing to fold away; about 0.3 ms each
    on one core), added to every logit alike times 0: softmax does not change.
    The matrix permutes columns, so the values neither grow nor turn denormal."""
    m = 256
    perm = np.eye(m, dtype=np.float32)[np.roll(np.arange(m), 1)]
    inits += [numpy_helper.from_array(np.array([m, m], np.int64), "shape"),
              numpy_helper.from_array(perm, "M"),
              numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    nodes.append(helper.make_node("ReduceSum", ["pooled"], ["total"], keepdims=0))
    nodes.append(helper.make_node("Expand", ["total", "shape"], ["h0"]))
    for r in range(rounds):
        nodes.append(helper.make_node("MatMul", [f"h{r}", "M"], [f"h{r + 1}"]))
    nodes.append(helper.make_node("ReduceSum", [f"h{rounds}"], ["heavy"], keepdims=0))
    nodes.append(helper.make_node("Mul", ["heavy", "zero"], ["nothing"]))
    nodes.append(helper.make_node("Add", ["logits", "nothing"], ["logits_slow"]))
    return nodes, inits, "logits_slow"


def config_text(name: str, extra: str = "", batching: str = "") -> str:
    """config.toml of model `name` (a key of MODELS or GRAPHS) with its CHILDREN."""
    classes = MODELS[GRAPHS.get(name, name)][0]
    return (f"classes = {list(classes)!r}\n".replace("'", '"')
            + f"[input]\nwidth = {SIDE}\nheight = {SIDE}\nnormalization = \"unit\"\n"
            + "[output]\nactivation = \"none\"\n"
            + (f"[batching]\n{batching}\n" if batching else "")
            + extra + CHILDREN.get(name, ""))


def write_model(repo: Path, name: str, *, like: str | None = None, children: str | None = None,
                slow_ms: int = 0, batching: str = "") -> Path:
    """<repo>/<name>/config.toml and 1/model.onnx: the model `like` (default: `name`,
    a key of MODELS or GRAPHS) under that name; `children` replaces its CHILDREN."""
    folder = Path(repo) / name
    like = like or name
    make_model(folder / "1" / "model.onnx", like, slow_ms)
    text = config_text(like, batching=batching)
    if children is not None:
        text = text.replace(CHILDREN.get(like, "\0"), "") + children
    (folder / "config.toml").write_text(text)
    return folder


def write_repository(repo: Path, slow_ms: int = 300) -> Path:
    """paint -> shade -> tint, paint -> edge; lazy -> slow (slowed) -> after."""
    for name in ("paint", "shade", "tint", "edge", "lazy", "after"):
        write_model(repo, name)
    write_model(repo, "slow", slow_ms=slow_ms, batching="max_batch_size = 8")
    return Path(repo)
