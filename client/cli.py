"""The `roiclass` command: classify, models, health, serve.

    roiclass classify cat.png --roi 10,20,64,48,30 --top-k 3
    roiclass models --json
    roiclass health --model efficientnet-lite0   # exit 0 when SERVING
    roiclass video clip.mp4 --frames 20:40 --segments   # client/video/command.py (exit 3: a camera stopped)
    roiclass geo scene.tif --features houses.gpkg --out labelled.gpkg   # roiclass.geo.cli (README: GIS)
    roiclass serve ...                           # roiclass.server.cli

Exit codes: 0 ok, 1 the server said no (or is not SERVING), 2 bad usage/input.

TLS: --tls-ca FILE (or --tls for the system CAs), mutual TLS: --tls-cert FILE
--tls-key FILE. Token: --token TOKEN, or the environment variable
ROICLASS_TOKEN (read by this command only, when it runs; --token wins).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .classifier import DEFAULT_ADDRESS, Classifier
from .errors import ClassifierError, InvalidInputError
from .result_text import result_lines
from .security import TlsConfig
from .types import ClassifyResult, HeatmapOptions, ModelList, Roi, to_jsonable

TOKEN_ENV = "ROICLASS_TOKEN"
EXIT_SERVER_ERROR = 1
EXIT_USAGE = 2
DEFAULT_TIMEOUT_S = 10.0
# Occlusion heatmaps run the model once per patch position: far slower on CPU.
HEATMAP_TIMEOUT_S = 300.0


def parse_roi(text: str) -> Roi:
    """"X,Y,W,H[,ANGLE]" -> Roi (argparse type)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (4, 5):
        raise argparse.ArgumentTypeError(
            f"expected X,Y,W,H or X,Y,W,H,ANGLE (numbers, ANGLE in degrees clockwise), got {text!r}"
        )
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"ROI values must be numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"ROI values must be finite, got {text!r}")
    if values[2] <= 0 or values[3] <= 0:
        raise argparse.ArgumentTypeError(f"ROI width and height must be > 0, got {text!r}")
    return Roi(*values)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in 0..1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roiclass", description="roiclass: classify rotated ROIs of images.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def connection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--server", default=DEFAULT_ADDRESS, metavar="HOST:PORT[,HOST:PORT...]",
            help=f"default {DEFAULT_ADDRESS}; several (comma-separated) or dns:///NAME:PORT: "
                 "round robin over the healthy ones, UNAVAILABLE retried on another",
        )
        sub.add_argument(
            "--timeout", type=_seconds, metavar="S",
            help=f"seconds per call (default {DEFAULT_TIMEOUT_S:g}, {HEATMAP_TIMEOUT_S:g} with --heatmap)",
        )
        sub.add_argument("--tls", action="store_true", help="TLS with the system's CAs (implied by --tls-ca)")
        sub.add_argument("--tls-ca", metavar="FILE", help="PEM CAs the server's certificate must chain to: TLS")
        sub.add_argument("--tls-cert", metavar="FILE", help="PEM client certificate for mutual TLS (with --tls-key)")
        sub.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
        sub.add_argument("--tls-server-name", metavar="NAME", help="check the server's certificate for NAME")
        sub.add_argument("--token", help=f"bearer token sent on every call (default: ${TOKEN_ENV})")

    classify = commands.add_parser("classify", help="classify ROIs of an image file")
    classify.add_argument("image", metavar="IMAGE", help="PNG, JPEG, BMP or TIFF file")
    classify.add_argument(
        "--roi", type=parse_roi, action="append", default=[], metavar="X,Y,W,H[,ANGLE]",
        help="ROI in image pixels, ANGLE in degrees clockwise about (X,Y); repeat for more; none = whole image",
    )
    classify.add_argument("--model", default="", help="model name (default: the server's default model)")
    classify.add_argument("--version", default="", help="model version (default: the latest ready one)")
    classify.add_argument(
        "--top-k", type=_non_negative_int, metavar="K", help="classes per ROI, 0 = all (default: the model's)"
    )
    classify.add_argument(
        "--min-confidence", type=_confidence, metavar="C", help="hide classes below C, 0..1 (default: the model's)"
    )
    classify.add_argument("--json", action="store_true", help="print JSON instead of a table")
    classify.add_argument("--detector", default=None, metavar="NAME",
                          help="detector model run on the whole image first: its boxes are the ROIs (no --roi)")
    classify.add_argument("--tta", default=None, metavar="MODE",
                          help="test-time augmentation: none, flip, dihedral, rotations:N:DEG (default: the model's)")
    classify.add_argument("--no-children", dest="children", action="store_false", default=None,
                          help="skip the model's child classifiers")
    classify.add_argument("--child-depth", type=_non_negative_int, default=None, metavar="N",
                          help="deepest child level run, 0 = all (default: all)")
    classify.add_argument(
        "--heatmap", metavar="OUT.png",
        help="also compute relevance heatmaps and draw them over the ROI crops (OUT-<i>.png for several ROIs)",
    )
    classify.add_argument("--heatmap-patch-size", type=_non_negative_int, default=0, metavar="PX",
                          help="occluding patch side in model input pixels (default: the model's)")
    classify.add_argument("--heatmap-stride", type=_non_negative_int, default=0, metavar="PX",
                          help="step between patches in model input pixels (default: the model's)")
    connection(classify)

    models = commands.add_parser("models", help="list the server's models")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    connection(models)

    health = commands.add_parser("health", help="exit 0 when the server (or --model) is SERVING")
    health.add_argument("--model", default="", help="check one model instead of the whole server")
    connection(health)

    from .video.command import add_parser as add_video_parser  # here: it imports this module's types

    add_video_parser(commands, connection)

    commands.add_parser("geo", help="label the features of a GIS layer on rasters (see `roiclass geo --help`)",
                        add_help=False)
    commands.add_parser("serve", help="run the server (see `roiclass serve --help`)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        from roiclass.server.cli import main as serve_main  # the server's deps load only here

        return serve_main(argv[1:])
    if argv[:1] == ["geo"]:
        from roiclass.geo.cli import main as geo_main  # rasterio, pyogrio, shapely load only here

        return geo_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together (mutual TLS): give both or neither")
    if args.token is None:
        args.token = os.environ.get(TOKEN_ENV) or None
    if args.timeout is None:
        args.timeout = HEATMAP_TIMEOUT_S if getattr(args, "heatmap", None) else DEFAULT_TIMEOUT_S
    handler = {"classify": _classify, "models": _models, "health": _health, "video": _video}[args.command]
    try:
        return handler(args)
    except InvalidInputError as error:
        return _fail(error, EXIT_USAGE)
    except ClassifierError as error:
        return _fail(error, EXIT_SERVER_ERROR)


def _connect(args: argparse.Namespace) -> Classifier:
    """The connection every subcommand uses: --server, --timeout, the TLS flags, the token."""
    tls = None
    if args.tls or args.tls_ca or args.tls_cert or args.tls_server_name:
        tls = TlsConfig(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key, server_name=args.tls_server_name)
    return Classifier(args.server, timeout=args.timeout, tls=tls, token=args.token)


def _fail(error: ClassifierError, code: int) -> int:
    print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
    for violation in error.details:
        if f"{violation.field}: {violation.description}" != error.message:
            print(f"  {violation.field}: {violation.description}", file=sys.stderr)
    return code


# ------------------------------------------------------------------ classify


def _classify(args: argparse.Namespace) -> int:
    path = Path(args.image)
    with _connect(args) as classifier:
        result = classifier.classify(
            path,
            rois=args.roi or None,
            model=args.model,
            model_version=args.version,
            top_k=args.top_k,
            min_confidence=args.min_confidence,
            heatmap=bool(args.heatmap),
            heatmap_options=HeatmapOptions(args.heatmap_patch_size, args.heatmap_stride) if args.heatmap else None,
            detector=args.detector,
            tta=args.tta,
            children=args.children,
            max_child_depth=args.child_depth,
        )
    written = _write_heatmaps(path, result, args.heatmap) if args.heatmap else []
    if args.json:
        print(json.dumps(_classify_json(result, written), indent=2))
    else:
        print(format_classify(result))
        for out in written:
            print(f"heatmap written to {out}")
    return 0


def _classify_json(result: ClassifyResult, written: list[str]) -> dict[str, Any]:
    data = to_jsonable(result)
    for i, roi_result in enumerate(data["results"]):
        heatmap = roi_result.get("heatmap")
        if heatmap is not None:
            heatmap.pop("image", None)  # pixels are in the PNG; the grid stays
            if i < len(written):
                heatmap["path"] = written[i]
    return data


def _write_heatmaps(image_path: Path, result: ClassifyResult, out: str) -> list[str]:
    from .render import load_image_array, render_heatmap  # Pillow only when drawing

    try:
        image = load_image_array(str(image_path))
    except (OSError, ValueError) as error:
        raise InvalidInputError("image", f"cannot read {image_path} to draw the heatmap: {error}") from None
    out_path = Path(out)
    written = []
    for i, roi_result in enumerate(result.results):
        if roi_result.heatmap is None or roi_result.heatmap.image.size == 0:
            continue
        target = out_path
        if len(result.results) > 1:
            target = out_path.with_name(f"{out_path.stem}-{i}{out_path.suffix or '.png'}")
        picture = render_heatmap(image, roi_result.aligned_roi, roi_result.heatmap.image)
        try:
            picture.save(target)
        except (OSError, ValueError) as error:
            raise InvalidInputError("--heatmap", f"cannot write {target}: {error}") from None
        written.append(str(target))
    return written


def format_classify(result: ClassifyResult) -> str:
    return "\n".join(result_lines(result))


# --------------------------------------------------------------------- video


def _video(args: argparse.Namespace) -> int:
    from .video.command import run  # client/video/command.py: rows, segments, the summary

    return run(args, _connect)


# ------------------------------------------------------------ models, health


def _models(args: argparse.Namespace) -> int:
    with _connect(args) as classifier:
        models = classifier.list_models()
    if args.json:
        print(json.dumps(to_jsonable(models), indent=2))
    else:
        print(format_models(models))
    return 0


def format_models(models: ModelList) -> str:
    header = f"  {'NAME':<28} {'VERSIONS':<22} {'INPUT':<12} {'CLASSES':>7}  {'FORMAT':<9} DEVICES"
    lines = [header]
    for model in models:
        versions = ", ".join(f"{v.version}:{v.state}" for v in model.versions) or "-"
        devices = sorted({i.device for v in model.versions for i in v.instances}) or ["-"]
        marker = "*" if model.name == models.default_model else " "
        size = f"{model.input_width}x{model.input_height}x{model.channels}"
        lines.append(
            f"{marker} {model.name:<28} {versions:<22} {size:<12} {len(model.classes):>7}  "
            f"{model.format:<9} {','.join(devices)}"
        )
        pipeline = _pipeline_text(model)
        if pipeline:
            lines.append(f"    {pipeline}")
    if not models.models:
        lines.append("  (no models)")
    lines.append("* = default model")
    return "\n".join(lines)


def _pipeline_text(model) -> str:
    """What a model's config chains: "detector yolov8", "children: shade (when red), ..."."""
    parts = []
    if model.detector_format:
        parts.append(f"detector {model.detector_format}")
    if model.default_detector:
        parts.append(f"default detector {model.default_detector}")
    if model.default_tta and model.default_tta != "none":
        parts.append(f"tta {model.default_tta}")
    if model.children:
        kids = ", ".join(f"{name} (when {' or '.join(when)})" if when else name for name, when in model.children)
        parts.append(f"children: {kids}")
    return "; ".join(parts)


def _health(args: argparse.Namespace) -> int:
    with _connect(args) as classifier:
        status = classifier.health(args.model)
    print(status)
    return 0 if status == "SERVING" else EXIT_SERVER_ERROR


if __name__ == "__main__":
    sys.exit(main())
