"""`roiclass geo`: a raster (or an image collection) and a feature layer in,
labelled features out (README: GIS).

    roiclass geo scene.tif --features houses.gpkg --emd damage.emd --out labelled.gpkg
    roiclass geo tiles/ --features trees.shp --local --chip oriented --out trees.fgb

Exit codes: 0 done, 2 bad input (one line naming the file or flag; OUT is
never half-written), 1 the server failed.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import Sequence

from .config import PROCESSING_MODES, Extent, GeoConfig
from .chips import MODES
from .errors import GeoInputError
from .rows import FieldNames

TOKEN_ENV = "ROICLASS_TOKEN"
EXIT_SERVER_ERROR = 1
EXIT_USAGE = 2


def _number(low: float, strict: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected a number {'>' if strict else '>='} {low:g}, got {text!r}")
        return value
    return parse


def _integer(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value
    return parse


def _confidence(text: str) -> float:
    value = _number(0.0)(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in 0..1, got {text!r}")
    return value


def _extent(text: str) -> Extent:
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [float(p) for p in parts[:4]]
    except ValueError:
        numbers = []
    if len(parts) not in (4, 5) or len(numbers) != 4 or not all(map(math.isfinite, numbers)) \
            or numbers[0] >= numbers[2] or numbers[1] >= numbers[3]:
        raise argparse.ArgumentTypeError(f"expected XMIN,YMIN,XMAX,YMAX[,CRS] with XMIN < XMAX, YMIN < YMAX, "
                                         f"got {text!r}")
    return Extent(*numbers, crs=parts[4] if len(parts) == 5 else None)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="roiclass geo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rasters", nargs="+", metavar="RASTER", help="rasters rasterio opens, or folders of them")
    p.add_argument("--out", required=True, metavar="OUT",
                   help=".gpkg .geojson .shp .fgb (features) or .csv .parquet (tables)")
    p.add_argument("--features", metavar="LAYER", help="a vector file pyogrio opens; none: each image is one object")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--model", default="", metavar="NAME", help="a model of the server (default: its default)")
    model.add_argument("--emd", metavar="FILE", help="an Esri .emd or .dlpk (with --local it is loaded here; "
                                                     "a server must serve it under the file's stem)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="HOST:PORT[,HOST:PORT...]",
                       help="default 127.0.0.1:50051; several: the features are spread over all of them")
    where.add_argument("--local", action="store_true", help="run the engine in this process (no server)")
    p.add_argument("--class-label-field", default="ClassLabel", metavar="NAME")
    p.add_argument("--confidence-field", default="Confidence", metavar="NAME")
    p.add_argument("--processing-mode", choices=PROCESSING_MODES, default="mosaic",
                   help="an image collection as one mosaic, or each image separately (rows carry ImagePath)")
    p.add_argument("--chip", choices=MODES, help="fixed | bbox | oriented (default: the .emd's CropSizeFixed, "
                                                 "else fixed)")
    p.add_argument("--padding", type=_number(0.0), metavar="PX", help="cells added on each side of bbox/oriented chips")
    p.add_argument("--blacken-around-feature", action="store_true", default=None,
                   help="fill chip pixels outside the polygon (default: the .emd's BlackenAroundFeature)")
    p.add_argument("--batch-size", type=_integer(1), metavar="N", help="chips per request (default: the .emd's "
                                                                       "BatchSize, else 64)")
    p.add_argument("--min-confidence", type=_confidence, default=0.0, metavar="C",
                   help="a best class below C leaves the label null (Status 'below min confidence')")
    p.add_argument("--all-classes", action="store_true", help="add AllClasses: JSON of every class's confidence")
    p.add_argument("--extent", type=_extent, metavar="XMIN,YMIN,XMAX,YMAX[,CRS]",
                   help="classify only features that intersect it (CRS default: the layer's)")
    p.add_argument("--cell-size", type=_number(0.0, strict=True), metavar="SIZE",
                   help="read the raster resampled to this cell size (map units)")
    p.add_argument("--parallel", type=_integer(1), default=1, metavar="N",
                   help="streams per server (engine instances with --local)")
    p.add_argument("--retries", type=_integer(0), default=3, metavar="N",
                   help="retries of a chunk that fails with UNAVAILABLE or RESOURCE_EXHAUSTED")
    exists = p.add_mutually_exclusive_group()
    exists.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    exists.add_argument("--append", action="store_true", help="add to an existing OUT with the same fields")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary line")
    p.add_argument("--tls-ca", metavar="FILE", help="PEM CAs the server's certificate must chain to: TLS")
    p.add_argument("--tls-cert", metavar="FILE", help="PEM client certificate for mutual TLS (with --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument("--token", help=f"bearer token sent on every call (default: ${TOKEN_ENV})")
    return p


def config_from_args(args: argparse.Namespace) -> GeoConfig:
    connection = {}
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if token:
        connection["token"] = token
    if args.tls_ca or args.tls_cert:
        from roiclass.client.security import TlsConfig

        connection["tls"] = TlsConfig(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)
    return GeoConfig(
        rasters=tuple(args.rasters), out=args.out, features=args.features, model=args.model, emd=args.emd,
        servers=tuple(s for s in (args.server or "").split(",") if s.strip()), local=args.local,
        fields=FieldNames(label=args.class_label_field, confidence=args.confidence_field),
        processing_mode=args.processing_mode, chip=args.chip, padding=args.padding,
        blacken=args.blacken_around_feature, batch_size=args.batch_size, min_confidence=args.min_confidence,
        all_classes=args.all_classes, extent=args.extent, cell_size=args.cell_size, parallel=args.parallel,
        retries=args.retries, overwrite=args.overwrite, append=args.append, quiet=args.quiet,
        connection=connection,
    )


def main(argv: Sequence[str] | None = None) -> int:
    from roiclass.client.errors import ClassifierError

    from .run import run

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = run(config_from_args(args))
    except GeoInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ClassifierError as error:
        print(f"error: {error.code.name}: {error.message}", file=sys.stderr)
        return EXIT_SERVER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted; nothing written", file=sys.stderr)
        return 130
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
    return 0
