"""Relevance heatmaps by occlusion sensitivity (see docs/heatmap.md).

occlusion: parameters, patch positions, occluded tensors, drops -> relevance grid.
rendering: relevance grid (model-input space) -> GRAY8 image of the ROI.
The service that drives them through the engine is roiclass.server.heatmap_service.
"""
