"""One ClassifyObject through its pipeline: the detector's boxes (when asked
for), the model's stage (with TTA, or with heatmaps), the results, then the
children where their conditions hold."""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import numpy as np

from roiclass.server.domain import ClassifyRequest, RequestLimits, rect_to_proto
from roiclass.server.errors import InvalidArgument
from roiclass.server.geometry import rect_rows
from roiclass.server.models.pipeline import MAX_CHILD_DEPTH, TtaMode
from roiclass.server.pipeline.children import ChildContext, run_children
from roiclass.server.pipeline.detect import detect
from roiclass.server.pipeline.results import roi_result
from roiclass.server.pipeline.stage import StageOutput, classify_stage, engine_result
from roiclass.v1 import classifier_pb2 as pb


class Pipeline:
    def __init__(self, engine, manager, limits: RequestLimits, heatmaps=None):
        self._engine = engine
        self._manager = manager
        self._limits = limits
        self._heatmaps = heatmaps  # HeatmapService, or None (the servicer refuses heatmaps then)

    async def classify(self, req: ClassifyRequest, model, *, deadline: float | None, caller: str,
                       started_ns: int | None = None) -> pb.ClassifyObjectResponse:
        """started_ns: time.perf_counter_ns() when the request arrived (Timing.total_us)."""
        t0 = time.perf_counter_ns() if started_ns is None else started_ns
        if model.spec.detector is not None:
            raise InvalidArgument.for_field(
                "model", f"{model.name!r} is a detector ([detector] in its config): name it in `detector` "
                         "and a classifier in `model`")
        detector = detections = None
        name = req.detector or (model.spec.default_detector if req.whole_image else "")
        if name:
            detector, detections = await self._detect(name, req, deadline, caller)
            req = _with_detections(req, detections)
        heatmaps = None
        if not len(req.rects):
            stage = StageOutput(np.zeros((0, len(model.spec.classes)), np.float32), None, TtaMode(), 0, 0, 0)
        elif req.heatmap is not None:
            stage, heatmaps = await self._with_heatmaps(model, req, deadline, caller)
        else:
            tta = req.tta if req.tta is not None else model.spec.tta
            stage = await classify_stage(self._engine, model, req.image, req.rois_array, req.polygons,
                                         tta=tta, spread=req.tta_spread, deadline=deadline, caller=caller)
        results = self._results(model, req, stage, heatmaps)
        if detections is not None:
            for result, d in zip(results, detections):
                result.detection.CopyFrom(pb.Detection(
                    box=rect_to_proto(d.rect), class_index=d.class_index, class_name=d.class_name,
                    confidence=d.confidence, model=detector.name, model_version=detector.version))
        if req.children and model.spec.children and results:
            depth = req.max_child_depth or MAX_CHILD_DEPTH
            ctx = ChildContext(self._engine, self._manager, req.image, deadline, caller,
                               req.top_k, req.min_confidence, depth)
            await run_children(ctx, model.spec, req.rects, req.polygons, results)
        return pb.ClassifyObjectResponse(
            model=model.name, model_version=model.version, results=results, request_id=req.request_id,
            timing=pb.Timing(queue_us=stage.queue_us, preprocess_us=stage.preprocess_us,
                             inference_us=stage.inference_us,
                             total_us=(time.perf_counter_ns() - t0) // 1000),
        )

    async def _detect(self, name: str, req: ClassifyRequest, deadline, caller) -> tuple:
        """(the detector's LoadedModel, its detections)."""
        detector = self._manager.resolve(name, req.detector_version)
        if detector.spec.detector is None:
            field = "detector" if req.detector else "model"
            raise InvalidArgument.for_field(
                field, f"{name!r} is not a detector model (no [detector] in its config); "
                       f"detectors: {', '.join(self._detector_names()) or 'none loaded'}")
        return detector, await detect(self._engine, detector, req.image, deadline=deadline, caller=caller,
                                      limit=self._limits.max_rois)

    def _detector_names(self) -> list[str]:
        return sorted({s.name for s in self._manager.statuses()
                       if s.spec is not None and s.spec.detector is not None})

    async def _with_heatmaps(self, model, req: ClassifyRequest, deadline, caller):
        """The ROIs are preprocessed once: the same tensors are classified and occluded."""
        t0 = time.perf_counter_ns()
        base = await asyncio.get_running_loop().run_in_executor(
            None, self._engine.preprocess, model, req.image.array, req.image.pixel_format, req.rois_array,
            req.polygons)
        preprocess_us = (time.perf_counter_ns() - t0) // 1000
        out = await engine_result(lambda is_cancelled: self._engine.infer_tensors(
            model, base, deadline=deadline, is_cancelled=is_cancelled, caller=caller))
        heatmaps = await self._heatmaps.compute(model, req, base, out.probabilities, deadline)
        stage = StageOutput(out.probabilities, None, TtaMode(), out.queue_us,
                            out.preprocess_us + preprocess_us, out.inference_us)
        return stage, heatmaps

    def _results(self, model, req: ClassifyRequest, stage: StageOutput, heatmaps) -> list[pb.RoiResult]:
        spec = model.spec
        top_k = spec.top_k if req.top_k is None else req.top_k
        min_conf = spec.min_confidence if req.min_confidence is None else req.min_confidence
        results = []
        for i, rect in enumerate(req.rects):
            result = roi_result(spec, rect, req.roi_ids[i], stage.probabilities[i], top_k, min_conf)
            if heatmaps is not None:
                result.heatmap.CopyFrom(heatmaps[i])
            if stage.tta.name != "none":
                result.tta.mode = stage.tta.text
                result.tta.variants = stage.tta.variants
                if stage.spread is not None:
                    result.tta.spread.extend(stage.spread[i].tolist())
            results.append(result)
        return results


def _with_detections(req: ClassifyRequest, detections) -> ClassifyRequest:
    """The request with one ROI per detection (ids "det-0", "det-1", ...), no polygons."""
    rects = tuple(d.rect for d in detections)
    return replace(req, rects=rects, rois_array=rect_rows(rects), roi_ids=tuple(f"det-{i}" for i in range(len(rects))),
                   polygons=None, whole_image=False)
