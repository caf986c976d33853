"""The built-in default model (EfficientNet-Lite0) as shipped: ONNX file, config, classes, golden.

Plain ONNX Runtime + NumPy (no torch, no roiclass engine): the stored PyTorch outputs
(tests/data/efficientnet_lite0_reference.npz, made by tools/export_default_model.py)
must be reproduced by ONNX Runtime on the stored input tensors.
"""
from __future__ import annotations

import hashlib
import re
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data
from PIL import Image

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MODEL_DIR = Path(str(files("roiclass.models") / "efficientnet_lite0"))
ONNX_PATH = MODEL_DIR / "1" / "model.onnx"
REFERENCE = Path(__file__).resolve().parents[2] / "data" / "efficientnet_lite0_reference.npz"
ATOL_PROBS = 1e-4
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = (967, 968)  # espresso, cup


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def config() -> dict:
    return tomllib.loads((MODEL_DIR / "config.toml").read_text(encoding="utf-8"))


def stretch_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear, pixel-centre convention, no antialiasing (as documented in the README)."""
    src = img.astype(np.float64)

    def axis(n_out: int, n_in: int):
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        i0 = np.floor(pos).astype(np.int64)
        return np.clip(i0, 0, n_in - 1), np.clip(i0 + 1, 0, n_in - 1), pos - i0

    y0, y1, fy = axis(out_h, src.shape[0])
    x0, x1, fx = axis(out_w, src.shape[1])
    fx, fy = fx[None, :, None], fy[:, None, None]
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x1] * fx
    bottom = src[y1][:, x0] * (1 - fx) + src[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def preprocess(rgb: np.ndarray, cfg: dict) -> np.ndarray:
    """HxWx3 RGB 0..255 -> [1,3,H,W] float32 with the config's size, mean and std."""
    inp = cfg["input"]
    assert (inp["channel_order"], inp["layout"], inp["resize"]) == ("RGB", "NCHW", "stretch")
    x = stretch_bilinear(rgb, inp["height"], inp["width"])
    x = (x - np.array(inp["mean"])) / np.array(inp["std"])
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def run(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return session.run(["logits"], {"input": x})[0]


def test_model_file_is_single_onnx_with_dynamic_batch(session):
    assert ONNX_PATH.stat().st_size < 25 * 2**20
    model = onnx.load(str(ONNX_PATH), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape) == ("input", "tensor(float)", ["batch", 3, 224, 224])
    assert (out.name, out.shape) == ("logits", ["batch", 1000])


def test_onnx_matches_pytorch_on_exact_uint8_inputs(session, ref):
    # u8_images are 224x224: their tensors are exactly (pixel - 127) / 128, no resampling.
    x = ((ref["u8_images"].astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2)
    probs = softmax(run(session, np.ascontiguousarray(x)))
    assert probs.shape == ref["u8_probs"].shape == (3, 1000)
    np.testing.assert_allclose(probs, ref["u8_probs"], rtol=0, atol=ATOL_PROBS)
    np.testing.assert_allclose(softmax(ref["u8_logits"]), ref["u8_probs"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["stretch", "roi"])
def test_onnx_matches_pytorch_on_resampled_inputs(session, ref, kind):
    probs = softmax(run(session, ref[f"{kind}_inputs"]))
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs, ref[f"{kind}_probs"], rtol=0, atol=ATOL_PROBS)


def test_batch_axis_gives_same_result_as_single(session, ref):
    x = ref["stretch_inputs"]
    batched = run(session, np.concatenate([x, x[:1]]))
    single = np.concatenate([run(session, x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(batched[: len(x)], single, rtol=0, atol=1e-4)
    np.testing.assert_allclose(batched[-1], single[0], rtol=0, atol=1e-4)


def test_reference_inputs_are_the_documented_preprocessing_of_skimage_photos(ref, config):
    for kind in ("stretch", "roi"):
        assert [str(n) for n in ref[f"{kind}_names"]] == ["chelsea", "coffee"]
    for i, img in enumerate((skimage.data.chelsea(), skimage.data.coffee())):
        x = preprocess(img, config)
        np.testing.assert_allclose(x[0], ref["stretch_inputs"][i], rtol=0, atol=1e-5)
        u8 = np.clip(np.rint(stretch_bilinear(img, 224, 224)), 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(u8, ref["u8_images"][i])
        x0, y0, w, h, angle = (int(v) for v in ref["roi_rects"][i])
        assert angle == 0 and max(w, h) / 224 < 2  # downscale < 2: plain bilinear in any resampler
        x = preprocess(img[y0:y0 + h, x0:x0 + w], config)
        np.testing.assert_allclose(x[0], ref["roi_inputs"][i], rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["u8", "stretch", "roi"])
def test_reference_top1_chelsea_is_cat_and_coffee_is_espresso_or_cup(ref, kind):
    top = ref[f"{kind}_probs"].argmax(axis=1)
    assert top[0] in CATS
    assert top[1] in COFFEE


def test_classes_file_has_1000_imagenet_names(config):
    names = (MODEL_DIR / config["classes_file"]).read_text(encoding="utf-8").splitlines()
    assert len(names) == 1000
    assert all(n and n == n.strip() for n in names)
    assert names[0] == "tench" and names[999] == "toilet tissue"
    assert names[281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert names[967:969] == ["espresso", "cup"]


def test_readme_sha256_matches_model_file():
    readme = (MODEL_DIR / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"sha256 of `1/model.onnx`: `([0-9a-f]{64})`", readme)
    assert found == [hashlib.sha256(ONNX_PATH.read_bytes()).hexdigest()]


def test_config_states_the_models_preprocessing(config):
    inp = config["input"]
    assert (inp["width"], inp["height"], inp["channel_order"], inp["layout"]) == (224, 224, "RGB", "NCHW")
    assert (inp["normalization"], inp["mean"], inp["std"]) == ("custom", [127.0] * 3, [128.0] * 3)
    assert config["output"]["activation"] == "softmax"


def test_golden_image_classifies_as_expected_class(session, ref, config):
    warm = config["warmup"]
    rgb = np.asarray(Image.open(MODEL_DIR / warm["golden_image"]).convert("RGB"))
    assert rgb.shape == (224, 224, 3)
    np.testing.assert_array_equal(rgb, ref["u8_images"][list(ref["u8_names"]).index("golden")])
    probs = softmax(run(session, preprocess(rgb, config)))[0]
    assert int(probs.argmax()) == warm["expected_class"]
    assert warm["expected_class"] in CATS and probs[warm["expected_class"]] > 0.5
