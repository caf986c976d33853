"""Detector-proposed ROIs: a detector model's boxes (YOLOv5, YOLOv8-v11, YOLOX,
YOLOv8-OBB outputs) decoded and NMS'd as their makers do, in image coordinates.

letterbox.py places the image in the detector's input as one ROI; decode.py
reads each format's rows; nms.py is Ultralytics' NMS in NumPy; boxes.py maps
the kept boxes back; detector.py runs it over the engine.
"""
from roiclass.server.pipeline.detect.boxes import Detection
from roiclass.server.pipeline.detect.detector import detect

__all__ = ["Detection", "detect"]
