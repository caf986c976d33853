"""One `roiclass geo` run: rasters + a feature layer (or none) -> labelled
features, through a backend (servers, or the engine in-process).

Features are read in chunks (layers.CHUNK); each chunk's chips are cut,
planned into frames in tile order, classified with a bounded window of
frames in flight, and written before the next chunk is read, so memory
follows the chunk and the chips in flight, never the raster or the layer.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from roiclass.client.errors import ClassifierError

from . import rows as R
from .config import GeoConfig
from .dispatch import Dispatcher, dispatch
from .emd import model_files, read_keys
from .errors import GeoInputError
from .frames import works
from .layers import layer_info, read_chunks
from .mosaic import mosaic
from .output import OutputWriter, check_out
from .plan import cut_chips, finite, plan_frames, reproject
from .progress import Progress
from .rasters import open_rasters, raster_env

logger = logging.getLogger(__name__)

# Errors every frame would meet again: the run stops, naming the raster.
FATAL = ("INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "UNIMPLEMENTED", "PERMISSION_DENIED",
         "UNAUTHENTICATED")


def run(config: GeoConfig) -> R.Summary:
    """Runs it; writes config.out (or returns the table in Summary.table)."""
    with raster_env(config.cache_mb):
        return asyncio.run(_run(config))


def make_backend(config: GeoConfig, options: dict):
    if config.local:
        from .local import LocalBackend

        return LocalBackend(config.emd, options, parallel=config.parallel, window=config.window * 2)
    from .remote import RemoteBackend

    return RemoteBackend(config.servers or ("127.0.0.1:50051",), options, parallel=config.parallel,
                         window=config.window, connection=config.connection)


async def _run(config: GeoConfig) -> R.Summary:
    started, started_cpu = time.perf_counter(), time.process_time()
    out = check_out(config.out, config.overwrite, config.append) if config.out else None
    info = layer_info(config.features) if config.features else None
    keys = read_keys(config.emd) if config.emd else None
    model = keys.name if keys else config.model
    rasters = open_rasters(config.rasters)
    backend = make_backend(config, {"model": model, "top_k": 0 if config.all_classes else 1})
    try:
        await backend.open()
        try:
            if keys is not None and not config.local:  # the servers load the .emd sent to them
                await backend.upload(model, model_files(config.emd))
            width, height = await backend.model_input(model)
        except ClassifierError as error:
            if error.code.name not in FATAL:
                raise
            raise GeoInputError(config.emd or f"--model {model}", f"{error.code.name}: {error.message}") from None
        ready, ready_cpu = time.perf_counter(), time.process_time()
        job = _Job(config, keys, backend, rasters, out, width, height)
        summary = await (job.features(info) if info else job.images())
        summary.startup_s, summary.startup_cpu_s = ready - started, ready_cpu - started_cpu
    finally:
        await backend.close()
        for raster in rasters:
            raster.close()
    summary.seconds = time.perf_counter() - started
    return summary


class _Job:
    def __init__(self, config: GeoConfig, keys, backend, rasters, out, width: int, height: int) -> None:
        self.config = config
        self.keys = keys
        self.backend = backend
        self.rasters = rasters
        self.out = out
        self.policy = config.policy(keys, width, height)
        self.model_side = max(width, height)
        self.class_values = keys.class_values if keys else {}
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="geo-read")
        self.summary = R.Summary(out=str(out) if out else None)
        self.tables = []
        self.targets_rasters = []

    # ------------------------------------------------------------ features

    async def features(self, info) -> R.Summary:
        config = self.config
        targets = self._targets(info)
        writer = OutputWriter(self.out, info.crs, info.geometry_type, config.append) if self.out else None
        progress = Progress(info.count, config.quiet)
        try:
            for chunk in read_chunks(info):
                labels, repeat = await self._chunk(chunk, targets, info, progress)
                attributes = chunk.attributes.take(repeat)
                table = R.with_labels(attributes, labels, config.fields, config.all_classes,
                                      config.processing_mode == "separately")
                self._emit(writer, table, chunk.geometries[repeat])
                self.summary.features += len(chunk)
                self.summary.add(labels)
            if writer is not None:
                writer.commit()
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        finally:
            progress.close()
            self.pool.shutdown(wait=True, cancel_futures=True)  # no read may outlive its dataset
            for raster in self.targets_rasters:
                if raster not in self.rasters:  # the mosaic's VRT
                    raster.close()
        self._finish(info.crs)
        return self.summary

    def _targets(self, info) -> list[tuple[object, Transformer | None]]:
        """(raster, layer -> raster transformer) for each raster the features go to."""
        for raster in self.rasters:
            if not raster.georeferenced:
                raise GeoInputError(raster.path, "has no georeferencing, so features cannot be placed on it "
                                                 "(without --features each image is one object)")
        rasters = [mosaic(self.rasters)] if self.config.processing_mode == "mosaic" else self.rasters
        targets = []
        for raster in rasters:
            targets.append((raster, _transformer(info, raster)))
        self.targets_rasters = rasters
        return targets

    async def _chunk(self, chunk, targets, info, progress) -> tuple[list, np.ndarray]:
        """(a Label per output row, the chunk's feature index of each row)."""
        n = len(chunk)
        geometries = chunk.geometries
        status = np.full(n, R.OUTSIDE, object)
        missing = shapely.is_missing(geometries) | shapely.is_empty(geometries)
        status[missing] = R.NO_GEOMETRY
        candidates = ~missing & self._in_extent(geometries, info)
        status[~missing & ~candidates] = R.OUTSIDE_EXTENT
        chips, seen_finite = [], np.zeros(n, bool)
        for index, (raster, transformer) in enumerate(targets):
            moved = reproject(geometries, transformer)
            ok = finite(moved) & candidates
            seen_finite |= ok
            found, _ = cut_chips(moved, ok, raster, index, self.policy, self._cell_scale(raster))
            chips += found
        status[candidates & ~seen_finite] = R.NOT_REPROJECTED
        results = await self._classify(chips, [t[0] for t in targets], progress, n)
        return self._rows(n, status, chips, results, [t[0] for t in targets])

    def _rows(self, n, status, chips, results, rasters) -> tuple[list, np.ndarray]:
        separately = self.config.processing_mode == "separately"
        per_feature: list[list[R.Label]] = [[] for _ in range(n)]
        for k, chip in enumerate(chips):
            label = results[k]
            if separately:
                label.image = rasters[chip.raster].path
            per_feature[chip.feature].append(label)
        labels, repeat = [], []
        for f in range(n):
            rows = per_feature[f] or [R.Label(status[f])]
            if not separately:
                rows = rows[:1]
            labels += rows
            repeat += [f] * len(rows)
        return labels, np.asarray(repeat, np.int64)

    def _in_extent(self, geometries, info) -> np.ndarray:
        extent = self.config.extent
        if extent is None:
            return np.ones(len(geometries), bool)
        box = (extent.xmin, extent.ymin, extent.xmax, extent.ymax)
        if extent.crs and info.crs:
            try:
                box = Transformer.from_crs(extent.crs, info.crs, always_xy=True).transform_bounds(*box)
            except (CRSError, ProjError) as error:
                raise GeoInputError("--extent", f"cannot transform {extent.crs} to the layer's CRS: {error}") from None
        return shapely.intersects(geometries, shapely.box(*box))

    def _cell_scale(self, raster) -> float:
        """Raster pixels per output cell under --cell-size (1 without)."""
        if self.config.cell_size is None:
            return 1.0
        t = raster.transform
        return self.config.cell_size / float(np.sqrt(abs(t.a * t.e - t.b * t.d)))

    # ------------------------------------------------------------ classify

    async def _classify(self, chips, rasters, progress, features: int) -> list[R.Label]:
        """A Label per chip (in chip order)."""
        labels: list[R.Label | None] = [None] * len(chips)
        for k, chip in enumerate(chips):
            labels[k] = R.Label(R.PARTIAL if chip.partial else R.OK)
        if not chips:
            progress.update(features)
            return labels
        plans = plan_frames(chips, self.model_side, self.config.chips_per_frame(self.keys))
        per_chip = features / len(chips)
        lanes = self.backend.lanes()
        dispatcher = Dispatcher(self.config.retries, queue_size=2 * len(lanes),
                                on_done=lambda outcome, n: progress.update(n * per_chip))
        no_data: list[int] = []
        outcomes = await dispatch(works(plans, chips, rasters, self.backend, self.pool, no_data), lanes, dispatcher)
        for k in no_data:
            labels[k] = R.Label(R.NO_DATA)
            progress.update(per_chip)
        for outcome in outcomes:
            self._apply(outcome, labels, plans, rasters)
        return labels

    def _apply(self, outcome, labels, plans, rasters) -> None:
        sent = outcome.key
        if outcome.error is not None:
            error = outcome.error
            if error.code.name in FATAL:
                raster = rasters[plans[sent.frame].raster]
                raise GeoInputError(raster.path, f"its chips were refused: {error.code.name}: {error.message}")
            for k in sent.chips:
                labels[k] = R.Label(f"{R.FAILED}{error.code.name}: {error.message}")
            return
        for k, result in zip(sent.chips, outcome.result.results):
            labels[k] = R.label_from(result, self.class_values, self.config.min_confidence, labels[k].status,
                                     self.config.all_classes)

    # ---------------------------------------------------------------- output

    def _emit(self, writer, table, geometries) -> None:
        if writer is not None:
            writer.write(table, geometries)
        else:
            import pyarrow as pa

            self.tables.append(table.append_column("geometry", pa.array(shapely.to_wkb(geometries), pa.binary()))
                               if geometries is not None else table)

    def _finish(self, crs) -> None:
        if self.out is None:
            import pyarrow as pa

            table = pa.concat_tables(self.tables) if self.tables else pa.table({})
            meta = {b"crs": (crs or "").encode()}
            self.summary.table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})

    # ---------------------------------------------------------------- images

    async def images(self) -> R.Summary:
        from .images import classify_images

        return await classify_images(self)


def _transformer(info, raster) -> Transformer | None:
    if not info.crs:
        logger.warning("%s has no CRS: its coordinates are taken as %s's", info.path, raster.path)
        return None
    try:
        source, target = CRS.from_user_input(info.crs), CRS.from_user_input(raster.crs.to_wkt())
        if source == target:
            return None
        return Transformer.from_crs(source, target, always_xy=True)
    except (CRSError, ProjError) as error:
        raise GeoInputError(info.path, f"its CRS cannot be transformed to {raster.path}'s: {error}") from None
