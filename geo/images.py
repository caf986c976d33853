"""Without --features: each image of the collection is one object, its whole
picture the chip (read at most twice the model's input a side; GDAL uses
the overviews). A georeferenced image gives a feature whose geometry is its
extent (in the first georeferenced image's CRS); when no image has
georeferencing the output is a table (image path, label, confidence), as
Esri's tool does.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa
import shapely
from pyproj import CRS, Transformer

from roiclass.client.images import to_image_proto
from roiclass.client.messages import roi_proto

from . import rows as R
from .dispatch import Dispatcher, Work, dispatch
from .output import OutputWriter
from .progress import Progress
from .rasters import overview_read


async def classify_images(job) -> R.Summary:
    config, rasters = job.config, job.rasters
    labels = [R.Label(R.OK, image=r.path) for r in rasters]
    progress = Progress(len(rasters), config.quiet)
    loop = asyncio.get_running_loop()

    def build(index: int) -> Work:
        pixels, _ = overview_read(rasters[index], 2 * job.model_side)
        height, width = pixels.shape[:2]
        roi = roi_proto((0.0, 0.0, float(width), float(height), 0.0), index=0)
        return Work(index, job.backend.request(to_image_proto(pixels, "BANDS"), [roi], index), 1)

    async def requests():
        for index in range(len(rasters)):
            yield await loop.run_in_executor(job.pool, build, index)

    lanes = job.backend.lanes()
    dispatcher = Dispatcher(config.retries, queue_size=2 * len(lanes), on_done=lambda o, n: progress.update(n))
    try:
        outcomes = await dispatch(requests(), lanes, dispatcher)
    finally:
        progress.close()
        job.pool.shutdown(wait=True, cancel_futures=True)
    for outcome in outcomes:
        label = labels[outcome.key]
        if outcome.error is not None:
            labels[outcome.key] = R.Label(f"{R.FAILED}{outcome.error.code.name}: {outcome.error.message}",
                                          image=label.image)
            continue
        labels[outcome.key] = R.label_from(outcome.result.results[0], job.class_values, config.min_confidence,
                                           R.OK, config.all_classes)
        labels[outcome.key].image = label.image
    crs, geometries = _extents(rasters)
    columns = R.label_columns(labels, config.fields, config.all_classes, with_image=True)
    table = pa.table({config.fields.image: columns.pop(config.fields.image), **columns})
    job.summary.features = len(rasters)
    job.summary.add(labels)
    if job.out is not None:
        writer = OutputWriter(job.out, crs, "Polygon" if geometries is not None else None, config.append)
        try:
            writer.write(table, geometries)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    else:
        job._emit(None, table, geometries)
        job._finish(crs)
    return job.summary


def _extents(rasters) -> tuple[str | None, np.ndarray | None]:
    """Each image's extent in the first georeferenced image's CRS (None for
    one without georeferencing); (None, None) when none has any."""
    placed = [r for r in rasters if r.georeferenced]
    if not placed:
        return None, None
    crs = CRS.from_user_input(placed[0].crs.to_wkt())
    geometries = np.empty(len(rasters), object)
    for i, raster in enumerate(rasters):
        if not raster.georeferenced:
            continue
        height, width = raster.shape
        corners = [raster.transform * xy for xy in ((0, 0), (width, 0), (width, height), (0, height))]
        polygon = shapely.Polygon(corners)
        source = CRS.from_user_input(raster.crs.to_wkt())
        if source != crs:
            move = Transformer.from_crs(source, crs, always_xy=True)
            polygon = shapely.transform(polygon, lambda xy: np.column_stack(move.transform(xy[:, 0], xy[:, 1])))
        geometries[i] = polygon
    return crs.to_wkt(), geometries
