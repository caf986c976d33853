"""--processing-mode mosaic: the image collection as one raster, a GDAL VRT
of every image on the finest resolution's grid, so a feature spanning two
images is chipped from both. The images must share a CRS, band count and
sample type and be north-up (else: --processing-mode separately).
"""
from __future__ import annotations

import math
from xml.sax.saxutils import escape

import rasterio
import shapely
from affine import Affine

from .errors import GeoInputError
from .rasters import Raster

_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
          "float32": "Float32", "float64": "Float64"}


def mosaic(rasters: list[Raster]) -> Raster:
    if len(rasters) == 1:
        return rasters[0]
    first = rasters[0]
    for r in rasters:
        problem = _mismatch(first, r)
        if problem:
            raise GeoInputError(r.path, f"cannot join {first.path} in a mosaic: {problem}; "
                                        "use --processing-mode separately")
    res = min(min(abs(r.transform.a), abs(r.transform.e)) for r in rasters)
    lefts, bottoms, rights, tops = zip(*(r.dataset.bounds for r in rasters))
    x0, y0 = min(lefts), max(tops)
    width = math.ceil(round((max(rights) - x0) / res, 6))
    height = math.ceil(round((y0 - min(bottoms)) / res, 6))
    transform = Affine(res, 0, x0, 0, -res, y0)
    xml = _vrt(rasters, transform, width, height)
    dataset = rasterio.open(xml)
    footprint = shapely.union_all([_placed(r, transform) for r in rasters])
    return Raster(" + ".join(r.path for r in rasters), dataset, True, footprint, source=xml)


def _mismatch(first: Raster, other: Raster) -> str:
    if not other.georeferenced:
        return "it has no georeferencing"
    if other.crs != first.crs:
        return f"its CRS {other.crs} differs from {first.crs}"
    if other.bands != first.bands or other.dtype != first.dtype:
        return f"{other.bands} bands of {other.dtype} vs {first.bands} of {first.dtype}"
    if other.transform.b or other.transform.d or other.transform.e > 0:
        return "it is not north-up"
    if str(other.dtype) not in _TYPES:
        return f"sample type {other.dtype} is not supported"
    return ""


def _placed(raster: Raster, transform: Affine) -> shapely.Polygon:
    """The raster's box in the mosaic's pixels."""
    left, bottom, right, top = raster.dataset.bounds
    inverse = ~transform
    c0, r0 = inverse * (left, top)
    c1, r1 = inverse * (right, bottom)
    return shapely.box(c0, r0, c1, r1)


def _vrt(rasters: list[Raster], transform: Affine, width: int, height: int) -> str:
    first = rasters[0]
    gt = ", ".join(repr(v) for v in transform.to_gdal())
    nodata = first.nodata
    bands = []
    for band in range(1, first.bands + 1):
        sources = []
        for r in rasters:
            box = _placed(r, transform).bounds
            h, w = r.shape
            sources.append(
                f'<SimpleSource><SourceFilename relativeToVRT="0">{escape(r.path)}</SourceFilename>'
                f"<SourceBand>{band}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                f'<DstRect xOff="{box[0]!r}" yOff="{box[1]!r}" xSize="{box[2] - box[0]!r}" '
                f'ySize="{box[3] - box[1]!r}"/></SimpleSource>')
        nd = f"<NoDataValue>{nodata!r}</NoDataValue>" if nodata is not None else ""
        bands.append(f'<VRTRasterBand dataType="{_TYPES[str(first.dtype)]}" band="{band}">{nd}'
                     + "".join(sources) + "</VRTRasterBand>")
    return (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{escape(first.crs.to_wkt())}</SRS>'
            f"<GeoTransform>{gt}</GeoTransform>" + "".join(bands) + "</VRTDataset>")
